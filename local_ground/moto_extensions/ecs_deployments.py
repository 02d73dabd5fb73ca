"""ecs_deployments: new task definitions start new ECS deployments, through the API and
through stack updates.

moto 5.2.5: ``update_service`` with a new task definition stores the string it was given
(not the ARN) and keeps the single old deployment; a stack update that changes a task
definition re-registers it but never updates the service that references it (moto only
updates resources whose own template text or referenced *parameters* changed, while
CloudFormation updates every resource whose resolved properties changed).

The deployment state lives in ``deployments.ServiceDeployments``; this module only routes
moto's service calls into it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.cloudformation.parsing import ResourceMap, get_references_from_template
from moto.ecs.models import EC2ContainerServiceBackend, Service

from ._base import Extension, Patch
from .deployments import deployments_of, set_task_runner


def _references(resource_json: dict[str, Any]) -> set[str]:
    refs = set(get_references_from_template(resource_json))
    refs.update(_get_atts(resource_json))
    return refs


def _get_atts(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::GetAtt" and isinstance(value, list):
                yield value[0]
            else:
                yield from _get_atts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _get_atts(item)


def services_following_task_definitions(template: dict[str, Any], modified: list[str]) -> list[str]:
    """Logical ids of services that reference a modified task definition, so CloudFormation
    updates them (the new revision's ARN is a new property value)."""
    resources = template.get("Resources", {})
    changed_task_definitions = {
        name for name in modified if resources.get(name, {}).get("Type") == "AWS::ECS::TaskDefinition"
    }
    return [
        name
        for name, body in resources.items()
        if body.get("Type") == "AWS::ECS::Service" and _references(body) & changed_task_definitions
    ]


class EcsDeployments(Extension):
    name = "ecs_deployments"

    def patches(self) -> Iterable[Patch]:
        create_service = EC2ContainerServiceBackend.create_service
        update_service = EC2ContainerServiceBackend.update_service
        build_resource_diff = ResourceMap.build_resource_diff

        def create(backend: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Service:
            service = create_service(backend, *args, **kwargs)
            model = deployments_of(service)
            model.deployments.clear()  # replace moto's static first deployment with a live one
            if service.task_definition:
                model.start_deployment(service.task_definition)
            return service

        def update(backend: EC2ContainerServiceBackend, properties: dict[str, Any]) -> Service:
            properties = dict(properties)
            force = bool(properties.pop("force_new_deployment", False))
            desired = properties.get("desired_count")
            service = backend._get_service(properties.get("cluster", "default"), properties["service"].split("/")[-1])
            before = service.task_definition
            service = update_service(backend, properties)
            if service.task_definition:  # moto stores what it was given: family, family:rev or ARN
                service.task_definition = backend.describe_task_definition(service.task_definition).arn
            model = deployments_of(service)
            if service.task_definition != before or force:
                model.start_deployment(service.task_definition)
            elif desired is not None and model.deployments:
                model.scale(int(desired))
            else:
                model._render()  # undo moto's direct edits of the counts
            return service

        def diff(resource_map: ResourceMap, template: dict[str, Any], parameters: Any = None) -> dict[str, Any]:
            actions = build_resource_diff(resource_map, template, parameters)
            followers = services_following_task_definitions(template, actions["Modify"])
            # Services last, so they resolve the task definition's new ARN.
            actions["Modify"] = [n for n in actions["Modify"] if n not in followers] + [
                n for n in followers if n in resource_map._resource_json_map
            ]
            return actions

        yield EC2ContainerServiceBackend, "create_service", create
        yield EC2ContainerServiceBackend, "update_service", update
        yield ResourceMap, "build_resource_diff", diff

    def reset(self) -> None:
        set_task_runner(None)
