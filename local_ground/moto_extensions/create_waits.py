"""stack_creation_waits_for_ecs: a stack with an ECS service is CREATE_COMPLETE only once the
service's first deployment is steady; if that deployment fails, the service is CREATE_FAILED and
the stack rolls back, deleting what it created: ROLLBACK_COMPLETE, or ROLLBACK_FAILED when a resource
cannot be deleted (e.g. a load balancer with deletion protection).

AWS: the AWS::ECS::Service resource handler returns only when the service is stable ("Amazon ECS
service: CloudFormation waits for the service to stabilize"), and "If stack creation fails,
CloudFormation rolls back ... deletes all resources it created" / ROLLBACK_FAILED "CloudFormation
couldn't delete one or more resources" (CloudFormation User Guide, "Stack status codes",
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes).

Only while a task runner moves deployments (``deployments.set_task_runner``): without one nothing
ever makes a service stable here, and creation completes at once as in moto 5.2.5.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from moto.cloudformation.models import CloudFormationBackend, Event, Stack
from moto.ecs.models import Service

from . import deployments
from ._base import Extension, Patch
from .change_set_outputs import refresh_stack_record
from .deployments import Deployment, RolloutState, ServiceDeployments, deployments_of
from .stack_rollback import CIRCUIT_BREAKER_MESSAGE, error_message, handler_message


def _event(stack: Stack, logical_id: str, status: str, reason: str | None = None) -> None:
    resource = stack.resource_map._parsed_resources.get(logical_id)
    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=str(getattr(resource, "physical_resource_id", "") or ""),
            resource_type=stack.template_dict.get("Resources", {}).get(logical_id, {}).get("Type", ""),
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


def _roll_back(stack: Stack, failed: str, message: str) -> None:
    _event(stack, failed, "CREATE_FAILED", handler_message(message))
    stack.status = "ROLLBACK_IN_PROGRESS"
    stack._add_stack_event(
        "ROLLBACK_IN_PROGRESS",
        resource_status_reason=f"The following resource(s) failed to create: [{failed}]. Rollback requested by user.",
    )
    for resource in list(stack.resource_map._parsed_resources.values()):
        if isinstance(resource, Service) and resource.status == "ACTIVE":
            # moto 5.2.5 has no delete for a template's ECS service: delete it as CloudFormation does
            resource._backend.delete_service(resource.cluster_name, resource.name, force=True)
    try:
        stack.resource_map.delete()
    except Exception as error:  # noqa: BLE001 - a resource that cannot be deleted: ROLLBACK_FAILED, as on AWS
        stack.status = "ROLLBACK_FAILED"
        stack._add_stack_event("ROLLBACK_FAILED", resource_status_reason=error_message(error))
        return
    stack.status = "ROLLBACK_COMPLETE"
    stack._add_stack_event("ROLLBACK_COMPLETE")


def wait_for_services(stack: Stack, complete: Callable[[], None]) -> bool:
    """Keep the stack CREATE_IN_PROGRESS until its services' first deployments are steady, then
    call `complete`; roll the creation back if one fails. False when there is nothing to wait for."""
    services = {
        name: deployments_of(resource)
        for name, resource in stack.resource_map._parsed_resources.items()
        if isinstance(resource, Service)
    }
    waiting = {
        model.primary.id: name
        for name, model in services.items()
        if model.deployments and model.primary.rollout_state is RolloutState.IN_PROGRESS
    }
    if deployments._runner is None or not waiting:
        return False
    stack.status = "CREATE_IN_PROGRESS"

    def outcome(model: ServiceDeployments, deployment: Deployment) -> None:
        if deployment.id not in waiting or stack.status != "CREATE_IN_PROGRESS":
            return
        name = waiting.pop(deployment.id)
        if deployment.rollout_state is RolloutState.FAILED:
            waiting.clear()
            _roll_back(stack, name, CIRCUIT_BREAKER_MESSAGE)
            return
        if not waiting:
            complete()

    for deployment_id, name in list(waiting.items()):
        services[name].on_outcome(deployment_id, outcome)
    return True


class StackCreationWaitsForEcs(Extension):
    name = "stack_creation_waits_for_ecs"

    def patches(self) -> Iterable[Patch]:
        mark_complete = Stack.mark_creation_complete
        execute = CloudFormationBackend.execute_change_set

        def mark_creation_complete(stack: Stack) -> None:  # CreateStack
            if not wait_for_services(stack, lambda: mark_complete(stack)):
                mark_complete(stack)

        def execute_change_set(
            backend: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
        ) -> None:
            execute(backend, change_set_name, stack_name)
            change_set = backend.describe_change_set(change_set_name)
            stack = backend.stacks.get(change_set.stack_id)
            if change_set.change_set_type != "CREATE" or stack is None or stack.status != "CREATE_COMPLETE":
                return
            done = [
                e
                for e in stack.events
                if e.resource_status == "CREATE_COMPLETE" and e.logical_resource_id == stack.name
            ]

            def complete() -> None:
                refresh_stack_record(backend, stack, change_set.template)  # Outputs, as after any create
                stack.status = "CREATE_COMPLETE"
                stack._add_stack_event("CREATE_COMPLETE")

            if wait_for_services(stack, complete) and done:
                stack.events.remove(done[-1])  # not complete yet

        yield Stack, "mark_creation_complete", mark_creation_complete
        yield CloudFormationBackend, "execute_change_set", execute_change_set
