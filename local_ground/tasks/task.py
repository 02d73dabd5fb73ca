"""One ECS task of a service, run for real: launch (pull, run, register its target) and stop
(deregister and drain, SIGTERM, stop timeout, SIGKILL), each on a thread of its own so the
service controller never blocks on buildah.

ECS order reproduced: a task is RUNNING when its containers run, then its target is registered
(state `initial`); stopping deregisters the target, waits for draining, then signals the containers.

Applied from the task definition (pipeline/images/container.py says how): `user`, `readonlyRootFilesystem`,
memory (the container's, else the task's: a memory cgroup, the OOM killer's kill is ECS's OutOfMemoryError),
cpu (the task's units as a CFS quota on a cpu cgroup its containers share, each container's as cpu.shares),
and the container `healthCheck` (container_health.py: the container's and the task's healthStatus, which the
service scheduler acts on). Not applied: the task's own network (awsvpc gives each task its IP, so the app
binds its containerPort; here tasks share the host network and each gets PORT set to a free port instead).
`secrets` are read as the execution role (secrets.py) and set in the working container's environment,
never on a command line.
An unknown `containerName` in the service's load balancers is refused by CreateService
(moto_extensions.ecs_validation), as on AWS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from moto.elbv2.models import elbv2_backends

from pipeline.images.container import ContainerError, ContainerProcess, ContainerSpec, free_port

from .awslogs import AwsLogsShipper, AwsLogsTarget
from .container_health import ContainerHealthCheck, ContainerHealthChecker, HealthStatus, task_health
from .ecs_tasks import RecordedTask, container_stopped, private_ip, release_network_interface, set_status
from .runtime import Runtime
from .secrets import SecretRefused, read_secrets
from .targets import HealthCheck, HealthChecker, Target, TargetState

log = logging.getLogger(__name__)
START_TIMEOUT = 60.0  # bound on buildah bringing a container's process up
DEFAULT_STOP_TIMEOUT = 30  # ECS's default stopTimeout, seconds
_address_counter = iter(range(1, 1 << 16))


def _fallback_address() -> str:
    """A unique made-up task address when the task has no ENI (not awsvpc)."""
    n = next(_address_counter)
    return f"10.255.{n // 250}.{n % 250 + 1}"


class Phase(StrEnum):
    LAUNCHING = "LAUNCHING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"


def container_specs(task_definition: Any, pull_of: Callable[[str], Any]) -> list[tuple[ContainerSpec, Any]]:
    """(spec, pull) per container definition of a moto task definition."""
    specs = []
    for definition in task_definition.container_definitions:
        pull = pull_of(definition["image"])
        environment = {e["name"]: str(e["value"]) for e in definition.get("environment") or []}
        specs.append(
            (
                ContainerSpec(
                    name=definition["name"],
                    image=pull.reference,
                    environment=environment,
                    entry_point=definition.get("entryPoint"),
                    command=definition.get("command"),
                    essential=definition.get("essential", True),
                    user=definition.get("user"),
                    read_only_root=bool(definition.get("readonlyRootFilesystem")),
                    memory_mib=_memory_limit(definition, task_definition),
                    task_cpu=_units(getattr(task_definition, "cpu", None)),
                    cpu_shares=_units(definition.get("cpu")),
                ),
                pull,
            )
        )
    return specs


def _memory_limit(definition: dict[str, Any], task_definition: Any) -> int | None:
    """The hard limit the container runs under: its own `memory`, else the task's (Fargate's task size)."""
    value = definition.get("memory") or getattr(task_definition, "memory", None)
    return int(value) if value else None


def _units(value: Any) -> int | None:
    """Cpu units as registered (moto keeps the task's as the string it was given); 0 or none: no limit."""
    return int(value) if value and str(value).isdigit() and int(value) > 0 else None


OUT_OF_MEMORY = "OutOfMemoryError: Container killed due to memory usage"


class RunningTask:
    """A task's real processes and its target; `on_change` wakes the service controller."""

    def __init__(
        self,
        runtime: Runtime,
        record: RecordedTask,
        task_definition: Any,
        deployment_id: str,
        load_balancer: dict[str, Any] | None,
        on_change: Callable[[], None],
        on_event: Callable[[str], None],
    ) -> None:
        self.runtime, self.record = runtime, record
        self.deployment_id = deployment_id
        self.task_definition = task_definition.arn
        self._definition = task_definition
        self.load_balancer = load_balancer
        self._on_change, self._on_event = on_change, on_event
        self.phase = Phase.LAUNCHING
        self.failed_to_launch = False
        self.running_since: float | None = None
        self.target: Target | None = None
        self._checker: HealthChecker | None = None
        self._stop_timeouts: dict[str, float] = {}
        self.containers: list[ContainerProcess] = []
        self._ports: dict[str, int] = {}
        self._pull_errors: list[str] = []
        # ECS's agent reads the secrets as the execution role before it pulls (secrets.py).
        self._secrets = {d["name"]: list(d.get("secrets") or []) for d in task_definition.container_definitions}
        self._execution_role: str | None = getattr(task_definition, "execution_role_arn", None)
        self._architecture = (getattr(task_definition, "runtime_platform", None) or {}).get("cpuArchitecture")
        for spec, pull in container_specs(task_definition, runtime.pull_of):
            if pull.error:
                self._pull_errors.append(pull.error)
            self.containers.append(
                ContainerProcess(
                    spec,
                    f"ecs-{record.id[:12]}-{spec.name}",
                    runtime.log_dir / f"{record.id}-{spec.name}.log",
                    creds=pull.creds,
                    tls_verify=pull.tls_verify,
                    cpu_group=f"ecs-{record.id[:12]}",  # the task's cpu caps its containers together
                )
            )
            self._ports[spec.name] = free_port()
        self._health_checks = {
            d["name"]: check
            for d in task_definition.container_definitions
            if (check := ContainerHealthCheck.of(d, runtime.scale)) is not None
        }
        self._health_checkers: list[ContainerHealthChecker] = []
        self._log_shippers: dict[str, AwsLogsShipper] = {}
        for definition in task_definition.container_definitions:
            self._stop_timeouts[definition["name"]] = runtime.scale.seconds(
                float(definition.get("stopTimeout") or DEFAULT_STOP_TIMEOUT)
            )
            logs = AwsLogsTarget.of(definition, record.id, runtime.account_id, runtime.region)
            if logs is not None:
                log_path = runtime.log_dir / f"{record.id}-{definition['name']}.log"
                self._log_shippers[definition["name"]] = AwsLogsShipper(logs, log_path)
        self._stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    @property
    def id(self) -> str:
        return str(self.record.id)

    @property
    def healthy(self) -> bool:
        """Counts toward minimumHealthyPercent: running, HEALTHY when its containers have health checks, and
        behind a load balancer passing its checks."""
        if self.phase is not Phase.RUNNING:
            return False
        if self._health_checks and self.health_status is not HealthStatus.HEALTHY:
            return False
        return self.target is None or self.target.state is TargetState.HEALTHY

    @property
    def health_status(self) -> HealthStatus:
        """The task's healthStatus, from its essential containers' health checks (container_health.py)."""
        return task_health((c.container.spec.essential, c.status) for c in self._health_checkers)

    def _health_changed(self) -> None:
        """Record the containers' and the task's healthStatus where DescribeTasks shows them."""
        statuses = {checker.container.spec.name: checker.status for checker in self._health_checkers}
        for container in self.record.containers:
            container.health_status = str(statuses.get(container.name, HealthStatus.UNKNOWN))
        self.record.health_status = str(self.health_status)
        self._on_change()

    def exited_essential(self) -> ContainerProcess | None:
        for container in self.containers:
            if container.spec.essential and container.exit_code() is not None:
                return container
        return None

    # --- launch -----------------------------------------------------------------------------

    def launch(self) -> None:
        self._spawn(self._launch, "launch")

    def _launch(self) -> None:
        try:
            refusal = self.runtime.start_refusal(self._definition, self.id)
            if refusal:
                raise ContainerError(refusal)
            if self._pull_errors:
                raise ContainerError(self._pull_errors[0])
            self._check_architecture()
            secrets = self._read_secrets()
            for container in self.containers:
                if self._stopping.is_set():
                    return
                container.pull()
                container.set_secret_environment(secrets.get(container.spec.name, {}))
            set_status(self.record, "PENDING")
            for shipper in self._log_shippers.values():
                shipper.open()  # the awslogs driver's stream, before any container runs
            for container in self.containers:
                self.runtime.processes.run(
                    container, {"PORT": str(self._ports[container.spec.name]), "HOST": "127.0.0.1"}
                )
                shipper = self._log_shippers.get(container.spec.name)
                if shipper is not None:
                    shipper.start()
            for container in self.containers:
                if not container.wait_started(START_TIMEOUT):
                    break  # it exited at once: the controller sees the essential container exit
        except Exception as error:  # a task is never left PENDING: any failure stops it, with its cause
            if not isinstance(error, ContainerError):
                log.exception("task %s: launch failed", self.id)
                error = ContainerError(f"CannotStartContainerError: the local ground failed to start it: {error!r}")
            self.failed_to_launch = True
            self.phase = Phase.STOPPED
            for container in self.containers:
                container.kill()
                container.remove()
                self.runtime.processes.discard(container)
            for shipper in self._log_shippers.values():
                shipper.stop()
            release_network_interface(self.record, self.runtime.account_id, self.runtime.region)
            set_status(
                self.record,
                "STOPPED",
                desired_status="STOPPED",
                stopped_reason=str(error),
                stop_code="TaskFailedToStart",
            )
            self._on_change()
            return
        if self._stopping.is_set():
            return
        set_status(self.record, "RUNNING")
        self.running_since = time.monotonic()
        self.phase = Phase.RUNNING
        for container in self.containers:
            check = self._health_checks.get(container.spec.name)
            if check is not None:
                checker = ContainerHealthChecker(container, check, self._health_changed)
                self._health_checkers.append(checker)
                checker.start()
        if self.load_balancer is not None and self.exited_essential() is None:
            self._register()
        self._on_change()

    def _check_architecture(self) -> None:
        """Fargate runs ARM64 tasks on ARM64 hosts; here tasks run on this machine's CPU, so a task it cannot
        run is refused with a line saying so (on AWS it would start)."""
        from pipeline.steps.build import missing_emulator

        missing = missing_emulator(self._architecture) if self._architecture in ("X86_64", "ARM64") else None
        if missing:
            raise ContainerError(
                f"CannotStartContainerError: the local ground cannot run {self._architecture} tasks: {missing}"
            )

    def _read_secrets(self) -> dict[str, dict[str, str]]:
        enforced = self.runtime.identity_enforced()
        try:
            return {
                name: read_secrets(secrets, self._execution_role, enforced, self.id)
                for name, secrets in self._secrets.items()
                if secrets
            }
        except SecretRefused as refused:
            raise ContainerError(str(refused)) from None

    def _register(self) -> None:
        assert self.load_balancer is not None  # nosec B101 # only tasks behind a load balancer register
        group_arn = self.load_balancer["targetGroupArn"]
        backend = elbv2_backends[self.runtime.account_id][self.runtime.region]
        group = backend.target_groups[group_arn]
        target_id = private_ip(self.record) or _fallback_address()
        container = self.load_balancer.get("containerName") or self.containers[0].spec.name
        port = int(self.load_balancer.get("containerPort") or group.port)
        target = Target(group_arn, target_id, port, self._ports.get(container, next(iter(self._ports.values()))))
        self.runtime.targets.add(target)
        backend.register_targets(group_arn, [{"Id": target_id, "Port": port}])
        self.target = target
        self._checker = HealthChecker(target, HealthCheck.of(group, self.runtime.scale))
        self._checker.start()
        self._on_event(f"registered 1 targets in (target-group {group_arn})")

    # --- stop -------------------------------------------------------------------------------

    def stop(self, reason: str, stop_code: str = "ServiceSchedulerInitiated") -> None:
        """Deregister and drain, then stop the containers (on a thread); idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.phase = Phase.STOPPING
        for checker in self._health_checkers:
            checker.stop()
        set_status(self.record, "DEACTIVATING", desired_status="STOPPED", stopped_reason=reason, stop_code=stop_code)
        self._spawn(self._stop, "stop")

    def _stop(self) -> None:
        for thread in self.threads:  # a launch still pulling finishes first (bounded by buildah)
            if thread is not threading.current_thread():
                thread.join(timeout=START_TIMEOUT)
        if self.target is not None:
            self._deregister(self.target)
        set_status(self.record, "STOPPING")
        for container in self.containers:
            code = container.stop(self._stop_timeouts.get(container.spec.name, 0.0))
            shipper = self._log_shippers.get(container.spec.name)
            if shipper is not None:
                shipper.stop()  # its last lines (e.g. the drain) reach the stream too
            reason = None
            if container.oom_killed():  # ECS's reason for a container its memory limit ended
                reason = [OUT_OF_MEMORY]
            elif code not in (None, 0) and container.spec.essential:
                reason = container.app_output().strip().splitlines()[-1:] or None
            container_stopped(self.record, container.spec.name, code, reason[0] if reason else None)
            container.remove()
            self.runtime.processes.discard(container)
        release_network_interface(self.record, self.runtime.account_id, self.runtime.region)
        set_status(self.record, "STOPPED")
        self.phase = Phase.STOPPED
        self._on_change()

    def _deregister(self, target: Target) -> None:
        if self._checker is not None:
            self._checker.stop()
        check_delay = float("inf")
        backend = elbv2_backends[self.runtime.account_id][self.runtime.region]
        group = backend.target_groups.get(target.group_arn)
        if group is not None:
            check_delay = HealthCheck.of(group, self.runtime.scale).deregistration_delay
        self._on_event(f"deregistered 1 targets in (target-group {target.group_arn})")
        target.drain(check_delay if check_delay != float("inf") else 0.0)
        if group is not None and target.id in group.targets:
            group.deregister([{"Id": target.id}])
        self.runtime.targets.remove(target)

    def kill(self) -> None:
        """Uninstall: no draining, no waiting."""
        self._stopping.set()
        for checker in self._health_checkers:
            checker.stop()
        if self._checker is not None:
            self._checker.stop()
        for container in self.containers:
            container.kill()
        for shipper in self._log_shippers.values():
            shipper.stop()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self.threads):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._checker is not None:
            self._checker.join()
        for checker in self._health_checkers:
            checker.join()

    def _spawn(self, work: Callable[[], None], what: str) -> None:
        thread = threading.Thread(target=work, name=f"task-{what}-{self.id[:8]}", daemon=True)
        self.threads.append(thread)
        thread.start()
