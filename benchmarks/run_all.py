"""Runs every benchmark in this folder, one after another, each in its own process with this Python,
and prints their tables in order. Each is bounded (TIMEOUT seconds; on timeout its process group is
stopped). Asserts nothing; exits 1 only when a script crashed or timed out.

    .venv/bin/python benchmarks/run_all.py            # all of them
    .venv/bin/python benchmarks/run_all.py release    # only the named ones
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRIPTS = (
    ("synth", "synthesis of every stack (goal: `pipeline synth --check` under 0.5 s)"),
    ("package", "the wheel in a fresh venv: size, `import pipeline.cli`, `pipeline --help` (goal: under 0.5 s)"),
    ("ground_start", "local ground start and stop (goal: under 3 s)"),
    ("rollout_model", "modeled AWS rollout from the templates (goal: at most 90 s)"),
    ("strategies", "modeled AWS release and rollback per strategy (goal: rollback by traffic shift at most 10 s)"),
    ("traffic_local", "canary releases on the local ground: what a bad version served, decision to traffic back"),
    ("model_server", "example model server throughput and latency, the autoscaling target it implies"),
    ("release", "full releases on the local ground, phase by phase (goal: without build under 10 s)"),
    ("example_images", "both example images: build time, size, cold start to the first healthy answer"),
)
TIMEOUT = 300.0


def run(name: str) -> tuple[int | None, float]:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(HERE / f"{name}.py")], cwd=ROOT, start_new_session=True)
    try:
        code: int | None = process.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)  # the script's own process group, nothing else
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        code = None
    return code, time.perf_counter() - started


def main() -> int:
    wanted = set(sys.argv[1:])
    unknown = wanted - {name for name, _ in SCRIPTS}
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(n for n, _ in SCRIPTS)}",
            file=sys.stderr,
        )
        return 2
    results = []
    for name, what in SCRIPTS:
        if wanted and name not in wanted:
            continue
        print(f"\n=== benchmarks/{name}.py: {what}", flush=True)
        code, seconds = run(name)
        results.append((name, code, seconds))
    print("\n=== summary")
    for name, code, seconds in results:
        state = "timed out" if code is None else ("ok" if code == 0 else f"exit {code}")
        print(f"{name:<16} {seconds:>7.1f}s  {state}")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
