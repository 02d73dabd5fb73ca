"""The extension settings in the service template: task role statements, secrets and the execution
role's reads of exactly their ARNs, the CPU architecture, ECS Exec, merged variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline import config
from pipeline.templates.service import build_service
from tests.extension_settings import KMS_KEY, MODEL_PREFIX, PARAMETER, SECRET, SECRET_KEY, extension_raw
from tests.templates.test_service import one, resources


@pytest.fixture(scope="module")
def extended(project_root: Path) -> config.Settings:
    return config.parse(extension_raw(project_root), root=project_root)


def _role(t: Any, name: str) -> dict[str, Any]:
    return dict(resources(t, "AWS::IAM::Role")[name]["Properties"])


def _policies(role: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {p["PolicyName"]: p["PolicyDocument"]["Statement"] for p in role.get("Policies", [])}


def _container(t: Any) -> dict[str, Any]:
    return dict(one(t, "AWS::ECS::TaskDefinition")["ContainerDefinitions"][0])


def test_without_extensions_the_task_role_has_no_rights(settings: config.Settings) -> None:
    for env in settings.environment_names:
        t = build_service(settings, env)
        assert "Policies" not in _role(t, "TaskRole")
        assert list(_policies(_role(t, "ExecutionRole"))) == ["pull-image-and-write-logs"]
        container = _container(t)
        assert container["ReadonlyRootFilesystem"] is True and "Secrets" not in container
        assert "EnableExecuteCommand" not in one(t, "AWS::ECS::Service")
        assert one(t, "AWS::ECS::TaskDefinition")["RuntimePlatform"]["CpuArchitecture"] == "X86_64"


def test_task_policy_statements_reach_the_task_role(extended: config.Settings) -> None:
    staging = _policies(_role(build_service(extended, "staging"), "TaskRole"))
    assert staging["task-policy"] == [
        {"Action": ["s3:GetObject"], "Effect": "Allow", "Resource": [MODEL_PREFIX]},
        {"Action": ["s3:DeleteObject"], "Effect": "Deny", "Resource": [MODEL_PREFIX]},
        {"Action": ["s3:ListBucket"], "Effect": "Allow", "Resource": ["arn:aws:s3:::acme-models"]},
    ]
    production = _policies(_role(build_service(extended, "production"), "TaskRole"))
    assert [s["Action"] for s in production["task-policy"]] == [["s3:GetObject"], ["s3:DeleteObject"]]


def test_secrets_reach_the_container_and_the_execution_role_reads_exactly_them(extended: config.Settings) -> None:
    t = build_service(extended, "staging")
    assert _container(t)["Secrets"] == [
        {"Name": "API_TOKEN", "ValueFrom": PARAMETER},
        {"Name": "DB_PASSWORD", "ValueFrom": SECRET_KEY},
        {"Name": "DB_URL", "ValueFrom": SECRET},
    ]
    reads = _policies(_role(t, "ExecutionRole"))["read-secrets"]
    assert reads == [
        {"Action": ["secretsmanager:GetSecretValue"], "Effect": "Allow", "Resource": [SECRET]},  # one secret, two keys
        {"Action": ["ssm:GetParameters"], "Effect": "Allow", "Resource": [PARAMETER]},
        {"Action": ["kms:Decrypt"], "Effect": "Allow", "Resource": [KMS_KEY]},
    ]


def test_no_kms_key_no_decrypt(project_root: Path) -> None:
    raw = extension_raw(project_root)
    del raw["service"]["secrets_kms_key"]
    del raw["service"]["secrets"]
    settings = config.parse(raw, root=project_root)
    reads = _policies(_role(build_service(settings, "staging"), "ExecutionRole"))["read-secrets"]
    assert reads == [{"Action": ["secretsmanager:GetSecretValue"], "Effect": "Allow", "Resource": [SECRET]}]
    assert "read-secrets" not in _policies(_role(build_service(settings, "production"), "ExecutionRole"))


def test_ecs_exec_only_where_enabled_and_with_a_writable_root(extended: config.Settings) -> None:
    staging = build_service(extended, "staging")
    assert one(staging, "AWS::ECS::Service")["EnableExecuteCommand"] is True
    assert _policies(_role(staging, "TaskRole"))["ecs-exec"] == [
        {
            "Action": [
                "ssmmessages:CreateControlChannel",
                "ssmmessages:CreateDataChannel",
                "ssmmessages:OpenControlChannel",
                "ssmmessages:OpenDataChannel",
            ],
            "Effect": "Allow",
            "Resource": ["*"],
        }
    ]
    assert _container(staging)["ReadonlyRootFilesystem"] is False  # the SSM agent writes into the container
    production = build_service(extended, "production")
    assert "EnableExecuteCommand" not in one(production, "AWS::ECS::Service")
    assert "ecs-exec" not in _policies(_role(production, "TaskRole"))
    assert _container(production)["ReadonlyRootFilesystem"] is True


def test_architecture_and_merged_variables(extended: config.Settings) -> None:
    for env, level in (("staging", "debug"), ("production", "info")):
        t = build_service(extended, env)
        assert one(t, "AWS::ECS::TaskDefinition")["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
        variables = {e["Name"]: e["Value"] for e in _container(t)["Environment"]}
        assert variables["LOG_LEVEL"] == level and variables["MODEL_BUCKET"] == "acme-models"
        assert variables["PORT"] == "8080"
