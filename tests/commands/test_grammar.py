"""The one grammar of every command, where no AWS is needed: `--env` (and the deprecated positional
form), usage errors on one line with exit 2, the $GITHUB_OUTPUT format, shell completion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.commands.grammar import write_github_output
from tests.workflows.actions_runner import read_output_file


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True, env=env)


def offline() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_", "_PIPELINE"))}
    env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    return env


ENV_COMMANDS = [
    "release v1.0.0",
    "rollback 1.0.0",
    "deploy 1.0.0",
    "status",
    "history",
    "diff",
    "roll",
    "smoke",
    "logs",
    "destroy",
]


@pytest.mark.parametrize("command", ENV_COMMANDS)
def test_every_environment_command_takes_env_and_says_so_on_one_line(project_root: Path, command: str) -> None:
    name = command.split()[0]
    assert "--env NAME" in run(name, "--help", cwd=project_root).stdout
    missing = run(*command.split(), cwd=project_root, env=offline())
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == (
        "error: missing option '--env NAME' (the environment from pipeline.toml, e.g. staging). "
        f"Run `pipeline {name} --help`.\n"
    )
    unknown = run(*command.split(), "--env", "qa", cwd=project_root, env=offline())
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "error: environment: unknown environment 'qa'. Use one of: staging, production.\n",
    )


@pytest.mark.parametrize("command", ["status", "history", "diff", "roll", "smoke"])
def test_the_positional_environment_is_a_deprecated_alias(project_root: Path, command: str) -> None:
    legacy = run(command, "qa", cwd=project_root, env=offline())
    assert legacy.returncode == 2
    assert legacy.stderr.splitlines() == [
        f"warning: `pipeline {command} qa` is deprecated; use `pipeline {command} --env qa`",
        "error: environment: unknown environment 'qa'. Use one of: staging, production.",
    ]
    assert "[LEGACY_ENVIRONMENT]" not in run(command, "--help", cwd=project_root).stdout, "hidden from the usage"
    both = run(command, "staging", "--env", "production", cwd=project_root, env=offline())
    assert (both.returncode, both.stderr.strip()) == (
        2,
        f"error: two environments given ('staging' and --env 'production'); pass only --env. "
        f"Run `pipeline {command} --help`.",
    )


def test_the_old_deploy_order_still_works(project_root: Path) -> None:
    legacy = run("deploy", "qa", "1.0.0", cwd=project_root, env=offline())
    assert legacy.stderr.splitlines() == [
        "warning: `pipeline deploy qa` is deprecated; use `pipeline deploy --env qa`",
        "error: environment: unknown environment 'qa'. Use one of: staging, production.",
    ]


def test_a_usage_error_is_one_line_with_exit_2(project_root: Path) -> None:
    result = run("status", "--env", "staging", "--outptu", "json", cwd=project_root, env=offline())
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: No such option '--outptu'. Did you mean '--output'? Run `pipeline status --help`.\n"
    bad_choice = run("history", "--env", "staging", "--output", "yaml", cwd=project_root, env=offline())
    assert bad_choice.returncode == 2 and len(bad_choice.stderr.splitlines()) == 1
    assert "'yaml' is not one of 'table', 'json'" in bad_choice.stderr


def test_step_outputs_are_written_as_github_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_text("earlier=step\n")
    tricky = "line one\nghadelimiter_x\nname=value"
    write_github_output(path, {"url": "http://example.test/", "digest": "sha256:" + "a" * 64, "notes": tricky})
    assert read_output_file(path) == {
        "earlier": "step",
        "url": "http://example.test/",
        "digest": "sha256:" + "a" * 64,
        "notes": tricky,
    }
    write_github_output(None, {"url": "x"})  # not in Actions: nothing to write


def test_an_unwritable_github_output_is_one_clear_error(tmp_path: Path) -> None:
    from pipeline.errors import InputError

    with pytest.raises(InputError, match=r"cannot write the step outputs to .*missing/output: No such file"):
        write_github_output(tmp_path / "missing" / "output", {"url": "x"})


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F"),
        ("zsh", "#compdef pipeline"),
        ("fish", "complete --no-files --command pipeline"),
    ],
)
def test_completion_prints_the_shell_script(project_root: Path, shell: str, marker: str) -> None:
    result = run("completion", shell, cwd=project_root)
    assert result.returncode == 0 and marker in result.stdout and "_PIPELINE_COMPLETE" in result.stdout


def test_completion_offers_commands_options_and_the_environments(project_root: Path) -> None:
    def complete(words: str, cword: int, cwd: Path = project_root) -> list[str]:
        env = {**os.environ, "_PIPELINE_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
        env.pop("PIPELINE_CONFIG", None)
        done = subprocess.run([sys.executable, "-m", "pipeline"], cwd=cwd, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line]

    assert "status" in complete("pipeline sta", 1)
    assert {"--env", "--output", "--dry-run"} <= set(complete("pipeline release v1.0.0 --", 3))
    assert complete("pipeline logs --env ", 3) == ["staging", "production"]
    assert complete("pipeline logs --env pro", 3) == ["production"]
    assert complete("pipeline logs --env ", 3, cwd=Path("/")) == [], "no settings there: nothing offered"


def test_check_answers_in_json_too(project_root: Path) -> None:
    import json

    result = run("check", "--output", "json", cwd=project_root)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["app"], document["valid"]) == ("iris-classifier", True)
    assert [(e["environment"], e["modeled_rollout_seconds"]) for e in document["environments"]] == [
        ("staging", 75),
        ("production", 75),
    ]
