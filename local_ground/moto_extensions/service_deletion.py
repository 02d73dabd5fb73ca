"""stack_deletion_stops_ecs_services: deleting a stack deletes its ECS services, and the service's
delete ends only once ECS has stopped its tasks (each deregistered and drained, its network interface
deleted), before the subnets and the VPC those interfaces were in are deleted.

AWS: the AWS::ECS::Service delete handler scales the service to 0, deletes it and waits until it is
INACTIVE, i.e. its tasks have stopped ("DeleteService ... all tasks must be stopped"; the ECS API
reference, DeleteService: "When you delete a service, if there are still running tasks that require
cleanup, the service status moves from ACTIVE to DRAINING ... and the service is no longer visible
... after all tasks have transitioned to either STOPPING or STOPPED status"); Fargate deletes a task's
network interface once the task has stopped. moto 5.2.5 has no delete for a template's service: the
stack deletion leaves it ACTIVE with its tasks running (their interfaces in a deleted subnet).

Only while a task runner runs tasks (``deployments.set_task_runner``) is there anything to wait for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.cloudformation import parsing
from moto.ecs.models import Service, ecs_backends

from . import deployments
from ._base import Extension, Patch
from .deployments import deployments_of

STOP_TIMEOUT = 120.0  # real seconds: the local tasks' drain and stop timeouts are scaled far below this


class ServiceTasksDidNotStop(Exception):
    """The service's delete failed: its tasks did not stop in time (the stack becomes DELETE_FAILED)."""


class StackDeletionStopsEcsServices(Extension):
    name = "stack_deletion_stops_ecs_services"

    def patches(self) -> Iterable[Patch]:
        delete_resource = parsing.ResourceMap._delete_resource

        def delete(resource_map: parsing.ResourceMap, resource: Any, resource_json: dict[str, Any]) -> None:
            if not isinstance(resource, Service):
                return delete_resource(resource_map, resource, resource_json)
            if resource.status == "ACTIVE":
                ecs_backends[resource_map._account_id][resource_map._region_name].delete_service(
                    resource.cluster_name, resource.name, force=True
                )
            stopped = getattr(deployments._runner, "service_deleted", None)
            if stopped is not None and not stopped(deployments_of(resource), STOP_TIMEOUT):
                raise ServiceTasksDidNotStop(
                    f"Service {resource.name} did not stop its tasks within {STOP_TIMEOUT:.0f} seconds"
                )
            return None

        yield parsing.ResourceMap, "_delete_resource", delete
