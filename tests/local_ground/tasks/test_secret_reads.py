"""local_ground.tasks.secrets on its own: what ECS says when a secret or parameter is missing, when
the execution role is missing or may not read, and that nothing is checked with identity off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local_ground.aws import LocalAWS
from local_ground.tasks.secrets import SecretRefused, read_secrets

READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": "*"}]}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAWS]:
    with LocalAWS() as local:
        yield local


def client(aws: LocalAWS, service: str) -> Any:
    return aws.client(service)


@pytest.fixture(scope="module")
def stored(aws: LocalAWS) -> dict[str, str]:
    secret = client(aws, "secretsmanager").create_secret(Name="unit/db", SecretString=json.dumps({"user": "u1"}))
    client(aws, "ssm").put_parameter(Name="/unit/token", Value="t1", Type="String")
    role = client(aws, "iam").create_role(RoleName="unit-exec", AssumeRolePolicyDocument=json.dumps(TRUST))
    client(aws, "iam").put_role_policy(RoleName="unit-exec", PolicyName="ssm", PolicyDocument=json.dumps(READ))
    return {
        "secret": secret["ARN"],
        "parameter": f"arn:aws:ssm:us-east-1:{aws.account_id}:parameter/unit/token",
        "role": role["Role"]["Arn"],
    }


def test_with_identity_off_values_are_read_as_they_are(stored: dict[str, str]) -> None:
    secrets = [
        {"name": "WHOLE", "valueFrom": stored["secret"]},
        {"name": "USER", "valueFrom": stored["secret"] + ":user::"},
        {"name": "TOKEN", "valueFrom": stored["parameter"]},
    ]
    assert read_secrets(secrets, None, False, "t") == {"WHOLE": '{"user": "u1"}', "USER": "u1", "TOKEN": "t1"}


def test_the_role_reads_what_its_policy_allows_and_nothing_else(stored: dict[str, str]) -> None:
    assert read_secrets([{"name": "T", "valueFrom": stored["parameter"]}], stored["role"], True, "t") == {"T": "t1"}
    with pytest.raises(SecretRefused) as refused:
        read_secrets([{"name": "S", "valueFrom": stored["secret"]}], stored["role"], True, "task-1")
    assert str(refused.value) == (
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
        "failed: unable to retrieve secret from asm: service call has been retried 1 time(s): "
        f"AccessDeniedException: User: arn:aws:sts::{stored['role'].split(':')[4]}:assumed-role/unit-exec/task-1 "
        f"is not authorized to perform: secretsmanager:GetSecretValue on resource: {stored['secret']} "
        "because no identity-based policy allows the secretsmanager:GetSecretValue action"
    )
    with pytest.raises(SecretRefused, match="no usable execution role"):
        read_secrets([{"name": "T", "valueFrom": stored["parameter"]}], None, True, "t")


@pytest.mark.parametrize(
    ("value_from", "message"),
    [
        ("arn:aws:ssm:us-east-1:{account}:parameter/unit/missing", "invalid ssm parameters: unit/missing"),
        ("arn:aws:secretsmanager:us-east-1:{account}:secret:unit/missing-AbC123", "ResourceNotFoundException"),
        ("{secret}:nokey::", "did not contain json key nokey"),
        ("plain-name", "invalid secret reference plain-name"),
    ],
)
def test_what_cannot_be_read_stops_the_task_with_ecs_reason(
    stored: dict[str, str], aws: LocalAWS, value_from: str, message: str
) -> None:
    arn = value_from.format(account=aws.account_id, secret=stored["secret"])
    with pytest.raises(SecretRefused, match=message) as refused:
        read_secrets([{"name": "X", "valueFrom": arn}], None, False, "t")
    assert str(refused.value).startswith("ResourceInitializationError: unable to pull secrets or registry auth")
