"""publish.yml, run: a pushed `tool-vX.Y.Z` tag builds the wheel and the sdist for real, tests the wheel
in a fresh venv (scripts/check_dist.py), and reaches the publish job, whose two `uses:` steps (the
artifact download and pypa/gh-action-pypi-publish) cannot run here: no PyPI. A tag that does not match
the tool's version fails the build job, and the publish job does not run.

The one `run:` not executed is the locked install of the build tools: it installs into the Python
setup-python gives; here that is the project's .venv, which `make setup` made from build.lock and
dev.lock (publish.lock pins the same versions: tests/test_locks.py)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
from actions_runner import Event, Runner, clean_environ, is_triggered, load

from pipeline import __version__
from tests.workflows.workflow_env import REPOSITORY, ROOT, VENV_BIN, WORKFLOWS, copy_committed

pytestmark = pytest.mark.slow

SUBSTITUTED = {
    "python -m pip install --require-hashes --no-deps -r requirements/build.lock -r requirements/publish.lock": (
        "the project's .venv holds build.lock and publish.lock's versions (make setup, tests/test_locks.py)"
    ),
}


def run_publish(tmp_path: Path, tag: str) -> tuple[Any, Path, list[dict[str, Any]]]:
    workspace = tmp_path / "checkout"
    workspace.mkdir()
    copy_committed(workspace)
    token_requests: list[dict[str, Any]] = []

    def id_token_request(**claims: Any) -> tuple[str, str]:
        token_requests.append(claims)  # who would get an OIDC token; nothing here asks for one
        return "http://127.0.0.1:9/token", "request-token"

    runner = Runner(
        workspace=workspace,
        temp=tmp_path / "runner",
        repository=REPOSITORY,
        api_url="http://127.0.0.1:9",  # no step talks to GitHub
        token="unused",
        machine_env={**clean_environ(), "PATH": f"{VENV_BIN}:{clean_environ().get('PATH', '/usr/bin:/bin')}"},
        substitutions=SUBSTITUTED,
        id_token_request=id_token_request,
    )
    (tmp_path / "runner").mkdir()
    result = runner.run(WORKFLOWS / "publish.yml", Event.tag_push(tag, REPOSITORY))
    return result, workspace, token_requests


def test_a_tool_tag_builds_tests_and_reaches_the_publish_job(tmp_path: Path) -> None:
    tag = f"tool-v{__version__}"
    result, workspace, token_requests = run_publish(tmp_path, tag)
    assert result.succeeded, result.log()
    build = result.jobs["build"]
    assert [(s.name, s.status) for s in build.steps] == [
        ("actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1", "skipped"),
        ("actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97", "skipped"),
        ("Install the build backend and frontend (locked, hash-checked)", "substituted"),
        ("Build the wheel and the sdist", "success"),
        ("Test the wheel in a fresh venv (version = tag, license, py.typed, runs without extras)", "success"),
        ("actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "skipped"),
    ]
    wheel = workspace / "dist" / f"ecs_model_pipeline-{__version__}-py3-none-any.whl"
    assert sorted(p.name for p in (workspace / "dist").iterdir()) == sorted(
        [wheel.name, f"ecs_model_pipeline-{__version__}.tar.gz"]
    )
    assert "pipeline/cli.py" in zipfile.ZipFile(wheel).namelist()
    assert "installed in a fresh venv, it runs" in build.steps[4].output
    publish = result.jobs["publish"]
    assert publish.environment == "pypi"
    assert [s.note for s in publish.steps] == ["uses: not run here"] * 2
    assert publish.steps[-1].name.startswith("pypa/gh-action-pypi-publish@")
    # Only the publish job, in the pypi environment, could have asked for an OIDC token.
    assert token_requests == [
        {
            "event_name": "push",
            "ref": f"refs/tags/{tag}",
            "environment": "pypi",
            "workflow": ".github/workflows/publish.yml",
        }
    ]


def test_a_tag_that_is_not_the_tools_version_fails_before_the_publish_job(tmp_path: Path) -> None:
    result, workspace, token_requests = run_publish(tmp_path, "tool-v99.0.0")
    build = result.jobs["build"]
    failed = build.failed_step
    assert failed is not None and failed.name.startswith("Test the wheel in a fresh venv"), result.log()
    assert "expected ecs_model_pipeline-99.0.0-py3-none-any.whl" in failed.output
    assert "__version__ must say the same" in failed.output
    assert result.jobs["publish"].status == "skipped"
    assert token_requests == []


def test_tool_tags_and_model_tags_trigger_different_workflows() -> None:
    publish, release = load(WORKFLOWS / "publish.yml"), load(WORKFLOWS / "release.yml")
    assert is_triggered(publish, Event.tag_push("tool-v0.2.0", REPOSITORY))
    assert not is_triggered(release, Event.tag_push("tool-v0.2.0", REPOSITORY))
    assert is_triggered(release, Event.tag_push("v0.2.0", REPOSITORY))
    assert not is_triggered(publish, Event.tag_push("v0.2.0", REPOSITORY))
    assert (ROOT / "scripts" / "check_dist.py").is_file()
