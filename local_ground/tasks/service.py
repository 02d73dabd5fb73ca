"""The ECS service scheduler for one service: rolling replacement and the deployment circuit breaker.

AWS behaviour reproduced (ECS rolling update):
- new tasks start while the total stays within maximumPercent of the desired count; old tasks are
  stopped (deregistered, drained) only while the healthy ones stay at or above minimumHealthyPercent;
- a task counts as healthy when it runs, its healthStatus is HEALTHY when its containers have health
  checks (container_health.py), and, behind a load balancer, its target is `healthy`;
- after healthCheckGracePeriodSeconds (the application's own start-up in real time, the rest
  scaled: see `_grace_ends`) a task whose target is `unhealthy` is stopped
  ("Task failed ELB health checks in (target-group ...)"), and one whose essential container is
  UNHEALTHY ("Task failed container health checks": the grace period covers container health checks
  too, API reference CreateService healthCheckGracePeriodSeconds); a task whose essential container
  exits is stopped ("Essential container in task exited", or "OutOfMemoryError: Container killed due
  to memory usage" when its memory limit killed it); all are failed task launches;
- circuit breaker: failed launches of the PRIMARY deployment reaching the threshold
  (0.5 x desired count, at least 3, at most 200) fail the deployment (`mark_failed`); failed tasks
  are replaced while under it; a task of the deployment reaching a healthy state resets the count
  to 0 unless resetOnHealthyTask is false (API reference DeploymentCircuitBreaker: "The default is
  true");
- the deployment is COMPLETED when its desired count of tasks is healthy and no other task is left;
- a rollback deployment of the same task definition takes over the tasks still running it;
- a new desired count (scaling) starts or stops tasks the same way.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from typing import Any

from moto.ecs.models import ecs_backends

from local_ground.moto_extensions.deployments import Deployment, RolloutState, ServiceDeployments

from .container_health import TASK_FAILED_HEALTH_CHECKS, HealthStatus
from .ecs_tasks import record_task
from .runtime import Runtime
from .task import OUT_OF_MEMORY, Phase, RunningTask

log = logging.getLogger(__name__)
TICK = 0.02  # how often the scheduler looks again, when nothing woke it sooner


def failure_threshold(desired_count: int) -> int:
    """ECS circuit breaker: 0.5 x desired count, at least 3, at most 200 failed task launches."""
    return min(200, max(3, math.ceil(desired_count * 0.5)))


class ServiceController:
    def __init__(self, runtime: Runtime, model: ServiceDeployments) -> None:
        self.runtime, self.model = runtime, model
        self.tasks: list[RunningTask] = []
        self.failures: Counter[str] = Counter()
        self._counted: set[str] = set()  # task ids already counted as failed
        self._seen_healthy: set[str] = set()  # task ids that reached a healthy state
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"ecs-service-{model.service.name}", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return str(self.model.service.name)

    def wake(self) -> None:
        self._wake.set()

    def event(self, message: str) -> None:
        self.model.add_event(f"(service {self.name}) {message}")

    def is_current_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def wait_stopped(self, timeout: float) -> bool:
        """Bounded wait until every task of this service has stopped (real processes, polled)."""
        deadline = time.monotonic() + timeout
        while any(t.phase is not Phase.STOPPED for t in self.tasks):
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(TICK)
        return True

    def close(self) -> None:
        """Uninstall: end the loop and kill every task without draining."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=5)
        for task in self.tasks:
            task.kill()
        for task in self.tasks:
            task.join(timeout=5)

    def _loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            if self._closed.is_set():
                return
            try:
                self._tick()
            except Exception:  # keep scheduling; a moto reset mid-tick must not kill the thread
                log.exception("ECS scheduler for %s", self.name)

    # --- one pass of the scheduler ----------------------------------------------------------

    def _tick(self) -> None:
        model = self.model
        for task in self.tasks:
            if task.failed_to_launch:  # counted before it is dropped: it is STOPPED already
                self._count_failure(task)
        self.tasks = [t for t in self.tasks if t.phase is not Phase.STOPPED]
        if getattr(model.service, "status", "ACTIVE") != "ACTIVE" or not model.deployments:
            for task in self.tasks:
                task.stop("Service deleted")  # ECS stops a deleted service's tasks
            return
        primary = model.primary
        self._take_over(primary)
        self._stop_failed_tasks()
        if self._circuit_breaker_trips(primary):
            return
        active = [t for t in self.tasks if t.phase in (Phase.LAUNCHING, Phase.RUNNING)]
        new = [t for t in active if t.deployment_id == primary.id]
        old = [t for t in active if t.deployment_id != primary.id]
        desired = primary.desired_count
        config = self._deployment_configuration()
        if primary.rollout_state is not RolloutState.FAILED:
            room = math.floor(desired * config.get("maximumPercent", 200) / 100) - len(new) - len(old)
            self._start(primary, min(desired - len(new), room))
        for task in sorted(new, key=lambda t: t.healthy)[: max(0, len(new) - desired)]:
            task.stop(f"Scaling activity initiated by (deployment {primary.id})")
        healthy_new = sum(1 for t in new if t.healthy)
        self._reset_failures_on_healthy(primary, new)
        min_healthy = math.ceil(desired * config.get("minimumHealthyPercent", 100) / 100)
        stoppable = len(old) + healthy_new - min_healthy
        for task in sorted(old, key=lambda t: t.healthy)[: max(0, stoppable)]:
            task.stop(f"Scaling activity initiated by (deployment {primary.id})")
        self._report_counts()
        others = [t for t in self.tasks if t.deployment_id != primary.id]
        if primary.rollout_state is RolloutState.IN_PROGRESS and healthy_new == desired == len(new) and not others:
            model.mark_completed(primary.id)

    def _take_over(self, primary: Deployment) -> None:
        """A rollback deployment adopts the tasks of the deployment it replaced (same task definition)."""
        current = {d.id for d in self.model.deployments}
        for task in self.tasks:
            if task.deployment_id not in current and task.task_definition == primary.task_definition:
                task.deployment_id = primary.id

    def _stop_failed_tasks(self) -> None:
        grace = float(getattr(self.model.service, "health_check_grace_period_seconds", 0) or 0)
        now = time.monotonic()
        for task in self.tasks:
            if task.failed_to_launch:
                self._count_failure(task)
                continue
            if task.phase is not Phase.RUNNING:
                continue
            exited = task.exited_essential()
            if exited is not None:
                self._count_failure(task)
                self.event(f"has stopped 1 running tasks: (task {task.id}).")
                # ECS names an out-of-memory kill as such (task and container); any other exit plainly.
                reason = OUT_OF_MEMORY if exited.oom_killed() else "Essential container in task exited"
                task.stop(reason, "EssentialContainerExited")
                continue
            target = task.target
            if target is not None and target.state == "unhealthy" and now >= self._grace_ends(task, grace):
                self._count_failure(task)
                self.event(f"(task {task.id}) failed ELB health checks in (target-group {target.group_arn}).")
                task.stop(f"Task failed ELB health checks in (target-group {target.group_arn})")
            elif task.health_status is HealthStatus.UNHEALTHY and now >= self._grace_ends(task, grace):
                self._count_failure(task)
                self.event(f"(task {task.id}) failed container health checks.")
                task.stop(TASK_FAILED_HEALTH_CHECKS)

    def _reset_failures_on_healthy(self, primary: Deployment, new: list[RunningTask]) -> None:
        breaker = self._deployment_configuration().get("deploymentCircuitBreaker", {})
        for task in new:
            if task.healthy and task.id not in self._seen_healthy:
                self._seen_healthy.add(task.id)
                if breaker.get("resetOnHealthyTask", True):
                    self.failures[primary.id] = 0

    def _grace_ends(self, task: RunningTask, grace: float) -> float:
        """When the health check grace period of a RUNNING task ends, in wall-clock time.

        The application starts in real time (processes, model loading: nothing here is faster than
        on Fargate), while AWS's durations are scaled. So the part of the grace period the
        application spends coming up (until it first answers a health check, `s`) is real, and only
        the rest is scaled: ends at start + s + scale x (grace - s). An application that has not
        answered yet gets the whole grace period in real time, as on AWS.
        """
        started = task.running_since or time.monotonic()
        answered = task.target.first_answer if task.target is not None else None
        if answered is None:
            return started + grace
        up = max(0.0, answered - started)
        return started + up + self.runtime.scale.seconds(max(0.0, grace - up))

    def _count_failure(self, task: RunningTask) -> None:
        if task.id not in self._counted:
            self._counted.add(task.id)
            self.failures[task.deployment_id] += 1

    def _circuit_breaker_trips(self, primary: Deployment) -> bool:
        breaker = self._deployment_configuration().get("deploymentCircuitBreaker", {})
        failed = self.failures[primary.id]
        if primary.failed_tasks != failed:
            self.model.set_counts(primary.id, failed=failed)
        if (
            not breaker.get("enable")
            or primary.rollout_state is not RolloutState.IN_PROGRESS
            or failed < failure_threshold(primary.desired_count)
        ):
            return False
        self.model.mark_failed("tasks failed to start.", primary.id)  # may start a rollback deployment
        return True

    def _load_balancer(self) -> dict[str, Any] | None:
        """Where new tasks register (the service's first load balancer entry)."""
        balancers = getattr(self.model.service, "load_balancers", None) or []
        return dict(balancers[0]) if balancers else None

    def _start(self, deployment: Deployment, count: int, load_balancer: dict[str, Any] | None = None) -> None:
        if count <= 0:
            return
        backend = ecs_backends[self.runtime.account_id][self.runtime.region]
        task_definition = backend.describe_task_definition(deployment.task_definition)
        balancer = load_balancer or self._load_balancer()
        started = []
        for _ in range(count):
            record = record_task(
                self.model.service, task_definition.arn, deployment.id, self.runtime.account_id, self.runtime.region
            )
            task = RunningTask(
                self.runtime,
                record,
                task_definition,
                deployment.id,
                balancer,
                self.wake,
                self.event,
            )
            self.tasks.append(task)
            started.append(task)
        self.event(f"has started {count} tasks: {' '.join(f'(task {t.id})' for t in started)}.")
        for task in started:
            task.launch()

    def _report_counts(self) -> None:
        """set_counts for every deployment whose running/pending tasks changed."""
        for deployment in self.model.deployments:
            mine = [t for t in self.tasks if t.deployment_id == deployment.id]
            running = sum(1 for t in mine if t.phase is Phase.RUNNING)
            pending = sum(1 for t in mine if t.phase is Phase.LAUNCHING)
            if (deployment.running_count, deployment.pending_count) != (running, pending):
                self.model.set_counts(deployment.id, running=running, pending=pending)

    def _deployment_configuration(self) -> dict[str, Any]:
        return getattr(self.model.service, "deployment_configuration", None) or {}
