"""What ECS checks of a task's execution role before the task's containers start, and the stopped
reason it gives when the role falls short (the ECS developer guide's "CannotPullContainer task
errors" and "Amazon ECS stopped task error messages"). moto in-process holds the roles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_ground.iam.execution_role import start_check, stopped_reason

ACCOUNT, REGION = "123456789012", "us-east-1"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/iris-classifier@sha256:{'a' * 64}"
REPOSITORY = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/iris-classifier"
LOG_GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/iris-classifier-staging"
TASK_ID = "0123456789abcdef0123456789abcdef"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
PULL_AND_LOG = [
    {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
    {"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "Resource": REPOSITORY},
    {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{LOG_GROUP}:*"},
]


@pytest.fixture()
def iam() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("iam", region_name=REGION)


def role(iam: Any, statements: list[dict[str, Any]], trust: dict[str, Any] = TRUST) -> str:
    arn = str(iam.create_role(RoleName="execution", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
    policy = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(RoleName="execution", PolicyName="pull-and-log", PolicyDocument=json.dumps(policy))
    return arn


def task_definition(role_arn: str | None, image: str = IMAGE, awslogs: bool = True) -> Any:
    container: dict[str, Any] = {"name": "model", "image": image}
    if awslogs:
        container["logConfiguration"] = {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": "/ecs/iris-classifier-staging",
                "awslogs-region": REGION,
                "awslogs-stream-prefix": "model",
            },
        }
    return SimpleNamespace(execution_role_arn=role_arn, container_definitions=[container])


def reason(definition: Any) -> str | None:
    return stopped_reason(definition, TASK_ID, ACCOUNT, REGION)


def test_a_role_that_may_pull_and_log_starts_the_task(iam: Any) -> None:
    assert reason(task_definition(role(iam, PULL_AND_LOG))) is None


def test_without_batch_get_image_the_pull_fails_naming_the_action_and_repository(iam: Any) -> None:
    statements = [PULL_AND_LOG[0], {**PULL_AND_LOG[1], "Action": ["ecr:GetDownloadUrlForLayer"]}, PULL_AND_LOG[2]]
    message = reason(task_definition(role(iam, statements)))
    assert message is not None and message.startswith("CannotPullContainerError: ")
    assert (
        f"AccessDeniedException: User: arn:aws:sts::{ACCOUNT}:assumed-role/execution/{TASK_ID} is not authorized "
        f"to perform: ecr:BatchGetImage on resource: {REPOSITORY} because no identity-based policy allows the "
        "ecr:BatchGetImage action"
    ) in message


def test_without_the_registry_token_the_task_cannot_authenticate_to_ecr(iam: Any) -> None:
    message = reason(task_definition(role(iam, PULL_AND_LOG[1:])))
    assert message is not None
    assert message.startswith("ResourceInitializationError: unable to pull secrets or registry auth: ")
    assert "not authorized to perform: ecr:GetAuthorizationToken on resource: * " in message


@pytest.mark.parametrize("missing", ["logs:CreateLogStream", "logs:PutLogEvents"])
def test_without_log_permissions_the_logger_args_fail_to_validate(iam: Any, missing: str) -> None:
    logs = [a for a in PULL_AND_LOG[2]["Action"] if a != missing]
    message = reason(task_definition(role(iam, [*PULL_AND_LOG[:2], {**PULL_AND_LOG[2], "Action": logs}])))
    assert message is not None
    assert message.startswith("ResourceInitializationError: failed to validate logger args: ")
    stream = f"{LOG_GROUP}:log-stream:model/model/{TASK_ID}"
    assert f"not authorized to perform: {missing} on resource: {stream} " in message


def test_an_explicit_deny_wins(iam: Any) -> None:
    deny = {"Effect": "Deny", "Action": "ecr:BatchGetImage", "Resource": "*"}
    message = reason(task_definition(role(iam, [*PULL_AND_LOG, deny])))
    assert message is not None and "with an explicit deny in an identity-based policy" in message


def test_a_role_that_does_not_exist_or_does_not_trust_ecs_tasks_cannot_be_assumed(iam: Any) -> None:
    missing = f"arn:aws:iam::{ACCOUNT}:role/nobody"
    assert reason(task_definition(missing)) == (
        f"ECS was unable to assume the role '{missing}' that was provided for this task. Please verify that the "
        "role being passed has the proper trust relationship and permissions and that your IAM user has "
        "permissions to pass this role."
    )
    lambda_trust = json.loads(json.dumps(TRUST).replace("ecs-tasks", "lambda"))
    arn = role(iam, PULL_AND_LOG, lambda_trust)
    assert str(reason(task_definition(arn))).startswith(f"ECS was unable to assume the role '{arn}'")


def test_an_image_outside_ecr_without_awslogs_needs_no_execution_role(iam: Any) -> None:
    assert reason(task_definition(None, image="localhost/task-test:v1", awslogs=False)) is None


def test_nothing_is_checked_while_enforcement_is_off(iam: Any) -> None:
    definition = task_definition(f"arn:aws:iam::{ACCOUNT}:role/nobody")
    assert start_check(lambda: False)(definition, TASK_ID, ACCOUNT, REGION) is None
    assert start_check(lambda: True)(definition, TASK_ID, ACCOUNT, REGION) is not None
