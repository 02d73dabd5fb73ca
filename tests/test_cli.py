"""Expected failures are one line on stderr with a hint, the right exit code, and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_golden_set


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True, env=env)


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (
            ("release", "latest", "--env", "staging"),
            2,
            "error: 'latest' is not a release version. Tag releases as vMAJOR.MINOR.PATCH, e.g. v1.4.0.",
        ),
        (
            ("release", "v1.0.0", "--env", "qa"),
            2,
            "error: environment: unknown environment 'qa'. Use one of: staging, production.",
        ),
        (("rollback", "--env", "staging"), 2, "error: give a VERSION or --previous."),
        (
            ("rollback", "1.0.0", "--previous", "--env", "staging"),
            2,
            "error: give a VERSION (1.0.0) or --previous, not both.",
        ),
        (
            ("history", "--env", "staging", "--limit", "0"),
            2,
            "error: Invalid value for '--limit': 0 is not in the range x>=1.",
        ),
        (
            ("destroy", "--env", "staging", "--env", "production", "--yes"),
            2,
            "error: Invalid value for '--env': given 2 times ('staging', 'production'); pass it once.",
        ),
        (
            ("release", "v1.0.0", "--env", "staging", "--summary", "/nonexistent/summary.md"),
            2,
            "error: cannot write the job summary to /nonexistent/summary.md: No such file or directory.",
        ),
        (
            ("status", "--env", "qa"),
            2,
            "error: environment: unknown environment 'qa'. Use one of: staging, production.",
        ),
    ],
)
def test_bad_input_is_one_clear_line(project_root: Path, args: tuple[str, ...], code: int | None, line: str) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_"))}
    env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    result = run(*args, cwd=project_root, env=env)
    assert "Traceback" not in result.stderr
    assert line in result.stderr
    assert result.returncode == (code if code is not None else result.returncode) and result.returncode != 0


def test_bad_settings_exit_2_naming_the_key(tmp_path: Path, project_root: Path) -> None:
    text = (project_root / "pipeline.toml").read_text().replace("memory = 1024", "memory = 999")
    (tmp_path / "pipeline.toml").write_text(text)
    copy_golden_set(tmp_path)
    (tmp_path / "examples" / "model-server" / "Dockerfile").write_text("FROM scratch\n")
    result = run("check", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: service.memory: Fargate offers no 512 cpu task with 999 MiB. With cpu 512 use 1024 to 4096 MiB in steps of 1024."
    )


def test_check_prints_the_rollout_knobs(project_root: Path) -> None:
    result = run("check", cwd=project_root)
    assert result.returncode == 0
    assert "modeled rollout 75s" in result.stdout


def test_help_on_every_command(project_root: Path) -> None:
    listed = run("--help", cwd=project_root).stdout
    commands = [
        line.split()[0]
        for line in listed.split("Commands:")[1].splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    ]
    assert {"release", "rollback", "status", "history", "synth", "lint", "bootstrap", "diff"} <= set(commands)
    for command in commands:
        assert run(command, "--help", cwd=project_root).returncode == 0


@pytest.mark.parametrize(
    ("raised", "line"),
    [
        (
            "Interrupted",
            "error: interrupted while waiting for app-service-staging to deploy "
            "(app-service-staging is UPDATE_IN_PROGRESS). Run `pipeline status --env staging`.",
        ),
        ("KeyboardInterrupt", "interrupted"),
    ],
)
def test_ctrl_c_exits_130_with_one_line(raised: str, line: str, capsys: pytest.CaptureFixture[str]) -> None:
    import click

    from pipeline.cli import run
    from pipeline.errors import Interrupted

    @click.command()
    def stopped() -> None:
        if raised == "Interrupted":
            raise Interrupted(
                "interrupted while waiting for app-service-staging to deploy (app-service-staging is UPDATE_IN_PROGRESS)",
                hint="Run `pipeline status --env staging`.",
            )
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exited:
        run(stopped, [])
    assert exited.value.code == 130
    assert capsys.readouterr().err.strip() == line


def test_a_bare_pipeline_prints_the_help(project_root: Path) -> None:
    result = run(cwd=project_root)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("Usage: pipeline [OPTIONS] [COMMAND]") and "Commands:" in result.stdout


def git_project(root: Path, project_root: Path) -> Path:
    """The project's settings and templates in a git repository of their own, committed."""
    root.mkdir()
    (root / "pipeline.toml").write_text((project_root / "pipeline.toml").read_text())
    copy_golden_set(root)
    assert run("synth", cwd=root).returncode == 0
    for args in (("init", "-q"), ("add", "-A"), ("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")):
        subprocess.run(["git", *args], cwd=root, check=True)
    return root


def test_synth_into_a_folder_it_cannot_write_is_one_line(tmp_path: Path, project_root: Path) -> None:
    (tmp_path / "a-file").write_text("")
    result = run("synth", "--out", str(tmp_path / "a-file" / "sub"), cwd=project_root)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: cannot write the templates to {tmp_path}/a-file/sub: Not a directory.")


def test_synth_rewrites_a_committed_template_that_is_not_utf8(tmp_path: Path, project_root: Path) -> None:
    root = git_project(tmp_path / "p", project_root)
    (root / "cloudformation" / "registry.yaml").write_bytes(b"\xff\xfe")
    checked = run("synth", "--check", cwd=root)
    assert (checked.returncode, checked.stderr.strip()) == (
        1,
        f"error: stale templates in {root}/cloudformation: registry.yaml. Run `pipeline synth` and commit the result.",
    )
    assert run("synth", cwd=root).returncode == 0
    assert run("synth", "--check", cwd=root).returncode == 0


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (None, "cannot be read (No such file or directory)"),
        ("{", "cannot be read (not a JSON document)"),
        ("[]", "the event is not a pull request"),
        ('{"pull_request": null}', "the event is not a pull request"),
        ('{"pull_request": {"number": "abc"}}', "the event is not a pull request"),
    ],
)
def test_template_diff_comment_refuses_an_event_that_is_not_a_pull_request(
    tmp_path: Path, project_root: Path, event: str | None, problem: str
) -> None:
    import os

    root = git_project(tmp_path / "p", project_root)
    event_path = tmp_path / "event.json"
    if event is not None:
        event_path.write_text(event)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    # Port 9 answers nothing: the event is refused before any request.
    env.update(
        GITHUB_TOKEN="x",
        GITHUB_REPOSITORY="o/r",
        GITHUB_API_URL="http://127.0.0.1:9",
        GITHUB_EVENT_PATH=str(event_path),
    )
    result = run("template-diff", "--base", "HEAD", "--comment", cwd=root, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: GITHUB_EVENT_PATH {event_path}: {problem}")


def test_template_diff_outside_a_git_repository_says_so(tmp_path: Path, project_root: Path) -> None:
    (tmp_path / "pipeline.toml").write_text((project_root / "pipeline.toml").read_text())
    copy_golden_set(tmp_path)
    assert run("synth", cwd=tmp_path).returncode == 0
    result = run("template-diff", "--base", "HEAD", cwd=tmp_path)
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"error: {tmp_path} is not in a git repository. Run template-diff in the repository's clone.",
    )


def test_a_rollback_without_a_version_is_its_one_line_alone(project_root: Path) -> None:
    """Refused before the context is built: no GitHub notice, no connection, just the fix."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_"))}
    env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    result = run("rollback", "--env", "staging", cwd=project_root, env=env)
    assert (result.returncode, result.stderr) == (
        2,
        "error: give a VERSION or --previous. For example `pipeline rollback --env staging 1.0.0`.\n",
    )
