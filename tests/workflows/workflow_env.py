"""What the workflow-run tests share: the project's paths, the checkout a job gets, the runner machine's
environment and the `pipeline` command on it, and actions/checkout as the runner runs it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from actions_runner import Action, ActionFailed, ActionOutcome, clean_environ

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
VENV_BIN = ROOT / ".venv" / "bin"
REPOSITORY = "acme/iris-classifier"


def copy_committed(dest: Path) -> None:
    """What actions/checkout gives: the tracked files (as they are in this working tree)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def pipeline_cli(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([str(VENV_BIN / "pipeline"), *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"pipeline {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def machine_env(ground: Any, buildah_root: Path) -> dict[str, str]:
    """The runner machine: python and pipeline on PATH (what setup-python and the install give), the
    local buildah store, the ground's time scale (polls and timeouts), and the way to the local
    AWS (its endpoint; no credentials: a job has only what configure-aws-credentials assumes)."""
    base = clean_environ()
    env = {
        **base,
        "AWS_ENDPOINT_URL": ground.environ()["AWS_ENDPOINT_URL"],
        "PATH": f"{VENV_BIN}:{base.get('PATH', '/usr/bin:/bin')}",
        "PIPELINE_BUILDAH_ROOT": str(buildah_root),
        "PIPELINE_TIME_SCALE": ground.environ()["PIPELINE_TIME_SCALE"],
    }
    checkov = ROOT / ".tools" / "checkov" / "bin" / "checkov"
    if checkov.exists():
        env["PIPELINE_CHECKOV"] = str(checkov)
    return env


def checkout_action(workspace: Path) -> Action:
    """actions/checkout: with `path`, the repository at `ref` cloned into that folder of the workspace, as
    the action fetches and checks out a ref; without, not run (the workspace this test prepared is the
    checkout of the run's own ref)."""

    def checkout(inputs: dict[str, str], env: dict[str, str]) -> ActionOutcome | None:
        if not inputs.get("path"):
            return None
        target, ref = workspace / inputs["path"], inputs.get("ref") or "HEAD"
        shutil.rmtree(target, ignore_errors=True)
        done = subprocess.run(
            ["git", "clone", "-q", "--depth", "1", "--branch", ref, f"file://{workspace}", str(target)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ActionFailed(f"A branch or tag with the name '{ref}' could not be found")
        return ActionOutcome({}, f"checked out {ref} into {inputs['path']}")

    return checkout
