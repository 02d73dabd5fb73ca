"""The tool's distributions, checked before they are published (.github/workflows/publish.yml).

    python scripts/check_dist.py TAG DIST

TAG is the tool's own release tag, `tool-vX.Y.Z` (the repository's `v*` tags are model versions and
release models, not the tool). DIST must hold exactly the wheel and the sdist of version X.Y.Z (the
version is `pipeline.__version__`, so a tag that does not match it is refused). The wheel must carry
the license text and `py.typed`, and no tests; then it is installed, without extras, into a fresh
venv over the hash-locked runtime dependencies (requirements/runtime.lock), `pip check` must find
every requirement met, `pipeline --version` must print X.Y.Z, `pipeline --help` must run, and
importing the CLI must import neither boto3, moto nor the local ground.

Exit 0 when all holds; otherwise one line per problem and exit 1.
"""

from __future__ import annotations

import re
import subprocess  # nosec B404 # runs pip and the installed tool, argument lists only
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "ecs_model_pipeline"
TAG = re.compile(r"^tool-v(\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)$")
# What `import pipeline.cli` must not pull in: the AWS SDK is imported by the commands that use it.
LAZY = ("boto3", "moto", "local_ground")


class DistError(Exception):
    """A distribution is not what may be published."""


def version_of_tag(tag: str) -> str:
    match = TAG.match(tag)
    if not match:
        raise DistError(f"tag {tag!r} is not a tool release tag: push tool-vX.Y.Z (v* tags are model versions)")
    return match.group(1)


def distributions(dist: Path, version: str) -> tuple[Path, Path]:
    """The wheel and the sdist of `version`, and nothing else."""
    found = sorted(p.name for p in dist.iterdir()) if dist.is_dir() else []
    wheel, sdist = f"{NAME}-{version}-py3-none-any.whl", f"{NAME}-{version}.tar.gz"
    if found != sorted([wheel, sdist]):
        raise DistError(
            f"{dist} holds {found or 'nothing'}, expected {wheel} and {sdist}: "
            f"the tag says {version}; pipeline/__init__.py's __version__ must say the same"
        )
    return dist / wheel, dist / sdist


def check_wheel_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        raise DistError(f"{wheel.name} lacks the license text (.dist-info/licenses/LICENSE)")
    for marker in ("pipeline/py.typed", "local_ground/py.typed"):
        if marker not in names:
            raise DistError(f"{wheel.name} lacks {marker}")
    if any(n.startswith("tests/") for n in names):
        raise DistError(f"{wheel.name} carries tests/")


def _run(*args: str) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True)  # nosec B603 # fixed argument lists
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
        raise DistError(f"{Path(args[0]).name} {' '.join(args[1:3])} failed: {last[0] if last else done.returncode}")
    return done.stdout


def check_installed(wheel: Path, version: str, venv: Path) -> None:
    """The wheel in a fresh venv over the locked runtime dependencies: it runs, and says its version."""
    _run(sys.executable, "-m", "venv", str(venv))
    python, pip = str(venv / "bin" / "python"), [str(venv / "bin" / "python"), "-m", "pip"]
    _run(*pip, "install", "--quiet", "--require-hashes", "--no-deps", "-r", str(ROOT / "requirements/runtime.lock"))
    _run(*pip, "install", "--quiet", "--no-deps", str(wheel))
    _run(*pip, "check")
    said = _run(str(venv / "bin" / "pipeline"), "--version").strip()
    if not said.endswith(version):
        raise DistError(f"`pipeline --version` says {said!r}, the tag says {version}")
    _run(str(venv / "bin" / "pipeline"), "--help")
    probe = f"import sys, pipeline.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in {LAZY!r}))"
    imported = _run(python, "-c", probe).strip()
    if imported != "[]":
        raise DistError(f"`import pipeline.cli` imports {imported}: keep them lazy (the CLI starts fast)")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python scripts/check_dist.py TAG DIST", file=sys.stderr)
        return 2
    tag, dist = argv[0], Path(argv[1])
    try:
        version = version_of_tag(tag)
        wheel, _sdist = distributions(dist, version)
        check_wheel_contents(wheel)
        with tempfile.TemporaryDirectory(prefix="check-dist-") as scratch:
            check_installed(wheel, version, Path(scratch) / "venv")
    except DistError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    print(f"{wheel.name} and its sdist: version {version}, license, py.typed; installed in a fresh venv, it runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
