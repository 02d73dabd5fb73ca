"""ECS refuses what it cannot run, at the API call, as AWS does.

- ecs_validates_fargate_task_definitions: RegisterTaskDefinition with FARGATE in
  requiresCompatibilities needs task-level cpu and memory forming a supported pair (ClientException
  "No Fargate configuration exists for given values: 256 CPU, 4096 memory. See the Amazon ECS
  documentation for the valid values."), the awsvpc network mode ("Fargate only supports network
  mode ‘awsvpc’."), and no container's memory above the task's ("The 'memory' setting for container
  'x' is greater than for the task."). AWS: "Troubleshoot Amazon ECS task definition invalid CPU or
  memory errors" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html,
  the table of valid pairs) and "Task definition parameters" (networkMode: "If using the Fargate
  launch type, the awsvpc network mode is required"; memory: "the container-level memory ... must
  not exceed the task memory"). moto 5.2.5 registers any of these.
- ecs_validates_service_load_balancers: CreateService / UpdateService refuse a load balancer whose
  containerName is not in the task definition ("The container x does not exist in the task
  definition."), whose containerPort no port mapping of that container has ("The container x did not
  have a container port 8081 defined."), and a target group of target type `instance` with an awsvpc
  task definition ("The provided target group ARN has target type instance, which is incompatible
  with the awsvpc network mode specified in the task definition."). AWS: API reference LoadBalancer
  (containerName/containerPort "as it appears in a container definition"/"port mapping") and "Use an
  Application Load Balancer for Amazon ECS" ("you must choose ip as the target type" for awsvpc).
- ecs_refuses_inactive_task_definitions: CreateService / UpdateService with an INACTIVE
  (deregistered) task definition revision fail ("TaskDefinition is inactive"). AWS:
  DeregisterTaskDefinition API reference ("you can't use an INACTIVE task definition to run new
  tasks or create new services, and you can't update an existing service to reference an INACTIVE
  task definition"). moto 5.2.5 accepts it.

Errors are ClientException / InvalidParameterException (HTTP 400) as ECS answers them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from moto.ecs.exceptions import EcsClientException, InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend, TaskDefinition
from moto.elbv2.models import elbv2_backends

from ._base import Extension, Patch

# Fargate's task sizes: cpu units -> valid memory (MiB).
FARGATE_SIZES: dict[int, frozenset[int]] = {
    256: frozenset({512, 1024, 2048}),
    512: frozenset(range(1024, 4096 + 1, 1024)),
    1024: frozenset(range(2048, 8192 + 1, 1024)),
    2048: frozenset(range(4096, 16384 + 1, 1024)),
    4096: frozenset(range(8192, 30720 + 1, 1024)),
    8192: frozenset(range(16384, 61440 + 1, 4096)),
    16384: frozenset(range(32768, 122880 + 1, 8192)),
}


def cpu_units(value: str) -> int | None:
    """ "1024", "1 vCPU", "0.25 vcpu" -> CPU units, as ECS converts them at registration."""
    match = re.fullmatch(r"\s*([\d.]+)\s*(vcpu)?\s*", str(value), re.IGNORECASE)
    if match is None:
        return None
    number = float(match[1])
    return int(number * 1024) if match[2] else int(number)


def memory_mib(value: str) -> int | None:
    """ "2048", "2 GB" -> MiB."""
    match = re.fullmatch(r"\s*([\d.]+)\s*(gb)?\s*", str(value), re.IGNORECASE)
    if match is None:
        return None
    number = float(match[1])
    return int(number * 1024) if match[2] else int(number)


def validate_fargate(
    requires_compatibilities: list[str] | None,
    network_mode: str | None,
    cpu: str | None,
    memory: str | None,
    containers: list[dict[str, Any]],
) -> None:
    if not requires_compatibilities or "FARGATE" not in requires_compatibilities:
        return
    if cpu is None:
        raise EcsClientException("Fargate requires that 'cpu' be defined at the task level.")
    if memory is None:
        raise EcsClientException("Fargate requires that 'memory' be defined at the task level.")
    units, mib = cpu_units(cpu), memory_mib(memory)
    if units is None or mib is None or mib not in FARGATE_SIZES.get(units, frozenset()):
        raise EcsClientException(
            f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. "
            "See the Amazon ECS documentation for the valid values."
        )
    if (network_mode or "bridge") != "awsvpc":
        raise EcsClientException("Fargate only supports network mode ‘awsvpc’.")
    for container in containers:
        limit = container.get("memory")
        if limit is not None and int(limit) > mib:
            raise EcsClientException(
                f"The 'memory' setting for container '{container.get('name')}' is greater than for the task."
            )


class EcsValidatesFargateTaskDefinitions(Extension):
    name = "ecs_validates_fargate_task_definitions"

    def patches(self) -> Iterable[Patch]:
        register = EC2ContainerServiceBackend.register_task_definition

        def register_task_definition(
            backend: EC2ContainerServiceBackend, family: str, container_definitions: list[dict[str, Any]], **kw: Any
        ) -> TaskDefinition:
            validate_fargate(
                kw.get("requires_compatibilities"),
                kw.get("network_mode"),
                kw.get("cpu"),
                kw.get("memory"),
                container_definitions,
            )
            return register(backend, family, container_definitions, **kw)

        yield EC2ContainerServiceBackend, "register_task_definition", register_task_definition


# --- services ----------------------------------------------------------------------------


def _target_group(backend: EC2ContainerServiceBackend, arn: str) -> Any:
    return elbv2_backends[backend.account_id][backend.region_name].target_groups.get(arn)


def validate_load_balancers(
    backend: EC2ContainerServiceBackend, task_definition: TaskDefinition, load_balancers: list[dict[str, Any]]
) -> None:
    containers = {c.get("name"): c for c in task_definition.container_definitions}
    for balancer in load_balancers or []:
        name = balancer.get("containerName")
        if name not in containers:
            raise InvalidParameterException(f"The container {name} does not exist in the task definition.")
        port = balancer.get("containerPort")
        mapped = {int(m["containerPort"]) for m in containers[name].get("portMappings") or [] if "containerPort" in m}
        if port is None or int(port) not in mapped:
            raise InvalidParameterException(f"The container {name} did not have a container port {port} defined.")
        arn = balancer.get("targetGroupArn")
        group = _target_group(backend, arn) if arn else None
        target_type = getattr(group, "target_type", None) or "instance"
        if group is not None and task_definition.network_mode == "awsvpc" and target_type == "instance":
            raise InvalidParameterException(
                f"The provided target group {arn} has target type instance, which is incompatible with the "
                "awsvpc network mode specified in the task definition."
            )


def _service_of(backend: EC2ContainerServiceBackend, properties: dict[str, Any]) -> Any:
    return backend._get_service(properties.get("cluster", "default"), properties["service"].split("/")[-1])


class EcsValidatesServiceLoadBalancers(Extension):
    name = "ecs_validates_service_load_balancers"

    def patches(self) -> Iterable[Patch]:
        create_service = EC2ContainerServiceBackend.create_service
        update_service = EC2ContainerServiceBackend.update_service

        def create(backend: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
            reference = kwargs.get("task_definition_str") or (args[3] if len(args) > 3 else None)
            balancers = kwargs.get("load_balancers") or (args[4] if len(args) > 4 else None)
            if reference and balancers:
                validate_load_balancers(backend, backend.describe_task_definition(reference), balancers)
            return create_service(backend, *args, **kwargs)

        def update(backend: EC2ContainerServiceBackend, properties: dict[str, Any]) -> Any:
            reference = properties.get("task_definition")
            service = _service_of(backend, properties)
            balancers = properties.get("load_balancers") or getattr(service, "load_balancers", None)
            if balancers and (reference or properties.get("load_balancers")):
                task_definition = backend.describe_task_definition(reference or service.task_definition)
                validate_load_balancers(backend, task_definition, balancers)
            return update_service(backend, properties)

        yield EC2ContainerServiceBackend, "create_service", create
        yield EC2ContainerServiceBackend, "update_service", update


class EcsRefusesInactiveTaskDefinitions(Extension):
    name = "ecs_refuses_inactive_task_definitions"

    def patches(self) -> Iterable[Patch]:
        create_service = EC2ContainerServiceBackend.create_service
        update_service = EC2ContainerServiceBackend.update_service

        def refuse_inactive(backend: EC2ContainerServiceBackend, reference: str | None) -> None:
            if reference and backend.describe_task_definition(reference).status == "INACTIVE":
                raise InvalidParameterException("TaskDefinition is inactive")

        def create(backend: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
            refuse_inactive(backend, kwargs.get("task_definition_str") or (args[3] if len(args) > 3 else None))
            return create_service(backend, *args, **kwargs)

        def update(backend: EC2ContainerServiceBackend, properties: dict[str, Any]) -> Any:
            reference = properties.get("task_definition")
            if reference and reference != _service_of(backend, properties).task_definition:
                refuse_inactive(backend, reference)
            return update_service(backend, properties)

        yield EC2ContainerServiceBackend, "create_service", create
        yield EC2ContainerServiceBackend, "update_service", update
