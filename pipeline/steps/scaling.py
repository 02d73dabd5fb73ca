"""A deploy keeps the desired count Application Auto Scaling set.

CloudFormation passes an ECS service's DesiredCount to UpdateService on every update of the service,
so a template's fixed count would undo a scale-out on each release. The service template takes the
count as a parameter (default: `desired_count`, used when the service is created); each deploy passes
the count the service has now, kept within the scaling range (`min_count`..`max_count`).
"""

from __future__ import annotations

import re

from pipeline.aws import cloudformation as cfn
from pipeline.aws import ecs as ecs_api
from pipeline.steps.context import Context

PARAMETER = "DesiredCount"


def kept_desired_count(ctx: Context, env: str, body: str, *, live: bool = True) -> dict[str, str]:
    """{"DesiredCount": the service's current count} for a template that takes it; {} for a first
    deploy (the template's default applies) or an older template without the parameter. `live=False`
    (previews: the pull-request role reads no ECS service) takes the count the stack last deployed."""
    if not declares(body, PARAMETER):
        return {}
    clients = ctx.clients_for(env)
    stack = cfn.describe_stack(clients.cloudformation, ctx.service_stack(env))
    if not live and stack is not None and PARAMETER in stack.parameters:
        return {PARAMETER: stack.parameters[PARAMETER]}
    if not live or stack is None or "ClusterName" not in stack.outputs or "ServiceName" not in stack.outputs:
        return {}
    state = ecs_api.describe_service(clients.ecs, stack.outputs["ClusterName"], stack.outputs["ServiceName"])
    if state.status != "ACTIVE":
        return {}
    service = ctx.environment(env).service
    return {PARAMETER: str(min(max(state.desired, service.min_count), service.max_count))}


def declares(body: str, name: str) -> bool:
    """Whether the template's top-level Parameters section names `name`."""
    section = re.search(r"(?ms)^Parameters:\n(.*?)(?=^\S|\Z)", body)
    return section is not None and re.search(rf"(?m)^  {re.escape(name)}:", section.group(1)) is not None
