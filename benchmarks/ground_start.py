"""Start and stop time of the local ground (moto server + extensions, registry behind the ECR bridge,
GitHub), the three stand-ins every test and the demo stand on. Goal: under 3 s for both. Prints figures."""

from __future__ import annotations

import statistics
import time

from local_ground.ground import LocalGround

RUNS = 5


def main() -> None:
    starts, stops = [], []
    for _ in range(RUNS):
        begin = time.perf_counter()
        ground = LocalGround(run_tasks=False).__enter__()
        up = time.perf_counter()
        ground.__exit__(None, None, None)
        starts.append(up - begin)
        stops.append(time.perf_counter() - up)
    print(f"{'local ground':<14} {'median':>8} {'max':>8}")
    print(f"{'start':<14} {statistics.median(starts):>7.3f}s {max(starts):>7.3f}s")
    print(f"{'stop':<14} {statistics.median(stops):>7.3f}s {max(stops):>7.3f}s")
    print(
        f"{'start + stop':<14} {statistics.median(a + b for a, b in zip(starts, stops, strict=False)):>7.3f}s  (goal: under 3 s)"
    )


if __name__ == "__main__":
    main()
