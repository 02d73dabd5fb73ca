"""Who signed a request, and what policies speak for them, read from moto's IAM and STS backends.

The operator's keys (the ground's bootstrap credentials) are an administrator, as an account's
first user would be. Every other key must belong to an IAM user or an STS session moto issued;
its signature is checked with moto's own SigV4 code (``IAMRequest.check_signature``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition

from .policy import Decision, Request, as_document, evaluate

ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class Principal:
    arn: str  # user ARN, or the session's arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
    account: str
    policies: tuple[Any, ...]
    admin: bool = False
    boundary: tuple[Any, ...] | None = None  # the permissions boundary's policy, when the role has one

    def decide(self, action: str, resource: str, context: dict[str, list[str]]) -> Decision:
        """AWS's evaluation logic for one account: an explicit deny anywhere wins; the identity's
        policies must allow, and so must its permissions boundary when it has one."""
        if self.admin:
            return Decision.ALLOW
        request = Request(action, resource, context)
        decision = evaluate(self.policies, request)
        if self.boundary is None or decision is Decision.EXPLICIT_DENY:
            return decision
        bounded = evaluate(self.boundary, request)
        if bounded is Decision.EXPLICIT_DENY:
            return Decision.BOUNDARY_EXPLICIT_DENY
        if decision is not Decision.ALLOW:
            return decision
        return Decision.ALLOW if bounded is Decision.ALLOW else Decision.BOUNDARY_IMPLICIT_DENY


def _documents(owner: Any) -> list[Any]:
    """Inline and attached managed policies of a role or user (moto keeps inline ones as text or dicts)."""
    documents: list[Any] = [as_document(d) for d in getattr(owner, "policies", {}).values()]
    for managed in getattr(owner, "managed_policies", {}).values():
        default = next((v for v in managed.versions if v.is_default), None)
        if default is not None:
            documents.append(as_document(default.document))
    return documents


def role_boundary(account: str, region: str, role_name: str) -> str | None:
    """The ARN of the permissions boundary a role carries (None: no such role, or none set)."""
    try:
        role = iam_backends[account][get_partition(region)].get_role(role_name)
    except Exception:  # noqa: BLE001 - moto's NoSuchEntity: the role does not exist
        return None
    return getattr(role, "permissions_boundary_arn", None) or None


def _boundary_documents(account: str, region: str, boundary_arn: str | None) -> tuple[Any, ...] | None:
    if not boundary_arn:
        return None
    try:
        policy = iam_backends[account][get_partition(region)].get_policy(boundary_arn)
    except Exception:  # noqa: BLE001 - not there: AWS refuses such a boundary at CreateRole, not modelled here
        return None
    default = next((v for v in policy.versions if v.is_default), None)
    return (as_document(default.document),) if default is not None else None


def role_principal(role_arn: str, session: str, region: str) -> Principal | None:
    """A session of ROLE_ARN (CloudFormation acting as its RoleARN names the session AWSCloudFormation)."""
    account = role_arn.split(":")[4]
    backend = iam_backends[account][get_partition(region)]
    try:
        role = backend.get_role_by_arn(role_arn)
    except Exception:  # noqa: BLE001 - moto's NotFoundException: the role does not exist
        return None
    partition = get_partition(region)
    return Principal(
        f"arn:{partition}:sts::{account}:assumed-role/{role.name}/{session}",
        account,
        tuple(_documents(role)),
        boundary=_boundary_documents(account, region, getattr(role, "permissions_boundary_arn", None)),
    )


def user_principal(account: str, region: str, user_name: str) -> Principal:
    backend = iam_backends[account][get_partition(region)]
    user = backend.get_user(user_name)
    documents = _documents(user)
    for group in backend.get_groups_for_user(user_name):
        documents += _documents(group)
    return Principal(user.arn, account, tuple(documents))


def admin(account: str, region: str) -> Principal:
    return Principal(f"arn:{get_partition(region)}:iam::{account}:root", account, (ADMIN_POLICY,), admin=True)
