"""examples/fastapi-onnx adopted as a user adopts the pipeline: its folder alone in a git repository,
`pipeline init`, then bootstrap, two releases and a rollback on the local ground through the CLI.

Nothing in pipeline/ knows this example: what it needs (port 8000, /healthz, a POST smoke request, a
base image build argument) reaches the pipeline only through `pipeline init`'s flags and pipeline.toml.
Real parts throughout: the wheels from the package index, a buildah build on the local Debian base,
uvicorn and onnxruntime running in the tasks behind the local load balancer.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.images import build as test_images

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fastapi-onnx"
PIPELINE = str(Path(sys.executable).parent / "pipeline")
NAME = "iris-onnx"
SETOSA = [5.1, 3.5, 1.4, 0.2]
LOCAL_WARMUP = 600
# Run inside `pipeline local exec` once the chain is done: the ground (and its load balancer) is
# gone when exec returns, so the prediction through the service URL is made from in there.
PREDICT = """
import json, sys, urllib.request
url = json.load(open(sys.argv[1]))["url"].rstrip("/") + "/predict"
request = urllib.request.Request(url, data=sys.argv[2].encode(), headers={"Content-Type": "application/json"})
print("PREDICTION " + urllib.request.urlopen(request, timeout=10).read().decode())
"""


@pytest.fixture(scope="module")
def buildah_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throwaway buildah store ($PIPELINE_BUILDAH_ROOT) for this module: the machine's own is never touched."""
    for tool in ("buildah", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed; the local Python base image needs it")
    if os.geteuid() != 0:
        pytest.skip("debootstrap needs root to make the local Python base image")
    with test_images.buildah_store(tmp_path_factory.mktemp("buildah")) as root:
        yield root


@pytest.fixture(scope="module")
def wheels() -> Path:
    """The example's pinned wheels, downloaded once per machine into the pipeline's cache folder."""
    from local_ground.python_base import cache_dir

    folder = cache_dir() / "fastapi-onnx-wheels"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "prepare.py"), "--wheels-only", "--wheels", str(folder)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


@pytest.fixture()
def repo(tmp_path: Path, buildah_store: Path, wheels: Path) -> Path:
    """The example copied into a fresh git repository, with the wheels beside it (git-ignored)."""
    from local_ground.python_base import ensure_python_base

    ensure_python_base()  # into this module's store: about 10 s from the cached rootfs
    root = tmp_path / NAME
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("wheels", "__pycache__"))
    shutil.copytree(wheels, root / "wheels")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "iris model server")
    assert "wheels/" not in git(root, "ls-files")  # the example's .gitignore keeps them out
    return root


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.email=ml@example.com", "-c", "user.name=ml", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def cli(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PIPELINE, *args], cwd=root, capture_output=True, text=True, timeout=timeout)


def test_init_release_rollback_on_the_local_ground(repo: Path) -> None:
    init = cli(
        repo, "init", "--yes", "--name", NAME, "--port", "8000", "--health-path", "/healthz",
        "--github-repository", f"acme/{NAME}", "--region", "us-east-1", "--account", "123456789012",
        "--smoke-path", "/predict", "--smoke-request", json.dumps({"instances": [SETOSA]}),
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    # What a user edits here, having no registry to pull python:3.11-slim from: build with buildah on
    # the local Debian base. Both through pipeline.toml; the example's files stay as they are.
    settings = repo / "pipeline.toml"
    text, count = re.subn(
        r"(?m)^builder = .*$",
        'builder = "buildah"\nbuild_args = { BASE_IMAGE = "localhost/pipeline-python-base:bookworm" }',
        settings.read_text(),
    )
    assert count == 1
    # The local ground scales AWS durations by 0.02 but not a process's start: the 20 s grace period
    # is 0.4 s there, while importing numpy, onnxruntime and FastAPI takes 2-3 s (more on a busy
    # machine). 600 s of grace is 12 s locally; on AWS staging it only delays failing a bad task.
    text = text.replace("[environments.staging]\n", f"[environments.staging]\nwarmup = {LOCAL_WARMUP}\n", 1)
    settings.write_text(text)
    assert cli(repo, "check").returncode == 0
    assert cli(repo, "synth").returncode == 0  # the templates carry the grace period
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "adopt ecs-model-pipeline")
    git(repo, "tag", "v0.1.0")
    git(repo, "tag", "v0.2.0")

    predict = repo.parent / "predict.py"
    predict.write_text(PREDICT)
    status = repo.parent / "status.json"
    body = shlex.quote(json.dumps({"instances": [SETOSA]}))
    chain = (
        "pipeline bootstrap && pipeline release v0.1.0 --env staging && pipeline release v0.2.0 --env staging"
        f" && pipeline rollback --env staging --previous && pipeline status --env staging --output json > {status}"
        f" && {sys.executable} {predict} {status} {body}"
    )
    result = cli(repo, "local", "exec", "--", "sh", "-c", chain, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(result.stdout)  # the phase timings, shown with -s

    state = json.loads(status.read_text())
    assert state["version"] == "0.1.0"
    assert state["rollout_state"] == "COMPLETED"
    answer = json.loads(result.stdout.split("PREDICTION ", 1)[1])
    # The rolled-back tasks answer: version 0.1.0's image (MODEL_VERSION is its build argument).
    assert answer["predictions"] == ["setosa"]
    assert answer["model_version"] == "0.1.0"
    # Both versions were built, checked, pushed and released before the rollback brought 0.1.0 back.
    for title in ("release 0.1.0 -> staging", "release 0.2.0 -> staging", "rollback 0.1.0 -> staging"):
        assert title in result.stdout, result.stdout[-3000:]
    assert result.stdout.count("building localhost/iris-onnx:") == 2
