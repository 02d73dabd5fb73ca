"""The package people install: its runtime size and how fast its command starts.

Builds the wheel (`python -m build --wheel`), installs it without extras into a fresh venv over the
hash-locked runtime dependencies (requirements/runtime.lock, what the workflows install), then prints:
- the install size: `du` of the venv's site-packages, in all, per top-level distribution (largest
  first), and pip/setuptools as they come with any venv;
- `import pipeline.cli` and `pipeline --help`, each as a new process (median and max of RUNS), next
  to `python -c pass` (the interpreter's own start), and the slowest imports under `-X importtime`.
Goal: `pipeline --help` under 0.5 s. Asserts nothing; everything is made in a temporary folder.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7
HELP_GOAL = 0.5


def build_wheel(out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], check=True, capture_output=True
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def fresh_venv(folder: Path, wheel: Path) -> tuple[Path, float]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps"]
    lock = str(ROOT / "requirements" / "runtime.lock")
    subprocess.run([*pip, "--require-hashes", "-r", lock], check=True, capture_output=True)
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True)
    return folder, time.perf_counter() - started


def du_bytes(path: Path) -> int:
    """Disk usage as `du -s --block-size=1` counts it (allocated blocks, each hard link once)."""
    out = subprocess.run(["du", "-s", "--block-size=1", str(path)], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[0])


def site_packages(venv: Path) -> Path:
    (found,) = (venv / "lib").glob("python3*/site-packages")
    return found


def per_distribution(site: Path) -> dict[str, int]:
    """Bytes per distribution: the top-level names in its RECORD, plus its .dist-info."""
    sizes: dict[str, int] = {}
    for info in site.glob("*.dist-info"):
        name = re.sub(r"-[^-]+\.dist-info$", "", info.name)
        tops = {info.name}
        record = info / "RECORD"
        if record.exists():
            for line in record.read_text(encoding="utf-8").splitlines():
                first = line.split(",", 1)[0].split("/", 1)[0]
                if first and not first.startswith("..") and first != "__pycache__":
                    tops.add(first)
        sizes[name] = sum(du_bytes(site / top) for top in tops if (site / top).exists())
    return sizes


def timed(argv: list[str]) -> list[float]:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def _import_lines(python: Path, code: str) -> list[tuple[int, str, float]]:
    """(depth, module, cumulative seconds) of every import `-X importtime` reports for `code`."""
    out = subprocess.run([str(python), "-X", "importtime", "-c", code], check=True, capture_output=True, text=True)
    found = []
    for line in out.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)", line)
        if match:
            found.append((len(match.group(2)) // 2, match.group(3), int(match.group(1)) / 1e6))
    return found


def slowest_imports(python: Path, count: int = 6) -> list[tuple[str, float]]:
    """What `import pipeline.cli` adds to the interpreter's start, largest cumulative time first: the
    modules imported by the command's own top-level imports (depth 0 and 1, minus `-c pass`'s)."""
    interpreter = {name for _depth, name, _seconds in _import_lines(python, "pass")}
    found = {
        name: seconds
        for depth, name, seconds in _import_lines(python, "import pipeline.cli")
        if depth <= 1 and name not in interpreter and name != "pipeline.cli"
    }
    return sorted(found.items(), key=lambda item: -item[1])[:count]


def mb(size: int) -> str:
    return f"{size / 1e6:7.1f} MB"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-package-") as scratch:
        wheel = build_wheel(Path(scratch) / "dist")
        venv, install_seconds = fresh_venv(Path(scratch) / "venv", wheel)
        site = site_packages(venv)
        total = du_bytes(site)
        sizes = per_distribution(site)
        print(
            f"wheel {wheel.name}: {wheel.stat().st_size / 1e3:.0f} kB; install into a fresh venv {install_seconds:.1f}s"
        )
        print(f"site-packages of a fresh venv with the wheel, no extras: {mb(total)}")
        baseline = sum(sizes.get(name, 0) for name in ("pip", "setuptools"))
        print(f"  without pip and setuptools (any venv has them):   {mb(total - baseline)}")
        for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:10]:
            print(f"  {name:<40} {mb(size)}")
        print(f"  ({len(sizes)} distributions)")

        python, command = venv / "bin" / "python", venv / "bin" / "pipeline"
        rows = [
            ("python -c pass (interpreter start)", timed([str(python), "-c", "pass"])),
            ("python -c 'import pipeline.cli'", timed([str(python), "-c", "import pipeline.cli"])),
            ("pipeline --help", timed([str(command), "--help"])),
            ("pipeline --version", timed([str(command), "--version"])),
        ]
        print(f"\n{'new process':<40} {'median':>8} {'max':>8}")
        for label, times in rows:
            print(f"{label:<40} {statistics.median(times):>7.3f}s {max(times):>7.3f}s")
        print("slowest imports `import pipeline.cli` adds (cumulative, one -X importtime run):")
        for module, seconds in slowest_imports(python):
            print(f"  {module:<38} {seconds:>7.3f}s")
        help_median = statistics.median(rows[2][1])
        print(f"goal: pipeline --help under {HELP_GOAL:.3f}s: {'met' if help_median < HELP_GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
