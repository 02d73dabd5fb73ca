"""ecs_tasks_run_for_real: the local AWS runs a service's tasks from their images, health-checks them
through the target group and serves each ALB's DNS name with a local proxy, so a deployment
succeeds or fails for the reason it would on AWS.

Install it next to LocalAWS's own extensions and the ECR bridge (it pulls ECR images through it)::

    with LocalRegistry() as registry:
        bridge = EcrRegistryBridge(registry)
        tasks = EcsTasksRunForReal(bridge, time_scale=0.02)
        with LocalAWS(extensions=[*all_extensions(), bridge, tasks]) as aws:
            ...

What it patches in moto (each an AWS behaviour moto 5.2.5 lacks):
- load_balancer_dns_reaches_the_proxy: an ALB created while installed gets a loopback address of its
  own (127.X.Y.Z, as each ALB has its own DNS name) and a proxy on a free port there; its DNSName is
  `127.X.Y.Z:PORT` (so a stack's `http://${LoadBalancer.DNSName}` works);
- listeners_on_their_own_ports: any further HTTP listener (a traffic-shifting service's test
  listener, e.g. port 9000) is served on its own port at the balancer's address, with its own rules;
- target_health_from_real_checks: describe_target_health answers initial/healthy/unhealthy/draining;
- list_tasks_filters_by_service: `serviceName` selects that service's tasks (moto ignores it).
"""

from __future__ import annotations

import errno
import random
import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ecs.models import EC2ContainerServiceBackend, Task
from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeLoadBalancer, FakeTargetGroup, elbv2_backends

from local_ground.moto_extensions._base import Extension, Patch
from local_ground.moto_extensions.deployments import Deployment, ServiceDeployments, set_task_runner
from local_ground.moto_extensions.timescale import set_time_scale

from .containers import ProcessRegistry
from .proxy import LoadBalancerProxy
from .routing import Routing, routing_of
from .runtime import RegistryFront, Runtime
from .service import ServiceController
from .targets import TargetGroups
from .timescale import TimeScale
from .traffic import TrafficServiceController


def publish_target_metrics(
    account_id: str, region: str, balancer_arn: str, group_arn: str, status: int, seconds: float
) -> None:
    """What an ALB reports to CloudWatch (namespace AWS/ApplicationELB) for one response of a target:
    RequestCount and TargetResponseTime, and HTTPCode_Target_5XX_Count when the target answered 5xx
    (ALB reports the count metrics only when non-zero). "CloudWatch metrics for your Application Load
    Balancer"; the 5xx rate alarm divides the two counts."""
    dimensions = [
        {"Name": "LoadBalancer", "Value": balancer_arn.split(":loadbalancer/")[-1]},
        {"Name": "TargetGroup", "Value": group_arn.split(":")[-1]},
    ]
    data: list[dict[str, Any]] = [
        {"MetricName": "TargetResponseTime", "Value": seconds, "Unit": "Seconds", "Dimensions": dimensions},
        {"MetricName": "RequestCount", "Value": 1.0, "Unit": "Count", "Dimensions": dimensions},
    ]
    if 500 <= status <= 599:
        data.append(
            {"MetricName": "HTTPCode_Target_5XX_Count", "Value": 1.0, "Unit": "Count", "Dimensions": dimensions}
        )
    cloudwatch_backends[account_id][region].put_metric_data("AWS/ApplicationELB", data)


class EcsTasksRunForReal(Extension):
    name = "ecs_tasks_run_for_real"

    def __init__(
        self,
        registry: RegistryFront | None = None,
        time_scale: float | TimeScale = 1.0,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        region: str = "us-east-1",
    ) -> None:
        super().__init__()
        self.registry = registry
        self.scale = time_scale if isinstance(time_scale, TimeScale) else TimeScale(time_scale)
        self.account_id, self.region = account_id, region
        self.targets = TargetGroups()
        self.processes = ProcessRegistry()
        self.proxies: dict[str, LoadBalancerProxy] = {}
        self.listener_proxies: dict[str, LoadBalancerProxy] = {}  # listener ARN -> proxy (test listeners)
        self.controllers: dict[int, ServiceController] = {}
        self._lock = threading.Lock()
        self._runtime: Runtime | None = None
        self.identity: Any = None  # the ground's IdentityEnforcement, when it enforces IAM

    # --- the extension ----------------------------------------------------------------------

    def install(self) -> None:
        super().install()
        self.processes = ProcessRegistry()
        self._runtime = Runtime(
            self.scale,
            self.targets,
            self.processes,
            self.registry,
            Path(tempfile.mkdtemp(prefix="local-ecs-tasks-")),
            self.account_id,
            self.region,
            identity_enforced=lambda: self.identity is not None and bool(self.identity.enabled),
        )
        set_task_runner(self)
        set_time_scale(self.scale.factor)  # the moto extensions' durations (bake, alarm periods) too

    def uninstall(self) -> None:
        """Idempotent: tasks killed, proxies closed, patches off."""
        if self._runtime is not None:
            set_task_runner(None)
        with self._lock:
            controllers, self.controllers = list(self.controllers.values()), {}
            proxies, self.proxies = list(self.proxies.values()), {}
            proxies += list(self.listener_proxies.values())
            self.listener_proxies = {}
        for controller in controllers:
            controller.close()
        self.processes.kill_all()
        for proxy in proxies:
            proxy.close()
        super().uninstall()  # patches off, then reset()

    def reset(self) -> None:
        self.targets.clear()
        if self._runtime is not None:
            shutil.rmtree(self._runtime.log_dir, ignore_errors=True)
            self._runtime = None

    def patches(self) -> Iterable[Patch]:
        create_load_balancer = ELBv2Backend.create_load_balancer
        delete_load_balancer = ELBv2Backend.delete_load_balancer
        create_listener = ELBv2Backend.create_listener
        delete_listener = ELBv2Backend.delete_listener
        health_for = FakeTargetGroup.health_for
        list_tasks = EC2ContainerServiceBackend.list_tasks
        runner = self

        # load_balancer_dns_reaches_the_proxy
        def create(backend: ELBv2Backend, *args: Any, **kwargs: Any) -> FakeLoadBalancer:
            load_balancer = create_load_balancer(backend, *args, **kwargs)
            if load_balancer.type == "application":
                load_balancer.dns_name = runner._proxy_for(backend, load_balancer.arn).host
            return load_balancer

        def delete(backend: ELBv2Backend, arn: str) -> None:
            delete_load_balancer(backend, arn)
            with runner._lock:
                proxy = runner.proxies.pop(arn, None)
            if proxy is not None:
                proxy.close()

        # listeners_on_their_own_ports
        def listener(backend: ELBv2Backend, load_balancer_arn: str, protocol: str, port: str, *a: Any, **k: Any) -> Any:
            created = create_listener(backend, load_balancer_arn, protocol, port, *a, **k)
            runner._listener_proxy(backend, load_balancer_arn, created)
            return created

        def unlisten(backend: ELBv2Backend, listener_arn: str) -> Any:
            removed = delete_listener(backend, listener_arn)
            with runner._lock:
                proxy = runner.listener_proxies.pop(listener_arn, None)
            if proxy is not None:
                proxy.close()
            return removed

        # target_health_from_real_checks
        def health(group: FakeTargetGroup, target: dict[str, Any], ec2_backend: Any) -> FakeHealthStatus:
            return runner.targets.health_for(group, target) or health_for(group, target, ec2_backend)

        # list_tasks_filters_by_service
        def tasks(backend: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> list[Task]:
            found: list[Task] = list_tasks(backend, *args, **kwargs)
            service = kwargs.get("service_name") or (args[4] if len(args) > 4 else None)
            if service:
                found = [t for t in found if t.group == f"service:{service.split('/')[-1]}"]
            return found

        yield ELBv2Backend, "create_load_balancer", create
        yield ELBv2Backend, "delete_load_balancer", delete
        yield ELBv2Backend, "create_listener", listener
        yield ELBv2Backend, "delete_listener", unlisten
        yield FakeTargetGroup, "health_for", health
        yield EC2ContainerServiceBackend, "list_tasks", tasks

    # --- the task runner (deployments.TaskRunner) -------------------------------------------

    def deployment_started(self, deployments: ServiceDeployments, deployment: Deployment) -> None:
        """Told by the deployments model; never blocks (the service's controller does the work)."""
        if self._runtime is None:
            return
        with self._lock:
            controller = self.controllers.get(id(deployments))
            if controller is None:
                controller = TrafficServiceController(self._runtime, deployments)
                self.controllers[id(deployments)] = controller
        controller.wake()

    def service_deleted(self, deployments: ServiceDeployments, timeout: float) -> bool:
        """ECS stops a deleted service's tasks (deregistered, drained, stopped); True once none runs.
        Never waits on the calling thread's own controller (it stops them on its next pass)."""
        with self._lock:
            controller = self.controllers.get(id(deployments))
        if controller is None:
            return True
        controller.wake()
        if controller.is_current_thread():
            return True
        return controller.wait_stopped(timeout)

    def live_task_pids(self) -> list[int]:
        """`buildah run` processes still running (tests assert none outlives the local AWS)."""
        return self.processes.live_pids()

    def _proxy_for(self, backend: ELBv2Backend, arn: str) -> LoadBalancerProxy:
        def routing() -> Routing:
            load_balancer = elbv2_backends[backend.account_id][backend.region_name].load_balancers.get(arn)
            return Routing() if load_balancer is None else routing_of(load_balancer, self.scale.factor)

        def observe(group_arn: str, status: int, seconds: float) -> None:
            publish_target_metrics(backend.account_id, backend.region_name, arn, group_arn, status, seconds)

        with self._lock:
            proxy = _bound(lambda address: LoadBalancerProxy(self.targets, routing, observe, address=address))
            self.proxies[arn] = proxy
        return proxy

    def _listener_proxy(self, backend: ELBv2Backend, balancer_arn: str, listener: Any) -> None:
        """A second HTTP listener (not the one the DNS name's port serves) on its own port."""
        front = self.proxies.get(balancer_arn)
        port = int(listener.port)
        if front is None or port in (80, 443) or str(listener.protocol).upper() != "HTTP":
            return
        address = front.host.rsplit(":", 1)[0]

        def routing() -> Routing:
            load_balancer = elbv2_backends[backend.account_id][backend.region_name].load_balancers.get(balancer_arn)
            return Routing() if load_balancer is None else routing_of(load_balancer, self.scale.factor, port)

        def observe(group_arn: str, status: int, seconds: float) -> None:
            publish_target_metrics(backend.account_id, backend.region_name, balancer_arn, group_arn, status, seconds)

        proxy = LoadBalancerProxy(self.targets, routing, observe, address=address, port=port)
        with self._lock:
            self.listener_proxies[listener.arn] = proxy


def _bound(make: Any) -> LoadBalancerProxy:
    """A proxy on a loopback address of its own (127.0.0.0/8 is all loopback), so the balancer's other
    listeners can take their own ports there without meeting another balancer's."""
    rng = random.SystemRandom()
    for _ in range(20):
        address = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        try:
            return make(address)  # type: ignore[no-any-return]
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
    return make("127.0.0.1")  # type: ignore[no-any-return]
