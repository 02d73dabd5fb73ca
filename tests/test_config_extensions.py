"""The extension points as settings: task-role statements, secrets, CPU architecture, ECS Exec and
variables per environment, each merged from [service] into the environments and validated at once."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline import config
from pipeline.errors import ConfigProblems
from pipeline.task_policy import ESCALATION_ACTIONS, escalation_covered
from tests.extension_settings import KMS_KEY, MODEL_PREFIX, PARAMETER, SECRET, SECRET_KEY, extension_raw


def test_defaults_add_nothing(settings: config.Settings) -> None:
    assert settings.image.architecture == "X86_64"
    for env in settings.environments:
        assert env.secrets == () and env.task_policy == ()
        assert not env.service.execute_command and env.service.secrets_kms_key is None


def test_environments_merge_over_service(project_root: Path) -> None:
    settings = config.parse(extension_raw(project_root), root=project_root)
    assert settings.image.architecture == "ARM64"
    staging, production = settings.environment("staging"), settings.environment("production")
    # Variables: the environment's win by name; [service]'s reach every environment.
    assert dict(staging.variables)["LOG_LEVEL"] == "debug" and dict(production.variables)["LOG_LEVEL"] == "info"
    assert dict(production.variables)["MODEL_BUCKET"] == "acme-models"
    assert {s.name: s.value_from for s in staging.secrets} == {
        "API_TOKEN": PARAMETER,
        "DB_PASSWORD": SECRET_KEY,
        "DB_URL": SECRET,
    }
    assert [s.name for s in production.secrets] == ["API_TOKEN", "DB_PASSWORD"]
    # Statements: [service]'s first, then the environment's.
    assert [s.actions for s in staging.task_policy] == [("s3:GetObject",), ("s3:DeleteObject",), ("s3:ListBucket",)]
    assert [s.effect for s in production.task_policy] == ["Allow", "Deny"]
    assert staging.service.execute_command and not production.service.execute_command
    assert staging.service.secrets_kms_key == production.service.secrets_kms_key == KMS_KEY


def test_a_secret_names_the_arn_iam_scopes_to() -> None:
    assert config.Secret("A", SECRET_KEY).resource == SECRET
    assert config.Secret("A", SECRET_KEY).store == "secretsmanager"
    assert config.Secret("B", PARAMETER).resource == PARAMETER and config.Secret("B", PARAMETER).store == "ssm"


def _set(raw: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


def _statement(actions: list[str], effect: str | None = None, resources: Any = (MODEL_PREFIX,)) -> list[Any]:
    return [{"actions": actions, "resources": list(resources)} | ({"effect": effect} if effect else {})]


REFUSED: list[tuple[str, Any, str, str]] = [
    ("service.task_policy", _statement(["*"]), "service.task_policy[0].actions", "'*' allows every action"),
    ("service.task_policy", _statement(["*:*"]), "service.task_policy[0].actions", "'*:*' allows every action"),
    (
        "service.task_policy",
        _statement(["iam:*"]),
        "service.task_policy[0].actions",
        "Allow of iam:* (it covers iam:PassRole) would let the service escalate its own rights",
    ),
    (
        "environments.staging.task_policy",
        _statement(["s3:GetObject", "sts:AssumeRole"]),
        "environments.staging.task_policy[0].actions",
        "Allow of sts:AssumeRole would let the service escalate",
    ),
    ("service.task_policy", _statement(["IAM:putrolepolicy"]), "service.task_policy[0].actions", "escalate"),
    ("service.task_policy", _statement(["iam:Put*"]), "service.task_policy[0].actions", "it covers iam:PutUserPolicy"),
    ("service.task_policy", _statement(["s*:Assume*"]), "service.task_policy[0].actions", "covers sts:AssumeRole"),
    ("service.task_policy", _statement(["s3 GetObject"]), "service.task_policy[0].actions", "not an IAM action"),
    (
        "service.task_policy",
        _statement(["s3:GetObject"], "allow"),
        "service.task_policy[0].effect",
        "not Allow or Deny",
    ),
    (
        "service.task_policy",
        _statement(["s3:GetObject"], resources=["my-bucket"]),
        "service.task_policy[0].resources",
        "not an ARN",
    ),
    ("service.task_policy", _statement([]), "service.task_policy[0].actions", "is empty"),
    ("service.task_policy", [{"actions": ["s3:GetObject"]}], "service.task_policy[0].resources", "missing"),
    (
        "service.task_policy",
        [{"action": ["s3:GetObject"], "resources": ["*"]}],
        "service.task_policy[0].action",
        "Did you mean actions?",
    ),
    ("service.task_policy", {"actions": ["s3:GetObject"]}, "service.task_policy", "must be a list of tables"),
    (
        "service.secrets",
        {"DB": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"},
        "service.secrets.DB",
        "not a Secrets Manager secret or SSM parameter ARN",
    ),
    ("service.secrets", {"DB": "arn:aws:s3:::bucket/db"}, "service.secrets.DB", "not a Secrets Manager"),
    ("service.secrets", {"DB": 3}, "service.secrets.DB", "must be a string"),
    (
        "environments.staging.secrets",
        {"PORT": PARAMETER},
        "environments.staging.secrets.PORT",
        "PORT is set from container_port",
    ),
    ("environments.staging.secrets", {"BAD-NAME": PARAMETER}, "environments.staging.secrets.BAD-NAME", "not a valid"),
    (
        "environments.staging.secrets",
        {"MODEL_EXPECTED_FEATURES": PARAMETER},
        "environments.staging.secrets.MODEL_EXPECTED_FEATURES",
        "both a variable and a secret",
    ),
    (
        "service.variables",
        {"MODEL_VERSION": "1"},
        "service.variables.MODEL_VERSION",
        "MODEL_VERSION is set to the version",
    ),
    ("service.variables", {"LIMIT": 3}, "service.variables.LIMIT", "must be a string"),
    ("service.secrets_kms_key", "alias/aws/secretsmanager", "service.secrets_kms_key", "not a KMS key ARN"),
    ("service.execute_command", "yes", "service.execute_command", "must be true or false"),
    ("image.architecture", "arm", "image.architecture", "unknown architecture 'arm'"),
    ("service.secret", {}, "service.secret", "Did you mean secrets?"),
]


@pytest.mark.parametrize(("dotted", "value", "key", "message"), REFUSED, ids=[f"{r[0]}={r[1]!r}" for r in REFUSED])
def test_bad_extension_settings_name_the_field(
    raw_settings: dict[str, Any], dotted: str, value: Any, key: str, message: str
) -> None:
    with pytest.raises(ConfigProblems) as caught:
        config.parse(_set(raw_settings, dotted, value))
    assert caught.value.keys[0] == key  # a misspelt key is also a missing one
    line = caught.value.one_line()
    assert message in line and "\n" not in line, line
    assert caught.value.problems[0].hint


def test_deny_may_name_anything(raw_settings: dict[str, Any]) -> None:
    raw = _set(raw_settings, "service.task_policy", _statement(["*", "iam:*", "sts:AssumeRole"], "Deny"))
    statement = config.parse(raw).environment("staging").task_policy[0]
    assert statement.effect == "Deny" and statement.actions == ("*", "iam:*", "sts:AssumeRole")


def test_reads_and_writes_that_escalate_nothing_pass() -> None:
    for action in ("s3:GetObject", "s3:Get*", "iam:GetRole", "iam:List*", "sts:GetCallerIdentity", "dynamodb:*"):
        assert escalation_covered(action) is None, action
    assert all(escalation_covered(a) == a for a in ESCALATION_ACTIONS)


def test_every_problem_at_once(raw_settings: dict[str, Any]) -> None:
    raw = _set(raw_settings, "service.task_policy", _statement(["*"]) + _statement(["iam:PassRole"]))
    raw = _set(raw, "environments.production.secrets", {"TOKEN": "not-an-arn"})
    raw = _set(raw, "image.architecture", "RISCV")
    caught = config_problems(raw)
    assert set(caught.keys) == {
        "image.architecture",
        "service.task_policy[0].actions",
        "service.task_policy[1].actions",
        "environments.production.secrets.TOKEN",
    }


def config_problems(raw: dict[str, Any]) -> ConfigProblems:
    with pytest.raises(ConfigProblems) as caught:
        config.parse(raw)
    return caught.value


def test_pipeline_check_refuses_an_escalating_statement(tmp_path: Path, project_root: Path) -> None:
    text = (project_root / "pipeline.toml").read_text().replace('context = "examples/model-server"', 'context = "."')
    text += '\n[[environments.staging.task_policy]]\nactions = ["iam:PassRole"]\nresources = ["*"]\n'
    (tmp_path / "pipeline.toml").write_text(text)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "check", "--config", str(tmp_path / "pipeline.toml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "environments.staging.task_policy[0].actions: Allow of iam:PassRole would let" in result.stderr


def test_the_commented_examples_pipeline_init_writes_are_valid_settings(tmp_path: Path) -> None:
    import re
    import tomllib

    from pipeline.init import Answers, settings_text

    text = settings_text(Answers("demo-model", "us-east-1", "123456789012", "acme/demo"))
    examples = [line for line in text.splitlines() if re.match(r"^# (\[|[a-z_]+ =|[A-Z_]+ =)", line)]
    assert len(examples) == 7, examples
    uncommented = "\n".join(line[2:] if line in examples else line for line in text.splitlines())
    uncommented = uncommented.replace("REGION", "us-east-1").replace("ACCOUNT", "123456789012")
    uncommented = uncommented.replace("BUCKET/PREFIX", "acme-models/demo")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    settings = config.parse(tomllib.loads(uncommented), root=tmp_path)
    staging = settings.environment("staging")
    assert settings.image.architecture == "ARM64" and staging.service.execute_command
    assert [s.name for s in staging.secrets] == ["DB_PASSWORD"] and staging.task_policy[0].actions == ("s3:GetObject",)
