"""roll: verify the ECS rollout after a stack update, as the official ECS deploy action does.

The PRIMARY deployment must run the new task definition and reach rolloutState COMPLETED with no
other deployment left. A FAILED deployment, or the new task definition no longer PRIMARY (or gone),
means the circuit breaker rolled the service back; the cause is read from the deployment's reason,
the service events and the stopped tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pipeline.aws import ecs as ecs_api
from pipeline.clock import Clock
from pipeline.errors import PipelineError, RolloutError

Echo = Callable[[str], None]


class RolloutOutcome(Enum):
    COMPLETED = "completed"
    ROLLED_BACK = "rolled back"
    TIMED_OUT = "timed out"


@dataclass(frozen=True)
class RolloutResult:
    outcome: RolloutOutcome
    seconds: float
    state: ecs_api.ServiceState
    cause: str = ""


@dataclass
class RolloutWatcher:
    ecs: Any
    elbv2: Any
    clock: Clock
    echo: Echo = print
    timeout: float = 900.0
    poll: float = 5.0

    def wait(
        self, cluster: str, service: str, task_definition: str, target_group_arn: str | None = None
    ) -> RolloutResult:
        started = self.clock.now()
        last_line = ""
        while True:
            try:
                state = ecs_api.describe_service(self.ecs, cluster, service)
                elapsed = self.clock.now() - started
                ours = state.deployment_for(task_definition)
                primary = state.primary
                if (
                    ours is None
                    or ours.rollout_state == "FAILED"
                    or (primary and primary.task_definition != task_definition)
                ):
                    return RolloutResult(
                        RolloutOutcome.ROLLED_BACK,
                        elapsed,
                        state,
                        self.explain(cluster, service, state, task_definition),
                    )
                line = self._progress(state, ours, target_group_arn, elapsed)
                if line != last_line:
                    self.echo(line)
                    last_line = line
                if ours.status == "PRIMARY" and ours.rollout_state == "COMPLETED" and len(state.deployments) == 1:
                    return RolloutResult(RolloutOutcome.COMPLETED, elapsed, state)
                if elapsed > self.timeout:
                    return RolloutResult(
                        RolloutOutcome.TIMED_OUT, elapsed, state, f"not stable after {int(self.timeout)}s"
                    )
                self.clock.sleep(self.poll)
            except KeyboardInterrupt:
                raise PipelineError(
                    f"interrupted while watching the rollout of {service}; ECS carries on, and its circuit breaker rolls back a failing deployment by itself",
                    hint="Run `pipeline status` to see where it stands.",
                ) from None

    def _progress(
        self, state: ecs_api.ServiceState, ours: ecs_api.Deployment, target_group_arn: str | None, elapsed: float
    ) -> str:
        healthy = ""
        if target_group_arn:
            ok, registered = ecs_api.healthy_targets(self.elbv2, target_group_arn)
            healthy = f", {ok}/{registered} targets healthy"
        others = sum(d.running for d in state.deployments if d is not ours)
        old = f", {others} old task(s) running" if others else ""
        return f"  rollout {ours.rollout_state.lower() or 'starting'}: {ours.running}/{ours.desired} new task(s) running{old}{healthy} ({int(elapsed)}s)"

    def explain(self, cluster: str, service: str, state: ecs_api.ServiceState, task_definition: str) -> str:
        """Why a rollout failed: the deployment's reason, then what the stopped tasks say."""
        reasons: list[str] = []
        ours = state.deployment_for(task_definition)
        if ours is not None and ours.rollout_reason:
            reasons.append(ours.rollout_reason)
        else:
            circuit = next(
                (
                    e.message
                    for e in state.events
                    if "circuit breaker" in e.message.lower() or "rolling back" in e.message.lower()
                ),
                "",
            )
            if circuit:
                reasons.append(circuit)
        stopped = [t for t in ecs_api.stopped_tasks(self.ecs, cluster, service) if t.task_definition == task_definition]
        seen: set[str] = set()
        for task in stopped:
            reason = task.reason()
            if reason and reason not in seen:
                seen.add(reason)
                reasons.append(f"task stopped: {reason}")
        return "; ".join(reasons[:3]) or "the new deployment is no longer in the service (rolled back)"


def explain_rolled_back(ecs: Any, cluster: str, service: str) -> str:
    """After a rollback the failed task definition is no longer PRIMARY: its stopped tasks say why."""
    state = ecs_api.describe_service(ecs, cluster, service)
    current = state.primary.task_definition if state.primary else state.task_definition
    reasons: list[str] = []
    failed = next((d for d in state.deployments if d.rollout_state == "FAILED" and d.rollout_reason), None)
    if failed is not None:
        reasons.append(failed.rollout_reason)
    stopped = ecs_api.stopped_tasks(ecs, cluster, service, limit=20)
    # Failures first: a task the rollback scaled away says nothing about why.
    stopped.sort(
        key=lambda t: 0 if ("failed" in t.stopped_reason.lower() or "exited" in t.stopped_reason.lower()) else 1
    )
    for task in stopped:
        reason = task.reason()
        if task.task_definition != current and reason and f"task stopped: {reason}" not in reasons:
            reasons.append(f"task stopped: {reason}")
    return "; ".join(reasons[:3])


def require_completed(result: RolloutResult, service: str) -> None:
    if result.outcome is RolloutOutcome.COMPLETED:
        return
    if result.outcome is RolloutOutcome.TIMED_OUT:
        raise RolloutError(
            f"{service}: rollout {result.cause}", hint="Raise service.rollout_timeout, or look at the service events."
        )
    raise RolloutError(
        f"{service}: the new deployment failed and ECS rolled back: {result.cause}",
        hint="The previous version keeps serving.",
    )
