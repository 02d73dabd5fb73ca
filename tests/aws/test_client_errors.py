"""A bad AWS profile, config file, endpoint URL or half-set keys is one line naming what to fix, exit 2,
before anything is asked of AWS; a botocore error no step translated is still one line (cli.run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from botocore.exceptions import SSOTokenLoadError

from pipeline.aws.clients import Clients

COMMANDS = ("status", "history", "logs", "diff", "roll", "smoke")


def pipeline(*args: str, cwd: Path, **variables: str | None) -> subprocess.CompletedProcess[str]:
    """`pipeline ARGS` with fake keys and an endpoint nothing listens on (never real AWS), plus `variables`
    (None unsets one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_"))}
    env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    for name, value in variables.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    command = [sys.executable, "-m", "pipeline", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


def assert_one_line(result: subprocess.CompletedProcess[str], line: str) -> None:
    assert "Traceback" not in result.stderr
    errors = [text for text in result.stderr.splitlines() if text.startswith("error:")]
    assert errors == [line], result.stderr
    assert result.returncode == 2


def test_an_unknown_profile_names_aws_profile(project_root: Path) -> None:
    result = pipeline("status", "--env", "staging", cwd=project_root, AWS_PROFILE="nosuch")
    assert_one_line(
        result,
        "error: AWS profile 'nosuch' is not in the AWS config (AWS_PROFILE). "
        "Fix AWS_PROFILE, or add the profile with aws configure --profile nosuch.",
    )


def test_an_unparsable_config_file_names_the_file(project_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("[default\n")
    result = pipeline("status", "--env", "staging", cwd=project_root, AWS_CONFIG_FILE=str(config))
    assert_one_line(
        result,
        f"error: the AWS config file {config} cannot be parsed. Fix its syntax ([default] or [profile NAME] "
        "headers, key = value lines), or point AWS_CONFIG_FILE or AWS_SHARED_CREDENTIALS_FILE at another file.",
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_half_set_keys_name_the_missing_variable(project_root: Path, command: str) -> None:
    result = pipeline(command, "--env", "staging", cwd=project_root, AWS_SECRET_ACCESS_KEY=None)
    assert_one_line(
        result,
        "error: AWS credentials in the environment are incomplete: AWS_SECRET_ACCESS_KEY is not set. "
        "Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or unset both to use a profile or OIDC.",
    )


@pytest.mark.parametrize("url", ["notaurl", "ftp://x", "http://[::1", "http://x:abc"])
def test_a_malformed_endpoint_url_names_aws_endpoint_url(project_root: Path, url: str) -> None:
    result = pipeline("status", "--env", "staging", cwd=project_root, AWS_ENDPOINT_URL=url)
    assert_one_line(
        result,
        f"error: AWS_ENDPOINT_URL {url!r} is not an http(s) URL. "
        "Unset it to use AWS itself, or set it like http://localhost:5000.",
    )


def test_an_endpoint_url_from_the_config_file_names_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.errors import AwsConfigError

    config = tmp_path / "config"
    config.write_text("[profile ci]\nendpoint_url = notaurl\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "ci")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(AwsConfigError) as raised:
        Clients("us-east-1").cloudformation  # noqa: B018 -- making the client is what fails
    assert raised.value.one_line() == (
        "endpoint_url 'notaurl' in the AWS config (profile ci) is not an http(s) URL. "
        "Fix or remove it in the AWS config file (AWS_CONFIG_FILE)."
    )


def test_a_good_endpoint_url_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://[::1]:5000")
    assert Clients("us-east-1").cloudformation.meta.endpoint_url == "http://[::1]:5000"


def test_the_cli_turns_any_untranslated_botocore_error_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import run

    @click.command()
    def expired() -> None:
        raise SSOTokenLoadError(error_msg="Token for sso-session dev does not exist")

    with pytest.raises(SystemExit) as exited:
        run(expired, [])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: AWS credentials could not be obtained: Error loading SSO Token: Token for sso-session dev does not exist. "
        "Renew them (aws sso login for an SSO profile) or fix the profile's credential_process or role."
    ]


def test_the_cli_leaves_other_exceptions_alone() -> None:
    from pipeline.cli import run

    @click.command()
    def broken() -> None:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        run(broken, [])
