"""logs: the service's CloudWatch Logs, where its task definition's awslogs driver sends them.

The log group and stream prefix come from the running task definition's `logConfiguration`, so the
command reads what ECS writes: streams named `PREFIX/CONTAINER/TASK-ID` in the group. `--follow`
polls (CloudWatch Logs has no push API for FilterLogEvents) and prints each event once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pipeline.aws import cloudformation as cfn
from pipeline.aws import logs as logs_api
from pipeline.aws.clients import aws_call
from pipeline.errors import InputError
from pipeline.steps.context import Context

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class LogSource:
    group: str
    stream_prefix: str  # PREFIX/CONTAINER/ : every task's stream of that container
    region: str


def parse_since(text: str) -> int:
    """`10m`, `2h`, `1d`, `30s` -> seconds; anything else is refused naming the value."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise InputError(f"--since {text!r} is not a duration", hint="Use a number and a unit: 30s, 10m, 2h or 1d.")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def log_source(ctx: Context, env: str) -> LogSource:
    """The awslogs group and stream prefix of the environment's running task definition."""
    environment = ctx.environment(env)
    clients = ctx.clients_for(env)
    name = ctx.service_stack(env)
    stack = cfn.describe_stack(clients.cloudformation, name)
    if stack is None or "TaskDefinitionArn" not in stack.outputs:
        raise InputError(
            f"{env} is not deployed: stack {name} has no task definition",
            hint=f"Run `pipeline release VERSION --env {env}` first.",
        )
    arn = stack.outputs["TaskDefinitionArn"]
    with aws_call(f"describe task definition {arn}"):
        definition = clients.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    for container in definition.get("containerDefinitions", []):
        config = container.get("logConfiguration") or {}
        if config.get("logDriver") != "awslogs":
            continue
        options = config.get("options") or {}
        prefix = options.get("awslogs-stream-prefix")
        # Without a prefix the awslogs driver names streams by container id only: read the whole group.
        stream_prefix = f"{prefix}/{container['name']}/" if prefix else ""
        region = options.get("awslogs-region") or ctx.settings.region_of(environment)
        return LogSource(options["awslogs-group"], stream_prefix, region)
    raise InputError(
        f"{env}'s task definition sends no container's output to CloudWatch Logs (no awslogs driver)",
        hint="Synthesize the templates again (`pipeline synth`) and deploy.",
    )


def read(
    ctx: Context,
    env: str,
    since_seconds: int,
    *,
    follow: bool = False,
    now_ms: Callable[[], int] | None = None,
) -> Iterator[logs_api.LogEvent]:
    """The events of the last `since_seconds`, oldest first; with `follow`, then new ones as they come."""
    import time

    clock_ms = now_ms or (lambda: int(time.time() * 1000))
    source = log_source(ctx, env)
    logs = ctx.clients_for(env).logs
    start = clock_ms() - since_seconds * 1000
    seen: set[str] = set()
    while True:
        for event in logs_api.filter_events(logs, source.group, source.stream_prefix, start):
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
            start = max(start, event.timestamp)  # later polls ask only from the newest event on
            yield event
        if not follow:
            return
        ctx.clock.sleep(ctx.poll)
