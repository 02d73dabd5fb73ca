"""Synth time for all stacks: a fresh `pipeline synth --check` process (imports included), and the
in-process synthesis alone. Goal: under 0.5 s wall for the command. Prints a table; asserts nothing."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7


def command_seconds() -> list[float]:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pipeline", "synth", "--check"], cwd=ROOT, check=True, capture_output=True
        )
        times.append(time.perf_counter() - start)
    return times


def in_process_seconds() -> tuple[list[float], bool]:
    from pipeline import config
    from pipeline.synth import synthesize

    settings = config.load(ROOT / "pipeline.toml")
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        synthesize(settings)
        times.append(time.perf_counter() - start)
    return times, "boto3" in sys.modules


def main() -> None:
    command = command_seconds()
    synth, boto3_loaded = in_process_seconds()
    print(f"{'measure':<40} {'median':>8} {'max':>8}")
    print(f"{'pipeline synth --check (new process)':<40} {statistics.median(command):>7.3f}s {max(command):>7.3f}s")
    print(f"{'synthesize all stacks (in process)':<40} {statistics.median(synth):>7.3f}s {max(synth):>7.3f}s")
    print(f"boto3 imported on the synth path: {'yes' if boto3_loaded else 'no'}; goal: command under 0.500s")


if __name__ == "__main__":
    main()
