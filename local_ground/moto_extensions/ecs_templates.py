"""ECS resources from templates keep what the template says, as describe_* shows it on AWS.

- ecs_task_definition_keeps_template_configuration: ``AWS::ECS::TaskDefinition`` keeps Cpu,
  Memory, NetworkMode, RequiresCompatibilities, roles, tags and camelCase container
  definitions; a changed definition registers a new revision and deregisters the old one
  (CloudFormation replaces task definitions). moto 5.2.5 keeps only family, containers and
  memory (so a Fargate definition comes back as networkMode ``bridge``), and on update
  registers the new revision with PascalCase container definitions.
- ecs_service_keeps_template_configuration: ``AWS::ECS::Service`` keeps LoadBalancers,
  DeploymentConfiguration (circuit breaker, alarms, percentages),
  HealthCheckGracePeriodSeconds, NetworkConfiguration and CapacityProviderStrategy/LaunchType.
  moto 5.2.5 passes only cluster, name, desired count and task definition *family*.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.ecs.models import EC2ContainerServiceBackend, Service, TaskDefinition, ecs_backends

from ._base import Extension, Patch, as_bool, as_int, camel_keys, coerce_ints

# Keys whose values are user-chosen maps and must keep their spelling.
_USER_MAPS = frozenset({"Options", "DockerLabels", "SecretOptions"})
_CONTAINER_INTS = frozenset(
    {
        "containerPort",
        "hostPort",
        "cpu",
        "memory",
        "memoryReservation",
        "interval",
        "timeout",
        "retries",
        "startPeriod",
        "startTimeout",
        "stopTimeout",
        "softLimit",
        "hardLimit",
    }
)


def _ecs(account_id: str, region_name: str) -> EC2ContainerServiceBackend:
    return ecs_backends[account_id][region_name]


# --- task definitions -------------------------------------------------------------------


def task_definition_kwargs(props: dict[str, Any]) -> dict[str, Any]:
    """Template properties -> ``register_task_definition`` arguments."""
    containers = coerce_ints(camel_keys(props.get("ContainerDefinitions", []), _USER_MAPS), _CONTAINER_INTS)
    kwargs: dict[str, Any] = {
        "family": props["Family"],
        "container_definitions": containers,
        "volumes": camel_keys(props.get("Volumes", [])),
        "network_mode": props.get("NetworkMode"),
        "requires_compatibilities": props.get("RequiresCompatibilities"),
        "cpu": None if props.get("Cpu") is None else str(props["Cpu"]),
        "memory": None if props.get("Memory") is None else str(props["Memory"]),
        "task_role_arn": props.get("TaskRoleArn"),
        "execution_role_arn": props.get("ExecutionRoleArn"),
        "tags": camel_keys(props.get("Tags")) if props.get("Tags") else None,
        "runtime_platform": camel_keys(props.get("RuntimePlatform")),
        "ephemeral_storage": camel_keys(props.get("EphemeralStorage")),
    }
    return kwargs


def _register(props: dict[str, Any], resource_name: str, account_id: str, region_name: str) -> TaskDefinition:
    props = {"Family": resource_name, **props}  # AWS names an unnamed family after the stack
    kwargs = task_definition_kwargs(props)
    task_definition = _ecs(account_id, region_name).register_task_definition(**kwargs)
    task_definition._template_kwargs = kwargs  # what it was made from, to detect changes
    return task_definition


def _create_task_definition(
    cls: type, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
) -> TaskDefinition:
    return _register(cloudformation_json["Properties"], resource_name, account_id, region_name)


def _update_task_definition(
    cls: type,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> TaskDefinition:
    props = {"Family": new_resource_name, **cloudformation_json["Properties"]}
    if getattr(original_resource, "_template_kwargs", None) == task_definition_kwargs(props):
        return original_resource
    new = _register(props, new_resource_name, account_id, region_name)
    # CloudFormation replaces a task definition: new revision, then the old one is
    # deregistered in the cleanup phase (stack_rollback re-activates it on rollback).
    _ecs(account_id, region_name).deregister_task_definition(original_resource.arn)
    return new


class EcsTaskDefinitionKeepsTemplateConfiguration(Extension):
    name = "ecs_task_definition_keeps_template_configuration"

    def patches(self) -> Iterable[Patch]:
        yield TaskDefinition, "create_from_cloudformation_json", classmethod(_create_task_definition)
        yield TaskDefinition, "update_from_cloudformation_json", classmethod(_update_task_definition)


# --- services ---------------------------------------------------------------------------

DEFAULT_DEPLOYMENT_CONFIGURATION: dict[str, Any] = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}


def deployment_configuration(props: dict[str, Any]) -> dict[str, Any]:
    """DeploymentConfiguration as describe_services shows it (AWS fills in its defaults)."""
    given = props.get("DeploymentConfiguration") or {}
    config: dict[str, Any] = {**DEFAULT_DEPLOYMENT_CONFIGURATION}
    breaker = given.get("DeploymentCircuitBreaker")
    if breaker:
        config["deploymentCircuitBreaker"] = {
            "enable": as_bool(breaker.get("Enable")),
            "rollback": as_bool(breaker.get("Rollback")),
        }
    for key in ("MaximumPercent", "MinimumHealthyPercent"):
        if key in given:
            config[key[:1].lower() + key[1:]] = int(given[key])
    # Traffic-shifting strategies (BLUE_GREEN, CANARY, LINEAR) and their hooks, as the API spells them.
    for key in ("Strategy", "BakeTimeInMinutes", "CanaryConfiguration", "LinearConfiguration", "LifecycleHooks"):
        if key in given:
            config[key[:1].lower() + key[1:]] = coerce_ints(
                camel_keys(given[key]),
                frozenset(
                    {"bakeTimeInMinutes", "canaryBakeTimeInMinutes", "stepBakeTimeInMinutes", "timeoutInMinutes"}
                ),
            )
    alarms = given.get("Alarms")
    if alarms:
        config["alarms"] = {
            "alarmNames": list(alarms.get("AlarmNames", [])),
            "enable": as_bool(alarms.get("Enable")),
            "rollback": as_bool(alarms.get("Rollback")),
        }
    return config


def service_settings(props: dict[str, Any]) -> dict[str, Any]:
    """The settings moto drops, as attributes named after describe_services' fields."""
    strategy = camel_keys(props.get("CapacityProviderStrategy")) or None
    if strategy:
        strategy = coerce_ints(strategy, frozenset({"weight", "base"}))
    settings: dict[str, Any] = {
        "load_balancers": coerce_ints(camel_keys(props.get("LoadBalancers", [])), frozenset({"containerPort"})),
        "deployment_configuration": deployment_configuration(props),
        "health_check_grace_period_seconds": as_int(props.get("HealthCheckGracePeriodSeconds")),
        "capacity_provider_strategy": strategy,
        # With a capacity provider strategy AWS reports no launch type.
        "launch_type": None if strategy else props.get("LaunchType", "EC2"),
        "enable_execute_command": as_bool(props.get("EnableExecuteCommand", False)),
    }
    if props.get("NetworkConfiguration"):
        settings["network_configuration"] = camel_keys(props["NetworkConfiguration"])
    if props.get("PlatformVersion"):
        settings["platform_version"] = props["PlatformVersion"]
    return settings


def _cluster_name(props: dict[str, Any]) -> str:
    cluster = props.get("Cluster", "default")
    return cluster if isinstance(cluster, str) else cluster.name


def _task_definition_ref(props: dict[str, Any]) -> str:
    task_definition = props["TaskDefinition"]
    return task_definition if isinstance(task_definition, str) else task_definition.arn


def _create_service(
    cls: type, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
) -> Service:
    props = cloudformation_json["Properties"]
    settings = service_settings(props)
    service = _ecs(account_id, region_name).create_service(
        _cluster_name(props),
        props.get("ServiceName", resource_name),
        as_int(props.get("DesiredCount", 1)),  # AWS creates one task when DesiredCount is unset
        task_definition_str=_task_definition_ref(props),  # the exact revision, not the family
        load_balancers=settings["load_balancers"],
        launch_type=settings["launch_type"] or "EC2",
        network_configuration=settings.get("network_configuration"),
        platform_version=settings.get("platform_version"),
        propagate_tags=props.get("PropagateTags", "NONE"),
        tags=camel_keys(props.get("Tags")) if props.get("Tags") else None,
        deployment_controller=camel_keys(props.get("DeploymentController")),
    )
    for attribute, value in settings.items():
        setattr(service, attribute, value)
    for deployment in service.deployments:  # moto's first deployment copied the defaults
        deployment["launchType"] = service.launch_type
        if service.capacity_provider_strategy:
            deployment["capacityProviderStrategy"] = service.capacity_provider_strategy
    return service


def _update_service(
    cls: type,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> Service:
    props = cloudformation_json["Properties"]
    backend = _ecs(account_id, region_name)
    cluster = _cluster_name(props)
    name = props.get("ServiceName", original_resource.name)
    if cluster.split("/")[-1] != original_resource.cluster_name or name != original_resource.name:
        # Replacement on AWS: a new service, then the old one is removed.
        backend.delete_service(original_resource.cluster_name, original_resource.name, force=True)
        return _create_service(cls, new_resource_name, cloudformation_json, account_id, region_name)
    settings = service_settings(props)
    update: dict[str, Any] = {
        "cluster": cluster,
        "service": original_resource.name,
        "task_definition": _task_definition_ref(props),
    }
    if "DesiredCount" in props:  # left out of a template, CloudFormation leaves it alone
        update["desired_count"] = as_int(props["DesiredCount"])
    update.update({k: v for k, v in settings.items() if k != "launch_type"})
    service = backend.update_service(update)
    service.launch_type = settings["launch_type"]
    return service


class EcsServiceKeepsTemplateConfiguration(Extension):
    name = "ecs_service_keeps_template_configuration"

    def patches(self) -> Iterable[Patch]:
        yield Service, "create_from_cloudformation_json", classmethod(_create_service)
        yield Service, "update_from_cloudformation_json", classmethod(_update_service)
