"""The deployments of ECS services: one model, one place that changes them.

AWS behaviour reproduced (rolling update, ECS deployment controller):
- a service starts with one PRIMARY deployment, rolloutState IN_PROGRESS;
- a new task definition (or forceNewDeployment) starts a new PRIMARY deployment and turns the
  previous one ACTIVE until its tasks are drained;
- when the PRIMARY deployment reaches a steady state it is COMPLETED and the older
  deployments are gone, so ``services_stable`` succeeds;
- the deployment circuit breaker marks a deployment FAILED; with ``rollback`` enabled ECS
  starts a new deployment of the last COMPLETED task definition.

Who moves a deployment forward: a *task runner* (see ``TaskRunner``) is told when a deployment
starts. None is set by default, so deployments stay IN_PROGRESS until someone calls
``mark_completed`` / ``mark_failed`` (tests use ``complete_deployment`` / ``fail_deployment``).
The later real-task runner starts containers from the images, health-checks them, reports
counts with ``set_counts`` and calls ``mark_completed`` or ``mark_failed``.

Listeners (``on_outcome``) hear when a deployment COMPLETES or FAILS; stack_rollback uses that
to let a CloudFormation update wait for the ECS service as it does on AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from moto.ecs.models import Service, ecs_backends
from moto.moto_api._internal import mock_random


class RolloutState(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class DeploymentStatus(StrEnum):
    PRIMARY = "PRIMARY"
    ACTIVE = "ACTIVE"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deployment:
    id: str
    task_definition: str
    desired_count: int
    status: DeploymentStatus = DeploymentStatus.PRIMARY
    rollout_state: RolloutState = RolloutState.IN_PROGRESS
    rollout_state_reason: str = ""
    running_count: int = 0
    pending_count: int = 0
    failed_tasks: int = 0
    launch_type: str | None = None
    capacity_provider_strategy: list[dict[str, Any]] | None = None
    platform_version: str | None = None
    network_configuration: dict[str, Any] | None = None
    failed_by: str = ""  # what failed it: "circuit breaker" or "alarms"
    created_at: datetime = field(default_factory=_now)
    updated_at: datetime = field(default_factory=_now)

    def to_api(self) -> dict[str, Any]:
        """As describe_services shows it."""
        item: dict[str, Any] = {
            "id": self.id,
            "status": self.status.value,
            "taskDefinition": self.task_definition,
            "desiredCount": self.desired_count,
            "pendingCount": self.pending_count,
            "runningCount": self.running_count,
            "failedTasks": self.failed_tasks,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "rolloutState": self.rollout_state.value,
            "rolloutStateReason": self.rollout_state_reason,
            "launchType": self.launch_type,
            "capacityProviderStrategy": self.capacity_provider_strategy,
            "platformVersion": self.platform_version,
            "networkConfiguration": self.network_configuration,
        }
        return {k: v for k, v in item.items() if v is not None}


OutcomeListener = Callable[["ServiceDeployments", Deployment], None]


class TaskRunner(Protocol):
    """Runs a deployment's tasks; must not block (start work and return)."""

    def deployment_started(self, deployments: ServiceDeployments, deployment: Deployment) -> None: ...


_runner: TaskRunner | None = None
_collector = threading.local()


def set_task_runner(runner: TaskRunner | None) -> None:
    """Install the hook told about every started deployment (None: deployments wait)."""
    global _runner
    _runner = runner


@contextmanager
def collect_started_deployments() -> Iterator[list[tuple[ServiceDeployments, Deployment]]]:
    """Collect the deployments this thread starts (a stack update uses it to know what to wait on)."""
    started: list[tuple[ServiceDeployments, Deployment]] = []
    previous = getattr(_collector, "started", None)
    _collector.started = started
    try:
        yield started
    finally:
        _collector.started = previous


class ServiceDeployments:
    """All deployments of one service; the only code that changes ``service.deployments``."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.deployments: list[Deployment] = []
        self.last_completed: Deployment | None = None
        self._listeners: dict[str, list[OutcomeListener]] = {}
        self._outcomes: dict[str, Deployment] = {}  # deployment id -> the deployment, once COMPLETED or FAILED
        self._listening = threading.Lock()

    @property
    def primary(self) -> Deployment:
        return next(d for d in self.deployments if d.status is DeploymentStatus.PRIMARY)

    def get(self, deployment_id: str | None = None) -> Deployment:
        if deployment_id is None:
            return self.primary
        return next(d for d in self.deployments if d.id == deployment_id)

    def start_deployment(self, task_definition: str) -> Deployment:
        for old in self.deployments:
            old.status = DeploymentStatus.ACTIVE
        deployment = Deployment(
            id=f"ecs-svc/{mock_random.randint(0, 10**19)}",
            task_definition=task_definition,
            desired_count=self.service.desired_count,
            launch_type=getattr(self.service, "launch_type", None),
            capacity_provider_strategy=getattr(self.service, "capacity_provider_strategy", None),
            platform_version=getattr(self.service, "platform_version", None),
            network_configuration=getattr(self.service, "network_configuration", None) or None,
        )
        deployment.rollout_state_reason = f"ECS deployment {deployment.id} in progress."
        self.deployments.insert(0, deployment)
        self._render()
        started = getattr(_collector, "started", None)
        if started is not None:
            started.append((self, deployment))
        if _runner is not None:
            _runner.deployment_started(self, deployment)
        return deployment

    def set_counts(
        self,
        deployment_id: str | None = None,
        *,
        running: int | None = None,
        pending: int | None = None,
        failed: int | None = None,
    ) -> Deployment:
        deployment = self.get(deployment_id)
        if running is not None:
            deployment.running_count = running
        if pending is not None:
            deployment.pending_count = pending
        if failed is not None:
            deployment.failed_tasks = failed
        deployment.updated_at = _now()
        self._render()
        return deployment

    def scale(self, desired_count: int) -> None:
        """A new desired count for the PRIMARY deployment. Without a task runner a
        COMPLETED deployment scales at once (there are no tasks to wait for)."""
        deployment = self.primary
        deployment.desired_count = desired_count
        if deployment.rollout_state is RolloutState.COMPLETED and _runner is None:
            deployment.running_count, deployment.pending_count = desired_count, 0
        self._render()

    def mark_completed(self, deployment_id: str | None = None) -> Deployment:
        """Steady state: the deployment runs its desired count; older deployments are drained."""
        deployment = self.get(deployment_id)
        deployment.rollout_state = RolloutState.COMPLETED
        deployment.rollout_state_reason = f"ECS deployment {deployment.id} completed."
        deployment.running_count, deployment.pending_count = deployment.desired_count, 0
        deployment.updated_at = _now()
        self.deployments = [deployment]
        deployment.status = DeploymentStatus.PRIMARY
        self.last_completed = deployment
        self.add_event(f"(service {self.service.name}) (deployment {deployment.id}) deployment completed.")
        self.add_event(f"(service {self.service.name}) has reached a steady state.")
        self._render()
        self._notify(deployment)
        return deployment

    def mark_failed(
        self,
        reason: str = "tasks failed to start.",
        deployment_id: str | None = None,
        *,
        source: str = "circuit breaker",
        rollback: bool | None = None,
    ) -> Deployment:
        """The circuit breaker (or a deployment alarm) failed the deployment. With rollback enabled,
        ECS redeploys the last COMPLETED task definition as a new PRIMARY deployment (which itself
        must complete)."""
        deployment = self.get(deployment_id)
        deployment.rollout_state = RolloutState.FAILED
        deployment.failed_by = source
        deployment.rollout_state_reason = f"ECS deployment {source}: {reason}"
        deployment.updated_at = _now()
        self.add_event(f"(service {self.service.name}) (deployment {deployment.id}) deployment failed: {reason}")
        if rollback is None:
            config = getattr(self.service, "deployment_configuration", None) or {}
            rollback = bool(config.get("deploymentCircuitBreaker", {}).get("rollback", False))
        target = self.last_completed
        if rollback and target is not None and deployment.status is DeploymentStatus.PRIMARY:
            deployment.rollout_state_reason = (
                f"ECS deployment circuit breaker: rolling back to deploymentId {target.id}."
                if source == "circuit breaker"
                else f"ECS deployment {source}: {reason} rolling back to deploymentId {target.id}."
            )
            self.add_event(f"(service {self.service.name}) rolling back to deployment {target.id}.")
            # The rollback deployment takes over the old deployment's tasks; list it once.
            self.deployments = [d for d in self.deployments if d is deployment or d.id != target.id]
            self.start_deployment(target.task_definition)
        self._render()
        self._notify(deployment)
        return deployment

    def on_outcome(self, deployment_id: str, listener: OutcomeListener) -> None:
        """Call ``listener`` once when that deployment COMPLETES or FAILS, at once when it already has.

        The scheduler runs on its own thread: a deployment whose tasks fail at once (an execution
        role that may not pull) can fail before the stack update that started it asks to hear of it."""
        with self._listening:
            known = self._outcomes.get(deployment_id)
            if known is None:
                self._listeners.setdefault(deployment_id, []).append(listener)
        if known is not None:
            listener(self, known)

    def add_event(self, message: str) -> None:
        event = {"id": str(mock_random.uuid4()), "createdAt": _now(), "message": message}
        self.service.events.insert(0, event)  # newest first, as AWS lists them

    def _notify(self, deployment: Deployment) -> None:
        with self._listening:
            self._outcomes[deployment.id] = deployment
            listeners = self._listeners.pop(deployment.id, [])
        for listener in listeners:
            listener(self, deployment)

    def _render(self) -> None:
        """Write the model into moto's service, which describe_services serializes."""
        service = self.service
        service.deployments = [d.to_api() for d in self.deployments]
        service.running_count = sum(d.running_count for d in self.deployments)
        service.pending_count = sum(d.pending_count for d in self.deployments)
        if self.deployments:
            service.task_definition = self.primary.task_definition


def deployments_of(service: Service) -> ServiceDeployments:
    """The model of a service, made on first use from moto's initial deployment."""
    model: ServiceDeployments | None = getattr(service, "_deployments_model", None)
    if model is None:
        model = ServiceDeployments(service)
        service._deployments_model = model
        for seed in service.deployments:  # moto's own first deployment, if any
            model.deployments.append(
                Deployment(
                    id=seed["id"],
                    task_definition=seed["taskDefinition"],
                    desired_count=seed["desiredCount"],
                    rollout_state=RolloutState(seed["rolloutState"]),
                    rollout_state_reason=seed["rolloutStateReason"],
                    running_count=seed["runningCount"],
                    pending_count=seed["pendingCount"],
                    launch_type=seed.get("launchType"),
                )
            )
    return model


def find_service(cluster: str, service: str, *, account_id: str, region: str) -> Service:
    return ecs_backends[account_id][region]._get_service(cluster, service)


def complete_deployment(
    cluster: str, service: str, *, account_id: str, region: str, deployment_id: str | None = None
) -> Deployment:
    """Stand-in for the task runner: the (PRIMARY) deployment reached a steady state."""
    return deployments_of(find_service(cluster, service, account_id=account_id, region=region)).mark_completed(
        deployment_id
    )


def fail_deployment(
    cluster: str,
    service: str,
    *,
    account_id: str,
    region: str,
    reason: str = "tasks failed to start.",
    deployment_id: str | None = None,
) -> Deployment:
    """Stand-in for the task runner: the circuit breaker marked the deployment FAILED."""
    return deployments_of(find_service(cluster, service, account_id=account_id, region=region)).mark_failed(
        reason, deployment_id
    )
