"""`pipeline local`: the local ground for a user's repository, driven through the CLI as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local_ground import session
from tests.projects import STORY_TIME_SCALE, make_git_project

pytestmark = pytest.mark.slow
PIPELINE = str(Path(sys.executable).parent / "pipeline")


@pytest.fixture()
def repo(tmp_path: Path, buildah_store: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    make_git_project(root)
    return root


def cli(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    environ = {session.TIME_SCALE_ENV: str(STORY_TIME_SCALE), **(os.environ if env is None else env)}
    return subprocess.run([PIPELINE, *args], cwd=root, capture_output=True, text=True, timeout=timeout, env=environ)


def test_git_tags_are_read_at_their_commits(repo: Path) -> None:
    git = ["git", "-C", str(repo), "-c", "user.email=t@e", "-c", "user.name=t"]
    subprocess.run([*git, "tag", "v0.1.0"], check=True)
    subprocess.run([*git, "tag", "-a", "v0.2.0", "-m", "annotated"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert sorted(session.git_tags(repo), key=lambda t: t.name) == [
        session.GitTag("v0.1.0", head),
        session.GitTag("v0.2.0", head),  # the commit, not the annotated tag object
    ]
    assert session.git_tags(repo.parent) == []  # not a repository


def test_exec_runs_the_command_against_the_ground_and_exits_with_its_code(repo: Path) -> None:
    script = 'test -n "$AWS_ENDPOINT_URL" && test "$AWS_REGION" = us-east-1 && test -n "$GITHUB_API_URL" && exit 3'
    result = cli(repo, "local", "exec", "--", "sh", "-c", script)
    assert result.returncode == 3, result.stderr
    assert "local ground up" in result.stderr


def test_exec_releases_and_rolls_back_a_repository_unchanged(repo: Path) -> None:
    git = ["git", "-C", str(repo)]
    subprocess.run([*git, "tag", "v0.1.0"], check=True)
    subprocess.run([*git, "tag", "v0.2.0"], check=True)
    chain = (
        "pipeline bootstrap && pipeline release v0.1.0 --env staging && pipeline release v0.2.0 --env staging"
        " && pipeline rollback --env staging --previous && pipeline status --env staging --output json"
    )
    result = cli(repo, "local", "exec", "--", "sh", "-c", chain, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    status = json.loads(result.stdout[result.stdout.rindex("{\n") :])
    assert status["version"] == "0.1.0"
    assert status["rollout_state"] == "COMPLETED"


def test_up_detached_then_down(repo: Path, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    up = cli(repo, "local", "up", "--detach", env=env)
    assert up.returncode == 0, up.stderr
    # Only export lines on stdout: `eval "$(pipeline local up --detach)"` sets them; the rest goes to stderr.
    assert all(line.startswith("export ") for line in up.stdout.splitlines()), up.stdout
    assert "local ground up in the background" in up.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines())
    assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    try:
        again = cli(repo, "local", "up", "--detach", env=env)
        assert again.returncode != 0 and "already runs" in again.stderr
        status = cli(repo, "status", "--env", "staging", env={**env, **exports})
        assert status.returncode != 0 and "staging is not deployed" in status.stderr  # it answered
    finally:
        down = cli(repo, "local", "down", env=env)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not list((tmp_path / "cache").rglob("*.json"))
    assert "no local ground runs" in cli(repo, "local", "down", env=env).stdout


def test_the_grounds_time_scale_comes_from_the_environment_and_a_bad_one_is_one_line(repo: Path) -> None:
    assert session.time_scale({}) == session.TIME_SCALE == 0.02
    assert session.time_scale({session.TIME_SCALE_ENV: " 0.01 "}) == 0.01
    for bad in ("0", "-1", "2", "nan", "inf", "fast"):
        result = cli(repo, "local", "exec", "--", "true", env={**os.environ, session.TIME_SCALE_ENV: bad})
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines() == [
            f"error: {session.TIME_SCALE_ENV}: {bad!r} is not a factor above 0 and at most 1. "
            "Use e.g. 0.02 (the default), or unset it."
        ], result.stderr
