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
from pipeline.errors import Interrupted, RolloutError
from pipeline.steps.interrupt import read_now

Echo = Callable[[str], None]


class RolloutOutcome(Enum):
    IN_PROGRESS = "in progress"  # keep watching
    COMPLETED = "completed"
    ROLLED_BACK = "rolled back"
    TIMED_OUT = "timed out"


@dataclass(frozen=True)
class Decision:
    outcome: RolloutOutcome
    cause: str = ""  # why it rolled back or timed out, from the service state alone


def decide(state: ecs_api.ServiceState, task_definition: str, elapsed: float, timeout: float) -> Decision:
    """The rollout check, as the official ECS deploy action makes it, on one reading of the service.

    Ours FAILED, gone, or no longer PRIMARY: the circuit breaker rolled back. Ours PRIMARY and
    COMPLETED with no other deployment left: done. Otherwise keep waiting, until `timeout`.
    """
    ours = state.deployment_for(task_definition)
    primary = state.primary
    if ours is None:
        return Decision(RolloutOutcome.ROLLED_BACK, "the new deployment is no longer in the service")
    if ours.rollout_state == "FAILED":
        return Decision(RolloutOutcome.ROLLED_BACK, ours.rollout_reason or "the new deployment FAILED")
    if primary is not None and primary.task_definition != task_definition:
        return Decision(RolloutOutcome.ROLLED_BACK, f"ECS made {short_name(primary.task_definition)} PRIMARY again")
    if ours.status == "PRIMARY" and ours.rollout_state == "COMPLETED" and len(state.deployments) == 1:
        return Decision(RolloutOutcome.COMPLETED)
    if elapsed > timeout:
        return Decision(RolloutOutcome.TIMED_OUT, f"not stable after {int(timeout)}s")
    return Decision(RolloutOutcome.IN_PROGRESS)


def short_name(task_definition: str) -> str:
    """family:revision from a task definition ARN."""
    return task_definition.rsplit("/", 1)[-1]


def deployments_line(state: ecs_api.ServiceState) -> str:
    """The service's deployments in one line, e.g. `PRIMARY app:4 IN_PROGRESS 1/2 running, ACTIVE app:3 ...`."""
    if not state.deployments:
        return f"service {state.name} has no deployment"
    return ", ".join(
        f"{d.status} {short_name(d.task_definition)} {d.rollout_state or 'starting'} {d.running}/{d.desired} running"
        for d in state.deployments
    )


@dataclass(frozen=True)
class RolloutResult:
    outcome: RolloutOutcome
    seconds: float
    cause: str = ""  # why it rolled back or timed out


@dataclass
class RolloutWatcher:
    ecs: Any
    elbv2: Any
    clock: Clock
    echo: Echo = print
    timeout: float = 900.0
    poll: float = 5.0
    environment: str = "ENVIRONMENT"  # named in the Ctrl-C hint

    def wait(
        self, cluster: str, service: str, task_definition: str, target_group_arn: str | None = None
    ) -> RolloutResult:
        started = self.clock.now()
        last_line = ""
        deployment_id = ""  # ours, noted while listed: its events still name it once it is gone
        try:
            while True:
                state = ecs_api.describe_service(self.ecs, cluster, service)
                elapsed = self.clock.now() - started
                decision = decide(state, task_definition, elapsed, self.timeout)
                listed = state.deployment_for(task_definition)
                deployment_id = listed.deployment_id if listed is not None else deployment_id
                if decision.outcome is RolloutOutcome.ROLLED_BACK:
                    cause = self.explain(cluster, service, state, task_definition, deployment_id) or decision.cause
                    return RolloutResult(decision.outcome, elapsed, cause)
                if decision.outcome is RolloutOutcome.TIMED_OUT:
                    return RolloutResult(decision.outcome, elapsed, decision.cause)
                ours = state.deployment_for(task_definition)
                assert ours is not None  # nosec B101 # decide() returns ROLLED_BACK without it
                line = self._progress(state, ours, target_group_arn, elapsed)
                if line != last_line:
                    self.echo(line)
                    last_line = line
                if decision.outcome is RolloutOutcome.COMPLETED:
                    return RolloutResult(decision.outcome, elapsed)
                self.clock.sleep(self.poll)
        except KeyboardInterrupt:
            raise self.interrupted(cluster, service) from None

    def interrupted(self, cluster: str, service: str) -> Interrupted:
        """Ctrl-C while watching: say what the service's deployments are doing right now."""
        now = read_now(
            lambda: deployments_line(ecs_api.describe_service(self.ecs, cluster, service)),
            f"the deployments of {service}",
        )
        return Interrupted(
            f"interrupted while watching the rollout of {service} ({now}); ECS carries on, "
            "and its circuit breaker rolls back a failing deployment by itself",
            hint=f"Run `pipeline status --env {self.environment}` to see where it stands.",
        )

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

    def explain(
        self, cluster: str, service: str, state: ecs_api.ServiceState, task_definition: str, deployment_id: str = ""
    ) -> str:
        """Why a rollout failed: the deployment's reason, then what the stopped tasks say."""
        return rollout_cause(state, task_definition, deployment_id, ecs_api.stopped_tasks(self.ecs, cluster, service))


def rollout_cause(
    state: ecs_api.ServiceState, task_definition: str, deployment_id: str, stopped: list[ecs_api.StoppedTask]
) -> str:
    """Why our deployment failed, from this deployment only: its rolloutStateReason, else the service
    event naming its id (`deployment_id`, noted while it was listed), then its own stopped tasks. An
    earlier deployment's circuit breaker event or stopped tasks (ECS keeps both for a while) say nothing
    about this one."""
    reasons: list[str] = []
    ours = state.deployment_for(task_definition)
    if ours is not None and ours.rollout_reason:
        reasons.append(ours.rollout_reason)
    else:
        named = ours.deployment_id if ours is not None else deployment_id
        event = next(
            (e.message for e in state.events if named and f"(deployment {named})" in e.message and "fail" in e.message),
            "",
        )
        if event:
            reasons.append(event)
    seen: set[str] = set()
    for task in stopped:
        reason = task.reason()
        if task.task_definition == task_definition and reason and reason not in seen:
            seen.add(reason)
            reasons.append(f"task stopped: {reason}")
    return "; ".join(reasons[:3])


def explain_rolled_back(ecs: Any, cluster: str, service: str) -> str:
    """After a rollback the failed task definition is no longer PRIMARY: its stopped tasks say why."""
    state = ecs_api.describe_service(ecs, cluster, service)
    current = state.primary.task_definition if state.primary else state.task_definition
    reasons: list[str] = []
    failed = next((d for d in state.deployments if d.rollout_state == "FAILED" and d.rollout_reason), None)
    if failed is not None:
        reasons.append(failed.rollout_reason)
    stopped = [t for t in ecs_api.stopped_tasks(ecs, cluster, service, limit=20) if t.task_definition != current]
    # The deployment that just failed registered the newest revision: an older failure says nothing of this one.
    newest = max((t.task_definition for t in stopped), key=_revision, default=None)
    stopped = [t for t in stopped if t.task_definition == newest]
    # Failures first: a task the rollback scaled away says nothing about why.
    failure_words = ("failed", "exited", "outofmemory")
    stopped.sort(key=lambda t: 0 if any(w in t.stopped_reason.lower() for w in failure_words) else 1)
    for task in stopped:
        reason = task.reason()
        if reason and f"task stopped: {reason}" not in reasons:
            reasons.append(f"task stopped: {reason}")
    return "; ".join(reasons[:3])


def _revision(task_definition: str) -> int:
    """The revision of a task definition ARN (family:revision)."""
    tail = task_definition.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


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
