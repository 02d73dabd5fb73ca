"""A service stack using every extension setting deploys with CloudFormation acting as the
environment's execution role from ci-access (the provider schemas' handler permissions): task role
policies, secrets, ARM64 and ECS Exec need no right the committed roles lack."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

from pipeline import config
from pipeline.aws.clients import Clients
from pipeline.aws.oidc import ci_access_parameters
from pipeline.clock import WallClock
from pipeline.steps.deploy import Deployer
from pipeline.templates import names, render, stack_specs
from tests.extension_settings import extension_raw

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
DIGEST = "sha256:" + "a" * 64


@pytest.fixture(scope="module")
def ground() -> Iterator[Any]:
    from local_ground.ground import LocalGround

    with LocalGround(run_tasks=False, github_repository="acme/iris-classifier", enforce_identity=True) as local:
        with mock.patch.dict(os.environ, local.environ()):
            yield local


def test_every_extension_deploys_as_the_execution_role(ground: Any) -> None:
    settings = config.parse(extension_raw(ROOT), root=ROOT)
    clients = Clients(REGION, account=settings.app.account)
    operator = Deployer(clients.cloudformation, WallClock(), lambda _line: None, poll=0.05)
    specs = {spec.kind if spec.environment is None else spec.environment: spec for spec in stack_specs(settings)}
    for kind in ("registry", "ci-access"):
        params = ci_access_parameters(clients, settings, lambda _l: None) if kind == "ci-access" else {}
        operator.deploy(specs[kind].stack_name, render(specs[kind].build()), params)
    as_execution_role = Deployer(
        boto3.client("cloudformation", region_name=REGION),
        WallClock(),
        lambda _line: None,
        poll=0.05,
        role_arn=names.execution_role_arn(settings, "staging"),
    )
    uri = boto3.client("ecr", region_name=REGION).describe_repositories()["repositories"][0]["repositoryUri"]
    stack = specs["staging"].stack_name
    as_execution_role.deploy(
        stack, render(specs["staging"].build()), {"ImageUri": f"{uri}@{DIGEST}", "Version": "1.0.0"}
    )
    cf = boto3.client("cloudformation", region_name=REGION)
    described = cf.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert described["RoleARN"] == names.execution_role_arn(settings, "staging")
    roles = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cf.describe_stack_resources(StackName=stack)["StackResources"]
        if r.get("ResourceType") == "AWS::IAM::Role"
    }
    iam = boto3.client("iam", region_name=REGION)
    task_policies = iam.list_role_policies(RoleName=roles["TaskRole"].split("/")[-1])["PolicyNames"]
    assert sorted(task_policies) == ["ecs-exec", "task-policy"]
    execution_policies = iam.list_role_policies(RoleName=roles["ExecutionRole"].split("/")[-1])["PolicyNames"]
    assert "read-secrets" in execution_policies
