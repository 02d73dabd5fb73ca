"""The wheel people install: built with `python -m build`, installed into a fresh venv without extras.

It runs without the local ground's or the linters' dependencies: `pipeline --help` and `--version`
work, importing the CLI imports no moto, and the commands that need an extra say which in one line.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import __version__

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    subprocess.run(
        [str(folder / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
    )
    yield folder


def run(venv: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "pipeline"), *args], capture_output=True, text=True, cwd=cwd)


def test_the_wheel_carries_the_license_the_type_marker_and_the_version(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert f"ecs_model_pipeline-{__version__}-py3-none-any.whl" == wheel.name
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert "pipeline/py.typed" in names
    assert "local_ground/py.typed" in names
    assert not any(n.startswith("tests/") for n in names)


def test_installed_without_extras_the_cli_runs_and_moto_is_absent(venv: Path) -> None:
    python = str(venv / "bin" / "python")
    absent = subprocess.run([python, "-c", "import moto"], capture_output=True, text=True)
    assert absent.returncode != 0 and "No module named 'moto'" in absent.stderr
    imported = subprocess.run(
        [
            python,
            "-c",
            "import sys, pipeline.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in ('moto', 'boto3', 'local_ground')))",
        ],
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "[]"
    assert run(venv, "--help").returncode == 0
    version = run(venv, "--version")
    assert version.returncode == 0 and __version__ in version.stdout


@pytest.mark.parametrize(("command", "extra"), [("demo", "local"), ("lint", "lint")])
def test_a_command_needing_an_extra_names_it_in_one_line(venv: Path, command: str, extra: str) -> None:
    result = run(venv, command)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"pip install 'ecs-model-pipeline[{extra}]'" in lines[0]
    assert "Traceback" not in result.stderr
