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
        (("rollback", "--env", "staging"), None, "give either a VERSION or --previous"),
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
