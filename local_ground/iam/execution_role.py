"""task_execution_role_checked: an ECS task starts only if its execution role may pull its images and
write its logs, as the ECS agent (Fargate) does it with the task definition's `executionRoleArn`.

Before a task's containers start (local_ground.tasks calls the start checks installed by
IdentityEnforcement, only while enforcement is on):
- the role must exist and trust `ecs-tasks.amazonaws.com`;
- an ECR image of this account and region needs `ecr:GetAuthorizationToken` on `*`, then
  `ecr:BatchGetImage` and `ecr:GetDownloadUrlForLayer` on the repository's ARN;
- a container logging with `awslogs` needs `logs:CreateLogStream` and `logs:PutLogEvents` on its
  log stream (arn:...:log-group:GROUP:log-stream:PREFIX/CONTAINER/TASK_ID), which a grant on
  `arn:...:log-group:GROUP:*` covers.
Otherwise the task stops with the reason ECS gives ("Amazon ECS stopped task error messages" and
"CannotPullContainer task errors" in the ECS developer guide): `ResourceInitializationError: unable
to pull secrets or registry auth: ...` for the registry token, `CannotPullContainerError: ...` for the
image, `ResourceInitializationError: failed to validate logger args: ...` for the log stream, each
carrying the AccessDeniedException that names the role's session, the action and the resource.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.utilities.utils import get_partition

from local_ground.tasks.runtime import ecr_repository

from . import identity
from .errors import not_authorized
from .policy import Decision, Request, evaluate

ECS_TASKS = "ecs-tasks.amazonaws.com"


def _trusts_ecs_tasks(role_arn: str, region: str) -> bool:
    from moto.iam.models import iam_backends

    try:
        role = iam_backends[role_arn.split(":")[4]][get_partition(region)].get_role_by_arn(role_arn)
    except Exception:  # noqa: BLE001 - moto's NotFoundException: the role does not exist
        return False
    request = Request("sts:AssumeRole", role_arn, {}, principal={"Service": [ECS_TASKS]})
    return evaluate([role.assume_role_policy_document], request) is Decision.ALLOW


def _cannot_assume(role_arn: str) -> str:
    return (
        f"ECS was unable to assume the role '{role_arn}' that was provided for this task. Please verify that the "
        "role being passed has the proper trust relationship and permissions and that your IAM user has "
        "permissions to pass this role."
    )


def stopped_reason(task_definition: Any, task_id: str, account: str, region: str) -> str | None:
    """Why ECS would stop this task before its containers start; None when its execution role suffices."""
    partition = get_partition(region)
    role_arn = getattr(task_definition, "execution_role_arn", None)
    definitions = list(task_definition.container_definitions)
    pulls = [
        (d, repo) for d in definitions if (repo := ecr_repository(str(d["image"]))) and repo[:2] == (account, region)
    ]
    logs = [d for d in definitions if (d.get("logConfiguration") or {}).get("logDriver") == "awslogs"]
    if not pulls and not logs:
        return None
    if not role_arn:
        if pulls:
            image = pulls[0][0]["image"]
            return (
                f"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
                f"{image}: pulling from host {image.split('/', 1)[0]} failed with status code 401 Unauthorized: "
                "no basic auth credentials"
            )
        return None  # awslogs without an execution role: RegisterTaskDefinition's business, not the agent's
    principal = identity.role_principal(role_arn, task_id, region)
    if principal is None or not _trusts_ecs_tasks(role_arn, region):
        return _cannot_assume(role_arn)

    def denied(action: str, resource: str) -> str | None:
        decision = principal.decide(action, resource, {"aws:RequestedRegion": [region]})
        if decision is Decision.ALLOW:
            return None
        return f"AccessDeniedException: {not_authorized(principal.arn, action, resource, decision)}"

    if pulls:
        why = denied("ecr:GetAuthorizationToken", "*")
        if why:
            return (
                "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
                "retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): "
                f"{why}"
            )
    for definition, (repo_account, repo_region, name) in pulls:
        repository = f"arn:{partition}:ecr:{repo_region}:{repo_account}:repository/{name}"
        for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
            why = denied(action, repository)
            if why:
                image = definition["image"]
                return (
                    f"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve "
                    f"ref {image}: pulling from host {image.split('/', 1)[0]} failed with status code "
                    f"[manifests {_reference(image)}]: 403 Forbidden: {why}"
                )
    for definition in logs:
        options = definition["logConfiguration"].get("options") or {}
        group = options.get("awslogs-group", "")
        group_region = options.get("awslogs-region") or region
        prefix = options.get("awslogs-stream-prefix")
        stream = f"{prefix}/{definition['name']}/{task_id}" if prefix else task_id
        resource = (
            f"arn:{get_partition(group_region)}:logs:{group_region}:{account}:log-group:{group}:log-stream:{stream}"
        )
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            why = denied(action, resource)
            if why:
                return (
                    "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 "
                    f"times: failed to create Cloudwatch log stream: {why} : exit status 1"
                )
    return None


def _reference(image: str) -> str:
    path = image.split("/", 1)[-1]
    if "@" in path:
        return path.split("@", 1)[1]
    return path.rsplit(":", 1)[1] if ":" in path else "latest"


def start_check(enabled: Callable[[], bool]) -> Callable[[Any, str, str, str], str | None]:
    """The check local_ground.tasks runs before a task's containers start, while `enabled()` holds."""

    def check(task_definition: Any, task_id: str, account: str, region: str) -> str | None:
        return stopped_reason(task_definition, task_id, account, region) if enabled() else None

    return check
