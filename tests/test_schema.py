"""The JSON Schema of pipeline.toml: valid draft 2020-12, accepts the project's settings, refuses typos."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import fields
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pipeline import config
from pipeline.schema import DESCRIPTIONS, build_schema


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = build_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _errors(validator: Draft202012Validator, raw: dict[str, Any]) -> list[str]:
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(raw))


def test_the_project_settings_validate(validator: Draft202012Validator, raw_settings: dict[str, Any]) -> None:
    assert _errors(validator, raw_settings) == []


def _with(raw: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


REFUSED: list[tuple[str, Any, str | None]] = [
    ("service.warmup", 3601, "greater than the maximum of 3600"),
    ("environments.production.certificate_arn", False, "is not of type 'string'"),
    ("service.contaner_port", 8080, "Additional properties are not allowed ('contaner_port' was unexpected)"),
    ("enviroments", {}, "Additional properties are not allowed ('enviroments' was unexpected)"),
    ("environments.staging.replicas", 2, "('replicas' was unexpected)"),
    ("image.builder", "buildha", "'buildha' is not one of ['auto', 'buildx', 'buildah']"),
    ("environments.staging.strategy", "canery", "'canery' is not one of"),
    ("service.cpu", 300, "300 is not one of"),
    ("service.container_port", 70000, "70000 is greater than the maximum of 65535"),
    ("service.container_port", "8080", "'8080' is not of type 'integer'"),
    ("service.alarm_latency_p99", 0, "0 should not be valid under {'maximum': 0}"),
    ("service.alarm_latency_p99", 0.5, None),
    ("service.log_retention_days", 31, "31 is not one of"),
    ("app.account", "12345", "does not match"),
    ("environments.staging.variables.PORT", "9000", "'PORT' should not be valid"),
    ("environments.staging.vpc_id", "vpc-0123456789abcdef0", "should not be valid"),
    ("environments.Prod", {}, "'Prod' does not match"),
    ("image.architecture", "arm64", "'arm64' is not one of ['X86_64', 'ARM64']"),
    ("image.architecture", "ARM64", None),
    ("service.execute_command", "yes", "'yes' is not of type 'boolean'"),
    ("environments.staging.execute_command", True, None),
    ("service.secrets_kms_key", "alias/mine", "does not match"),
    ("service.variables.PORT", "1", "'PORT' should not be valid"),
    ("service.secrets.DB", "arn:aws:s3:::bucket", "is not valid under any of the given schemas"),
    ("environments.staging.secrets.DB", "arn:aws:ssm:us-east-1:123456789012:parameter/db", None),
    ("service.task_policy", [{"actions": ["s3:GetObject"]}], "'resources' is a required property"),
    ("service.task_policy", [{"actions": ["s3:GetObject"], "resources": ["*"], "efect": "Deny"}], "'efect' was"),
    ("environments.staging.task_policy", [{"actions": ["s3 GetObject"], "resources": ["*"]}], "does not match"),
    ("environments.staging.task_policy", [{"actions": ["s3:Get*"], "resources": ["arn:aws:s3:::b/*"]}], None),
]


@pytest.mark.parametrize(("dotted", "value", "message"), REFUSED, ids=[r[0] + "=" + repr(r[1]) for r in REFUSED])
def test_mistakes_fail_the_schema_and_fixes_pass(
    validator: Draft202012Validator, raw_settings: dict[str, Any], dotted: str, value: Any, message: str
) -> None:
    errors = _errors(validator, _with(raw_settings, dotted, value))
    if message is None:
        assert errors == []
    else:
        assert any(message in e for e in errors), errors


def test_every_settings_key_has_a_description() -> None:
    """A new settings field without a line in DESCRIPTIONS fails here (and in build_schema)."""
    tables = {
        "app": config.AppSettings,
        "image": config.ImageSettings,
        "service": config.ServiceSettings,
        "smoke": config.SmokeSettings,
        "gate": config.GateSettings,
        "environments": config.Network,
    }
    wanted = {f"{table}.{f.name}" for table, cls in tables.items() for f in fields(cls)}
    wanted |= {f"environments.{f.name}" for cls in (config.Delivery, config.TrafficShift) for f in fields(cls)}
    wanted |= {"environments.certificate_arn"}
    wanted |= {f"{table}.{sub}" for table in ("service", "environments") for sub in config.CONTAINER_TABLES}
    assert wanted == set(DESCRIPTIONS)


def test_defaults_in_the_schema_are_the_loaders() -> None:
    service = build_schema()["properties"]["service"]["properties"]
    defaults = {k: v.get("default") for k, v in service.items() if k not in config.CONTAINER_TABLES}
    assert defaults == {f.name: f.default for f in fields(config.ServiceSettings)}


def test_pipeline_schema_prints_it() -> None:
    result = subprocess.run([sys.executable, "-m", "pipeline", "schema"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == build_schema()


def test_a_project_using_every_extension_validates(validator: Draft202012Validator, project_root: Any) -> None:
    from tests.extension_settings import extension_raw

    assert _errors(validator, extension_raw(project_root)) == []
