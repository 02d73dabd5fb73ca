"""CloudFormation acting as a principal: its RoleARN, else the caller, needs each handler's permissions.

On AWS, a stack operation runs as the role passed as RoleARN (remembered by the stack), else with the
caller's credentials, and every resource handler calls the service APIs its provider schema lists
(``handlers.create/update/delete.permissions``). A permission the principal lacks fails that resource:
    Resource handler returned message: "User: arn:aws:sts::ACCOUNT:assumed-role/ROLE/AWSCloudFormation
    is not authorized to perform: ACTION on resource: ARN because no identity-based policy allows ..."
and the stack rolls back. Here the check runs as moto parses each resource (``check_resource``),
inside the request that executes the change set; a failed CREATE rolls back to ROLLBACK_COMPLETE
(``fail_create``); a failed UPDATE goes through failed_stack_update_rolls_back.

The role handler's CreateRole, PutRolePolicy, AttachRolePolicy... carry `iam:PermissionsBoundary`
(the boundary the role is given, or has), so an execution role allowed them only with a boundary
refuses a role without it.
Not covered: a rollback that finishes later on another thread (after an ECS deployment's outcome) is
not checked; iam:PassRole is checked for the role properties the pipeline's templates pass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.cloudformation.models import ChangeSet, Event, Stack
from moto.utilities.utils import get_partition

from pipeline.templates import permissions

from .errors import not_authorized
from .identity import Principal, role_boundary
from .policy import Decision

SESSION = "AWSCloudFormation"
# Who a resource type hands its roles to (iam:PassedToService).
PASSED_TO = (
    ("AWS::ECS::", "ecs-tasks.amazonaws.com"),
    ("AWS::EC2::FlowLog", "vpc-flow-logs.amazonaws.com"),
    ("AWS::ApplicationAutoScaling::", "application-autoscaling.amazonaws.com"),
)
ROLE_PROPERTIES = ("ExecutionRoleArn", "TaskRoleArn", "DeliverLogsPermissionArn", "RoleARN", "Role")

_acting = threading.local()


class HandlerDenied(Exception):
    def __init__(self, logical_id: str, message: str) -> None:
        super().__init__(message)
        self.logical_id = logical_id
        self.message = message


@contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    previous = getattr(_acting, "principal", None)
    _acting.principal = principal
    try:
        yield
    finally:
        _acting.principal = previous


def acting_principal() -> Principal | None:
    return getattr(_acting, "principal", None)


def _handler_actions(resource_type: str, operation: str) -> set[str]:
    try:
        return permissions.handler_actions(resource_type, [operation])
    except KeyError:  # a type the service templates do not use: read cfn-lint's schema (dev installs)
        return set(permissions.schema_handler_permissions(resource_type)[operation])


_VERB = {"create": "Create", "update": "Update", "delete": "Delete"}


def _writes_first(operation: str) -> Any:
    """The handler's point is its write, the operation's own first (CreateRole before AttachRolePolicy):
    report that one when several are missing."""

    def key(action: str) -> tuple[bool, bool, str]:
        name = action.split(":", 1)[1]
        return name.startswith(("Get", "List", "Describe")), not name.startswith(_VERB.get(operation, "-")), action

    return key


def _roles_of(properties: dict[str, Any], account: str, region: str) -> list[str]:
    """The roles a resource is given (ARNs), or whose policies it writes (AWS::IAM::Policy/RolePolicy names)."""
    arns = [str(v) for k, v in properties.items() if k in ROLE_PROPERTIES and str(v).startswith("arn:")]
    names = [str(n) for n in properties.get("Roles") or []] + (
        [str(properties["RoleName"])] if "RoleName" in properties else []
    )
    return arns + [f"arn:{get_partition(region)}:iam::{account}:role/{n}" for n in names]


def _resource_arn(action: str, resource_type: str, name: str, account: str, region: str) -> str:
    partition = get_partition(region)
    if action == "iam:CreateServiceLinkedRole":
        return f"arn:{partition}:iam::{account}:role/aws-service-role/*"
    if action.startswith("iam:") and resource_type == "AWS::IAM::Role":
        return f"arn:{partition}:iam::{account}:role/{name}"
    if action.startswith("logs:") and resource_type == "AWS::Logs::LogGroup":
        return f"arn:{partition}:logs:{region}:{account}:log-group:{name}"
    return "*"


def _boundary_key(properties: dict[str, Any], account: str, region: str, role_name: str) -> dict[str, list[str]]:
    """iam:PermissionsBoundary: the boundary the role is given (create, update), else the one it has (delete)."""
    boundary = properties.get("PermissionsBoundary") if properties else role_boundary(account, region, role_name)
    return {"iam:PermissionsBoundary": [str(boundary)]} if boundary else {}


def check_resource(
    operation: str, logical_id: str, resource_type: str, name: str, properties: dict[str, Any], region: str
) -> None:
    """Raise HandlerDenied when the acting principal lacks one of the handler's permissions."""
    principal = acting_principal()
    if principal is None or principal.admin:
        return
    account = principal.account
    context = {"aws:RequestedRegion": [region], "aws:CalledVia": ["cloudformation.amazonaws.com"]}
    for action in sorted(_handler_actions(resource_type, operation), key=_writes_first(operation)):
        if action.startswith("iam:") and ("Group" in action or "User" in action):
            continue  # on the groups and users a resource names: the pipeline's templates name none
        if action.startswith("iam:") and action != "iam:CreateServiceLinkedRole" and resource_type != "AWS::IAM::Role":
            # PassRole, GetRole... on the roles the resource is given; a handler given none calls none.
            service = next((s for prefix, s in PASSED_TO if resource_type.startswith(prefix)), "")
            extra = {"iam:PassedToService": [service]} if action == "iam:PassRole" else {}
            for role in _roles_of(properties, account, region):
                decision = principal.decide(action, role, {**context, **extra})
                if decision is not Decision.ALLOW:
                    raise HandlerDenied(logical_id, not_authorized(principal.arn, action, role, decision))
            continue
        resource = _resource_arn(action, resource_type, name, account, region)
        keys = dict(context)
        if resource_type == "AWS::IAM::Role" and action in permissions.BOUNDARY_CONDITIONED_ACTIONS:
            keys.update(_boundary_key(properties, account, region, name))
        decision = principal.decide(action, resource, keys)
        if decision is not Decision.ALLOW:
            raise HandlerDenied(logical_id, not_authorized(principal.arn, action, resource, decision))


def handler_message(message: str) -> str:
    return f'Resource handler returned message: "{message}" (HandlerErrorCode: AccessDenied)'


def fail_create(stack: Stack, change_set: ChangeSet, denied: HandlerDenied, delete: Any) -> None:
    """The first create failed: CREATE_FAILED, delete what was created, ROLLBACK_COMPLETE (as on AWS)."""
    resources = stack.resource_map._parsed_resources
    json_map = change_set.template_dict.get("Resources", {})
    _event(stack, denied.logical_id, json_map, "CREATE_FAILED", handler_message(denied.message))
    stack.status = "ROLLBACK_IN_PROGRESS"
    stack._add_stack_event(
        "ROLLBACK_IN_PROGRESS",
        resource_status_reason=f"The following resource(s) failed to create: [{denied.logical_id}]. "
        "Rollback requested by user.",
    )
    final = "ROLLBACK_COMPLETE"
    for logical_id in reversed(list(resources)):
        resource = resources[logical_id]
        if logical_id not in json_map or not hasattr(resource, "physical_resource_id"):
            continue
        try:
            delete(resource, json_map[logical_id], logical_id)
            _event(stack, logical_id, json_map, "DELETE_COMPLETE")
        except HandlerDenied as error:
            _event(stack, logical_id, json_map, "DELETE_FAILED", handler_message(error.message))
            final = "ROLLBACK_FAILED"
        except Exception:  # noqa: BLE001 - moto cannot delete every type; the stack is gone either way
            _event(stack, logical_id, json_map, "DELETE_COMPLETE")
    if final == "ROLLBACK_COMPLETE":
        resources.clear()
    stack.status = final
    stack._add_stack_event(final)
    change_set.execution_status = "EXECUTE_FAILED"


def _event(stack: Stack, logical_id: str, json_map: dict[str, Any], status: str, reason: str | None = None) -> None:
    resource = stack.resource_map._parsed_resources.get(logical_id)
    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=getattr(resource, "physical_resource_id", "") or "",
            resource_type=json_map.get(logical_id, {}).get("Type", ""),
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )
