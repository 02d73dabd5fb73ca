"""status and history: what runs now, and what ran before.

History comes from GitHub's deployment records when GitHub is configured, else from the service's
own task definition revisions (each holds the image digest and MODEL_VERSION), newest first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline.aws import cloudformation as cfn
from pipeline.aws import ecs as ecs_api
from pipeline.aws.clients import aws_call
from pipeline.errors import InputError
from pipeline.steps.context import Context
from pipeline.steps.push import digest_of


@dataclass(frozen=True)
class Status:
    environment: str
    stack: str
    stack_status: str
    version: str
    digest: str
    url: str
    desired: int
    running: int
    deployments: int
    rollout_state: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HistoryEntry:
    version: str
    digest: str
    state: str
    when: str
    source: str  # github | task-definitions

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(ctx: Context, env: str) -> Status:
    ctx.environment(env)
    name = ctx.service_stack(env)
    stack = cfn.describe_stack(ctx.clients_for(env).cloudformation, name)
    if stack is None:
        raise InputError(
            f"{env} is not deployed: stack {name} does not exist", hint=f"Run `pipeline release VERSION --env {env}`."
        )
    image = stack.parameters.get("ImageUri", "")
    service = None
    if "ClusterName" in stack.outputs:
        service = ecs_api.describe_service(
            ctx.clients_for(env).ecs, stack.outputs["ClusterName"], stack.outputs["ServiceName"]
        )
    primary = service.primary if service else None
    return Status(
        environment=env,
        stack=name,
        stack_status=stack.status,
        version=stack.parameters.get("Version", ""),
        digest=digest_of(image),
        url=stack.outputs.get("ServiceUrl", ""),
        desired=service.desired if service else 0,
        running=service.running if service else 0,
        deployments=len(service.deployments) if service else 0,
        rollout_state=primary.rollout_state if primary else "",
    )


def history(ctx: Context, env: str, limit: int = 10) -> list[HistoryEntry]:
    ctx.environment(env)
    if ctx.github is not None:
        return [
            HistoryEntry(r.version, r.digest, r.state or "", r.created_at.isoformat(timespec="seconds"), "github")
            for r in ctx.github.deployments(env, limit)
        ]
    return stack_history(ctx, env)[:limit]


def stack_history(ctx: Context, env: str, before: int | None = None) -> list[HistoryEntry]:
    """Task definition revisions of the environment's family (only those older than revision `before`
    when given), newest first.

    INACTIVE ones too: CloudFormation deregisters the revision a stack update replaced, so every
    earlier release is INACTIVE and only the running one is ACTIVE (AWS keeps INACTIVE revisions
    describable)."""
    family = f"{ctx.settings.app.name}-{env}"
    ecs = ctx.clients_for(env).ecs
    arns: list[str] = []
    for state in ("ACTIVE", "INACTIVE"):
        with aws_call(f"list task definitions of {family}"):
            pages = ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status=state, sort="DESC")
            arns += [arn for page in pages for arn in page.get("taskDefinitionArns", [])]
    arns = sorted((arn for arn in arns if before is None or _revision(arn) < before), key=_revision, reverse=True)
    entries: list[HistoryEntry] = []
    for arn in arns[:20]:
        with aws_call(f"describe task definition {arn}"):
            td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        container = td["containerDefinitions"][0]
        env_vars = {e["name"]: e["value"] for e in container.get("environment", [])}
        image = container.get("image", "")
        registered = td.get("registeredAt")
        entries.append(
            HistoryEntry(
                version=env_vars.get("MODEL_VERSION", "?"),
                digest=digest_of(image),
                state=f"revision {td.get('revision')}",
                when=registered.isoformat(timespec="seconds") if registered else "",
                source="task-definitions",
            )
        )
    return entries


def running_revision(ctx: Context, env: str) -> int | None:
    """The task definition revision the service stack runs now (its TaskDefinitionArn output)."""
    stack = cfn.describe_stack(ctx.clients_for(env).cloudformation, ctx.service_stack(env))
    arn = stack.outputs.get("TaskDefinitionArn", "") if stack is not None else ""
    return _revision(arn) if arn else None


def _revision(arn: str) -> int:
    """The revision number at the end of a task definition ARN (family:revision)."""
    return int(arn.rsplit(":", 1)[-1])
