"""Tasks as ECS's API shows them: records in moto's ECS backend that list_tasks / describe_tasks return.

moto 5.2.5's Task moves its lastStatus on every describe (a managed state meant for mocks) and
fills in one container; here the status is whatever the running task says, with one container
record per container definition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ec2.utils import random_private_ip
from moto.ecs.models import Container, EC2ContainerServiceBackend, Service, Task, ecs_backends
from moto.moto_api._internal import mock_random


class RecordedTask(Task):
    """A moto Task whose lastStatus is set, never advanced by describes."""

    @property  # type: ignore[override]
    def status(self) -> str | None:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        self._status = value


def _now() -> datetime:
    return datetime.now(UTC)


def record_task(
    service: Service, task_definition_arn: str, deployment_id: str, account_id: str, region: str
) -> RecordedTask:
    """A PROVISIONING task of `service` in moto's ECS, started by the deployment (as ECS sets startedBy)."""
    backend: EC2ContainerServiceBackend = ecs_backends[account_id][region]
    cluster = backend._get_cluster(service.cluster_name)
    task_definition = backend.describe_task_definition(task_definition_arn)
    network = getattr(service, "network_configuration", None) or None
    strategy = getattr(service, "capacity_provider_strategy", None) or []
    # moto 5.2.5's awsvpc branch fails (its ENI has no private_dns_name): attach the ENI here instead.
    shape = SimpleNamespace(
        arn=task_definition.arn, network_mode=None, container_definitions=task_definition.container_definitions
    )
    task = RecordedTask(
        cluster,
        shape,
        None,
        None,
        backend,  # type: ignore[arg-type]
        group=f"service:{service.name}",
        launch_type=getattr(service, "launch_type", None) or ("" if strategy else "FARGATE"),
        started_by=deployment_id,
        platform_version=getattr(service, "platform_version", None),
        capacity_provider_name=strategy[0].get("capacityProvider") if strategy else None,
    )
    if task_definition.network_mode == "awsvpc" and network:
        task.network_configuration = network
        _attach_network_interface(task, network, account_id, region)
    task.status = "PROVISIONING"
    task.created_at = _now()
    task.health_status = "UNKNOWN"  # until a container health check decides (container_health.py)
    task.containers = []
    for definition in task_definition.container_definitions:
        container = Container(task_definition)
        container.task_arn = task.task_arn  # moto puts the task definition's ARN here
        container.name, container.image = definition.get("name"), definition.get("image")
        container.last_status = "PENDING"
        container.exitCode = None
        container.cpu, container.memory = definition.get("cpu", 0), definition.get("memory")
        container.health_status = "UNKNOWN"  # moto says HEALTHY, though no check has run
        task.containers.append(container)
    backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
    return task


def _attach_network_interface(task: Task, network: dict[str, Any], account_id: str, region: str) -> None:
    """An ENI in the service's first subnet, as Fargate gives each awsvpc task; its IP is the target id."""
    config = network.get("awsvpcConfiguration") or {}
    subnets = config.get("subnets") or []
    if not subnets:
        return
    eni = ec2_backends[account_id][region].create_network_interface(
        subnet=subnets[0],
        private_ip_address=random_private_ip(),
        group_ids=config.get("securityGroups") or [],
        description=f"arn:aws:ecs:{region}:{account_id}:attachment/{task.id}",
    )
    eni.status = "in-use"
    task.attachments.append(
        {
            "id": str(mock_random.uuid4()),
            "type": "ElasticNetworkInterface",
            "status": "ATTACHED",
            "details": [
                {"name": "subnetId", "value": subnets[0]},
                {"name": "networkInterfaceId", "value": eni.id},
                {"name": "macAddress", "value": eni.mac_address},
                {"name": "privateIPv4Address", "value": eni.private_ip_address},
            ],
        }
    )


def release_network_interface(task: Task, account_id: str, region: str) -> None:
    """Fargate deletes a task's ENI once the task has stopped; its subnet and VPC can then be deleted."""
    backend = ec2_backends[account_id][region]
    for attachment in task.attachments:
        for detail in attachment.get("details", []):
            if detail.get("name") == "networkInterfaceId" and detail["value"] in backend.enis:
                backend.delete_network_interface(detail["value"])
        if attachment.get("type") == "ElasticNetworkInterface":
            attachment["status"] = "DELETED"


def private_ip(task: Task) -> str | None:
    """The task ENI's address (awsvpc), which is the target id an ip target group registers."""
    for attachment in task.attachments:
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                return str(detail["value"])
    return None


def set_status(task: RecordedTask, status: str, **fields: Any) -> None:
    """Move a task on, stamping the times ECS stamps for that status."""
    task.status = status
    stamp = {
        "PENDING": "pull_started_at",
        "RUNNING": "started_at",
        "DEACTIVATING": "stopping_at",
        "STOPPED": "stopped_at",
    }.get(status)
    if stamp:
        setattr(task, stamp, _now())
    if status == "PENDING":
        task.connectivity = "CONNECTED"
    for container in task.containers:
        if status in ("RUNNING", "STOPPED"):
            container.last_status = status
    for name, value in fields.items():
        setattr(task, name, value)


def container_stopped(task: RecordedTask, name: str, exit_code: int | None, reason: str | None) -> None:
    for container in task.containers:
        if container.name == name:
            container.last_status = "STOPPED"
            container.exitCode = exit_code
            if reason:
                container.reason = reason
