"""A container definition's `secrets`, read as ECS's agent reads them at task start: as the task
definition's execution role, from Secrets Manager (`secretsmanager:GetSecretValue`) or SSM Parameter
Store (`ssm:GetParameters`), plus `kms:Decrypt` on a customer-managed key the value is encrypted with.

With identity enforced, a role whose policies do not allow the read stops the task before it starts,
with the reason ECS gives ("Retrieving secrets from AWS Secrets Manager"/"from the Systems Manager
Parameter Store", Amazon ECS developer guide); without it the values are read as they are. A JSON key
(`ARN:json-key:version-stage:version-id`) picks one field of a secret's JSON string, as ECS does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends

from local_ground.iam import identity
from local_ground.iam.errors import not_authorized
from local_ground.iam.policy import Decision

_FAILED = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "
# The keys AWS manages for the stores: their use needs no kms:Decrypt in the execution role.
_AWS_MANAGED_KEYS = ("alias/aws/secretsmanager", "alias/aws/ssm")


class SecretRefused(Exception):
    """Why ECS could not read a secret: the task stops with this as its stoppedReason."""


def read_secrets(
    secrets: list[Mapping[str, Any]], execution_role_arn: str | None, enforced: bool, session: str
) -> dict[str, str]:
    """{name: value} for a container's secrets, or SecretRefused naming the first that cannot be read."""
    values: dict[str, str] = {}
    for secret in secrets:
        value_from = str(secret["valueFrom"])
        parts = value_from.split(":")
        if len(parts) < 6 or parts[2] not in ("secretsmanager", "ssm"):
            raise SecretRefused(f"{_FAILED}invalid secret reference {value_from}: use a secret's or parameter's ARN")
        decide = _decider(execution_role_arn, enforced, session, parts[3])
        if parts[2] == "secretsmanager":
            values[str(secret["name"])] = _secret_value(parts, decide)
        else:
            values[str(secret["name"])] = _parameter_value(value_from, parts, decide)
    return values


Decide = Callable[[str, str, str], None]  # (action, resource, what failed) -> None, or SecretRefused


def _decider(role_arn: str | None, enforced: bool, session: str, region: str) -> Decide:
    def decide(action: str, resource: str, store: str) -> None:
        if not enforced:
            return
        principal = identity.role_principal(role_arn, session, region) if role_arn else None
        if principal is None:
            raise SecretRefused(
                f"{_FAILED}unable to retrieve {store}: the task definition has no usable execution role "
                f"({role_arn or 'none given'})"
            )
        decision = principal.decide(action, resource, {"aws:RequestedRegion": [region]})
        if decision is not Decision.ALLOW:
            message = not_authorized(principal.arn, action, resource, decision)
            raise SecretRefused(
                f"{_FAILED}unable to retrieve {store}: service call has been retried 1 time(s): "
                f"AccessDeniedException: {message}"
            )

    return decide


def _key_arn(key: str | None, account: str, region: str) -> str | None:
    """The ARN of a customer-managed key a value is encrypted with; None for AWS's own keys."""
    if not key or key in _AWS_MANAGED_KEYS:
        return None
    if key.startswith("arn:"):
        return key
    return f"arn:aws:kms:{region}:{account}:{key if key.startswith('alias/') else 'key/' + key}"


def _secret_value(parts: list[str], decide: Decide) -> str:
    arn = ":".join(parts[:7])
    json_key, stage, version = (parts[7:10] + ["", "", ""])[:3]
    region, account = parts[3], parts[4]
    store = "secret from asm"
    decide("secretsmanager:GetSecretValue", arn, store)
    backend = secretsmanager_backends[account][region]
    try:
        found = backend.get_secret_value(arn, version or None, stage or None)  # type: ignore[arg-type]
        key_arn = _key_arn(backend.describe_secret(arn).kms_key_id, account, region)
    except Exception as error:  # noqa: BLE001 - moto's ResourceNotFoundException and friends
        raise SecretRefused(
            f"{_FAILED}unable to retrieve {store}: service call has been retried 1 time(s): "
            f"ResourceNotFoundException: Secrets Manager can't find the specified secret. ({arn}: {error})"
        ) from None
    if key_arn:
        decide("kms:Decrypt", key_arn, store)
    text = str(found.get("SecretString", ""))
    if not json_key:
        return text
    try:
        return str(json.loads(text)[json_key])
    except (ValueError, KeyError, TypeError):
        raise SecretRefused(
            f"{_FAILED}unable to retrieve {store}: secret {arn}: retrieved secret from Secrets Manager did not "
            f"contain json key {json_key}"
        ) from None


def _parameter_value(value_from: str, parts: list[str], decide: Decide) -> str:
    region, account = parts[3], parts[4]
    store = "secrets from ssm"
    decide("ssm:GetParameters", value_from, store)
    name = value_from.split(":parameter/", 1)[-1]
    backend = ssm_backends[account][region]
    parameter = backend.get_parameter("/" + name) or backend.get_parameter(name)
    if parameter is None:
        raise SecretRefused(
            f"{_FAILED}unable to retrieve {store}: service call has been retried 1 time(s): "
            f"invalid ssm parameters: {name}"
        )
    key_arn = _key_arn(parameter.keyid if parameter.parameter_type == "SecureString" else None, account, region)
    if key_arn:
        decide("kms:Decrypt", key_arn, store)
    return str(parameter.decrypt(parameter.value))
