"""What a request to the local AWS asks IAM: its action, the ARN it acts on, and its condition keys.

Resource ARNs are real where the pipeline's policies scope by ARN (CloudFormation stacks, the ECR
repository, IAM roles and users, STS role ARNs, ECS services and service deployments). Every other action is authorized against "*",
which only a `"Resource": "*"` statement matches: stricter than AWS for a policy that scopes them,
never more lenient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moto.cloudformation.models import cloudformation_backends
from moto.utilities.utils import get_partition

# SigV4 signing names that differ from the IAM service prefix.
IAM_PREFIX = {"monitoring": "cloudwatch", "elasticfilesystem": "elasticfilesystem"}


@dataclass(frozen=True)
class Scope:
    access_key: str
    region: str
    service: str  # the IAM prefix


def credential_scope(headers: Any, querystring: dict[str, list[str]]) -> Scope | None:
    """From `Authorization: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, ...`."""
    authorization = headers.get("Authorization") or ""
    credential = ""
    if "Credential=" in authorization:
        credential = authorization.split("Credential=", 1)[1].split(",", 1)[0]
    elif querystring.get("X-Amz-Credential"):
        credential = querystring["X-Amz-Credential"][0]
    parts = credential.strip().split("/")
    if len(parts) < 5:
        return None
    return Scope(parts[0], parts[2], IAM_PREFIX.get(parts[3], parts[3]))


def _param(response: Any, name: str) -> str | None:
    try:
        value = response._get_param(name)
    except Exception:  # noqa: BLE001 - a body moto cannot parse names no resource
        return None
    return str(value) if value else None


def stack_arn(name_or_id: str, account: str, region: str) -> str:
    if name_or_id.startswith("arn:"):
        return name_or_id
    backend = cloudformation_backends[account][region]
    for stack in backend.stacks.values():
        if stack.name == name_or_id and stack.status != "DELETE_COMPLETE":
            return str(stack.stack_id)
    # A stack that does not exist yet: its ARN's unique id is not known before CreateStack/CreateChangeSet.
    return f"arn:{get_partition(region)}:cloudformation:{region}:{account}:stack/{name_or_id}/*"


def resource_of(response: Any, service: str, action: str, account: str, region: str) -> str:
    partition = get_partition(region)
    if service == "cloudformation":
        stack = _param(response, "StackName")
        change_set = _param(response, "ChangeSetName")
        if not stack and change_set and change_set.startswith("arn:"):
            found = cloudformation_backends[account][region].change_sets.get(change_set)
            return str(found.stack_id) if found else "*"
        return stack_arn(stack, account, region) if stack else "*"
    if service == "ecr":
        repository = _param(response, "repositoryName")
        if not repository and action == "DescribeRepositories":
            try:
                names = response._get_param("repositoryNames") or []
            except Exception:  # noqa: BLE001
                names = []
            repository = names[0] if len(names) == 1 else None  # several: only a "*" grant covers them
        if repository and action != "GetAuthorizationToken":
            return f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"
        return "*"
    if service == "iam":
        for param, kind in (("RoleName", "role"), ("UserName", "user"), ("GroupName", "group")):
            name = _param(response, param)
            if name:
                return f"arn:{partition}:iam::{account}:{kind}/{name}"
        return _param(response, "PolicyArn") or _param(response, "OpenIDConnectProviderArn") or "*"
    if service == "sts":
        return _param(response, "RoleArn") or "*"
    if service == "ecs":
        return _ecs_resource(response, action, account, region)
    return "*"


def _ecs_resource(response: Any, action: str, account: str, region: str) -> str:
    """The service deployment calls, which the deploy role scopes to its own cluster's ARNs."""
    if action in ("StopServiceDeployment", "ContinueServiceDeployment"):
        return _param(response, "serviceDeploymentArn") or "*"
    if action == "DescribeServiceDeployments":
        try:
            arns = response._get_param("serviceDeploymentArns") or []
        except Exception:  # noqa: BLE001
            arns = []
        return str(arns[0]) if len(arns) == 1 else "*"  # several: only a "*" grant covers them
    if action == "ListServiceDeployments":
        service = _param(response, "service")
        if service and service.startswith("arn:"):
            return service
        cluster = (_param(response, "cluster") or "default").rsplit("/", 1)[-1]
        return f"arn:{get_partition(region)}:ecs:{region}:{account}:service/{cluster}/{service}" if service else "*"
    return "*"


def role_arn_passed(response: Any, service: str, action: str) -> str | None:
    """The role a request hands to a service (iam:PassRole), for the calls the pipeline makes."""
    if service == "cloudformation" and action in ("CreateChangeSet", "CreateStack", "UpdateStack"):
        return _param(response, "RoleARN")
    return None


# IAM actions whose iam:PermissionsBoundary key is the boundary in the request; for the others in
# BOUNDARY_KEYED it is the boundary the role already has (Service Authorization Reference, IAM).
_BOUNDARY_IN_REQUEST = ("CreateRole", "PutRolePermissionsBoundary")
BOUNDARY_KEYED = (
    *_BOUNDARY_IN_REQUEST,
    "AttachRolePolicy",
    "DetachRolePolicy",
    "PutRolePolicy",
    "DeleteRolePolicy",
    "DeleteRolePermissionsBoundary",
)


def condition_keys(response: Any, service: str, action: str, account: str, region: str) -> dict[str, list[str]]:
    """The request's own condition keys beyond the global ones (only those the pipeline's policies use)."""
    if service != "iam" or action not in BOUNDARY_KEYED:
        return {}
    from .identity import role_boundary

    if action in _BOUNDARY_IN_REQUEST:
        boundary = _param(response, "PermissionsBoundary")
    else:
        role = _param(response, "RoleName")
        boundary = role_boundary(account, region, role) if role else None
    return {"iam:PermissionsBoundary": [boundary]} if boundary else {}
