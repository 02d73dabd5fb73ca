"""The container health check (ContainerDefinition `healthCheck`), run inside the container as the ECS agent
runs it through Docker, and the container and task `healthStatus` DescribeTasks shows.

AWS behaviour reproduced (ECS API reference: HealthCheck, Task.healthStatus; developer guide "Determine Amazon
ECS task health using container health checks"):
- `command` ["CMD", arg...] runs those arguments in the container, ["CMD-SHELL", "cmd"] runs the container's
  `/bin/sh -c cmd`; exit code 0 passes, anything else, or running past `timeout`, fails;
- `interval` (default 30 s), `timeout` (5 s), `retries` (3), `startPeriod` (0 s: off);
- a container's healthStatus is UNKNOWN until its first result, HEALTHY after a pass, UNHEALTHY after
  `retries` consecutive failures; failures within `startPeriod` do not count, and a pass within it makes the
  container HEALTHY (every later failure counts);
- a task's healthStatus is UNHEALTHY when any essential container is UNHEALTHY, HEALTHY when every essential
  container with a check is HEALTHY, else UNKNOWN; non-essential containers do not count;
- a service stops a task whose essential container is UNHEALTHY ("Task failed container health checks",
  after healthCheckGracePeriodSeconds, which covers container health checks too) and counts it as a failed
  task launch; service.py applies that.

Time: `interval` is an AWS duration between checks and is scaled (runtime.scale). `timeout` and `startPeriod`
bound the application's own work, answering a check and starting up, which runs in real time here as on
Fargate (the reasoning of service.py's `_grace_ends`); scaled, a 5 s timeout would be 0.1 s, less than
starting `buildah run` for the check takes, and every check would fail. So they are not scaled.

Here each check is a `buildah run` in the task's working container (ContainerProcess.exec), as the container's
user with its environment. Its processes stay outside the container's cgroups: buildah's own (tens of MB,
measured with the memory limit) would count against the task's memory and cpu.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pipeline.images.container import ContainerProcess

from .timescale import TimeScale

TASK_FAILED_HEALTH_CHECKS = "Task failed container health checks"


class HealthStatus(StrEnum):
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class ContainerHealthCheck:
    command: tuple[str, ...]  # what runs in the container
    interval: float  # between checks, scaled
    timeout: float  # real seconds
    retries: int
    start_period: float  # real seconds

    @classmethod
    def of(cls, definition: dict[str, Any], scale: TimeScale) -> ContainerHealthCheck | None:
        """The container definition's healthCheck with ECS's defaults; None when it has none."""
        check = definition.get("healthCheck") or {}
        command = list(check.get("command") or [])
        if not command:
            return None
        if command[0] == "CMD-SHELL":
            argv: tuple[str, ...] = ("/bin/sh", "-c", " ".join(command[1:]))
        elif command[0] == "CMD":
            argv = tuple(command[1:])
        else:  # ECS: the command starts with CMD or CMD-SHELL
            return None
        return cls(
            command=argv,
            interval=scale.seconds(float(check.get("interval") or 30)),
            timeout=float(check.get("timeout") or 5),
            retries=int(check.get("retries") or 3),
            start_period=float(check.get("startPeriod") or 0),
        )


class HealthState:
    """A container's healthStatus from its check results (`record`), with retries and the start period."""

    def __init__(self, retries: int, start_period: float, started: float) -> None:
        self.status = HealthStatus.UNKNOWN
        self._retries, self._start_period, self._started = retries, start_period, started
        self._failures = 0
        self._passed_once = False

    def record(self, passed: bool, at: float) -> HealthStatus:
        if passed:
            self._failures, self._passed_once = 0, True
            self.status = HealthStatus.HEALTHY
        elif self._passed_once or at - self._started >= self._start_period:
            self._failures += 1
            if self._failures >= self._retries:
                self.status = HealthStatus.UNHEALTHY
        return self.status


def task_health(containers: Iterable[tuple[bool, HealthStatus | None]]) -> HealthStatus:
    """The task's healthStatus from (essential, status; None for a container without a check)."""
    checked = [status for essential, status in containers if essential and status is not None]
    if HealthStatus.UNHEALTHY in checked:
        return HealthStatus.UNHEALTHY
    if checked and all(status is HealthStatus.HEALTHY for status in checked):
        return HealthStatus.HEALTHY
    return HealthStatus.UNKNOWN


class ContainerHealthChecker:
    """One container's checks on a thread of its own, from when its task runs until stop()."""

    def __init__(self, container: ContainerProcess, check: ContainerHealthCheck, on_change: Callable[[], None]) -> None:
        self.container, self.check = container, check
        self.status = HealthStatus.UNKNOWN
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"container-health-{container.working_name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout=self.check.timeout + 10)  # a check under way ends within its timeout

    def _run(self) -> None:
        state = HealthState(self.check.retries, self.check.start_period, time.monotonic())
        while not self._stop.wait(self.check.interval):
            if self.container.exit_code() is not None:
                return  # the task stops for its exit, not for its health
            code = self.container.exec(self.check.command, self.check.timeout)
            if self._stop.is_set():
                return
            status = state.record(code == 0, time.monotonic())
            if status is not self.status:
                self.status = status
                self._on_change()
