"""update_rollback_waits_for_ecs: a stack update's rollback ends UPDATE_ROLLBACK_COMPLETE only when
the ECS deployments restoring the services are steady; a restore that fails (a resource that cannot
be updated back, a restoring deployment that fails) ends UPDATE_ROLLBACK_FAILED; ContinueUpdateRollback
retries the failed resources (or skips those named in ResourcesToSkip) from there.

AWS: "Troubleshooting CloudFormation - Update rollback failed" and the ContinueUpdateRollback API
reference (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ContinueUpdateRollback.html:
"For a specified stack that's in the UPDATE_ROLLBACK_FAILED state, continues rolling it back to the
UPDATE_ROLLBACK_COMPLETE state ... A stack goes into the UPDATE_ROLLBACK_FAILED state when CloudFormation
can't roll back all changes after a failed stack update"; ResourcesToSkip); the AWS::ECS::Service
handler returns only once the service is stable, in a rollback as in an update.

Without it (stack_rollback alone) the rollback is UPDATE_ROLLBACK_COMPLETE at once, restore errors
are only events, and moto 5.2.5 has no ContinueUpdateRollback.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import CloudFormationBackend
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import EmptyResult
from moto.ecs.models import Service

from ._base import Extension, Patch
from .deployments import Deployment, RolloutState, ServiceDeployments, collect_started_deployments, deployments_of
from .stack_rollback import CIRCUIT_BREAKER_MESSAGE, StackUpdate, error_message, handler_message


def _services(update: StackUpdate) -> dict[str, ServiceDeployments]:
    return {
        name: deployments_of(resource)
        for name, resource in update.stack.resource_map._parsed_resources.items()
        if isinstance(resource, Service)
    }


def finish_rollback(
    update: StackUpdate, failures: dict[str, str], started: list[tuple[ServiceDeployments, Deployment]]
) -> None:
    if failures:
        rollback_failed(update, failures)
        return
    waiting: dict[str, tuple[str, ServiceDeployments]] = {}
    for model, deployment in started:
        waiting[deployment.id] = (update._logical_id_of(model) or update.stack.name, model)
    for name, model in _services(update).items():  # e.g. the circuit breaker's own rollback deployment
        if name not in update.modified:  # only the services this update changed are being restored
            continue
        if model.deployments and model.primary.rollout_state is RolloutState.IN_PROGRESS:
            waiting.setdefault(model.primary.id, (name, model))
    if not waiting:
        update.rollback_complete()
        return
    update.rollback_waiting = set(waiting)  # type: ignore[attr-defined]

    def outcome(model: ServiceDeployments, deployment: Deployment) -> None:
        pending: set[str] = getattr(update, "rollback_waiting", set())
        if deployment.id not in pending or update.stack.status != "UPDATE_ROLLBACK_IN_PROGRESS":
            return
        if deployment.rollout_state is RolloutState.FAILED:
            pending.clear()
            rollback_failed(update, {waiting[deployment.id][0]: CIRCUIT_BREAKER_MESSAGE})
            return
        pending.discard(deployment.id)
        if not pending:
            update.rollback_complete()

    for deployment_id, (_name, model) in waiting.items():
        model.on_outcome(deployment_id, outcome)


def rollback_failed(update: StackUpdate, failures: dict[str, str]) -> None:
    for name, message in failures.items():
        update._resource_event(name, "UPDATE_FAILED", update.old_template_dict, handler_message(message))
    update.stack.status = "UPDATE_ROLLBACK_FAILED"
    update._stack_event(
        "UPDATE_ROLLBACK_FAILED", f"The following resource(s) failed to update: [{', '.join(sorted(failures))}]. "
    )
    update.stack._failed_rollback = (update, dict(failures))


def continue_update_rollback(backend: CloudFormationBackend, stack_name: str, skip: list[str]) -> None:
    stack = backend.get_stack(stack_name)
    pending = getattr(stack, "_failed_rollback", None)
    if stack.status != "UPDATE_ROLLBACK_FAILED" or pending is None:
        raise ValidationError(message="ContinueUpdateRollback cannot be called from current stack status")
    update, failures = pending
    stack._failed_rollback = None
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    update._stack_event("UPDATE_ROLLBACK_IN_PROGRESS", "User Initiated")
    services = _services(update)
    retry_failures: dict[str, str] = {}
    with collect_started_deployments() as started:
        for name in failures:
            if name in skip:
                update._resource_event(
                    name, "UPDATE_COMPLETE", update.old_template_dict, "Resource skipped during UpdateRollback"
                )
                continue
            model = services.get(name)
            if model is None:  # a resource that could not be updated back: try again
                try:
                    changed = parsing.parse_and_update_resource(
                        name,
                        update.old_json[name],
                        stack.resource_map,
                        account_id=stack.account_id,
                        region_name=stack.region_name,
                    )
                    if changed is not None:
                        stack.resource_map._parsed_resources[name] = changed
                    update._resource_event(name, "UPDATE_COMPLETE", update.old_template_dict)
                except Exception as error:  # noqa: BLE001 - still failing: UPDATE_ROLLBACK_FAILED again
                    retry_failures[name] = error_message(error)
                continue
            service = model.service
            try:  # the service back on its restored task definition, as a new deployment
                service._backend.update_service(
                    {
                        "cluster": service.cluster_name,
                        "service": service.name,
                        "task_definition": model.last_completed.task_definition
                        if model.last_completed is not None
                        else service.task_definition,
                        "force_new_deployment": True,
                    }
                )
            except Exception as error:  # noqa: BLE001 - reported as the resource's failure, as on AWS
                retry_failures[name] = error_message(error)
    finish_rollback(update, retry_failures, started)


class UpdateRollbackWaitsForEcs(Extension):
    name = "update_rollback_waits_for_ecs"

    def patches(self) -> Iterable[Patch]:
        def respond(response: CloudFormationResponse) -> Any:
            skip = response._get_param("ResourcesToSkip") or []
            continue_update_rollback(response.cloudformation_backend, response._get_param("StackName"), list(skip))
            return EmptyResult()

        yield StackUpdate, "finish_rollback", finish_rollback
        yield CloudFormationResponse, "continue_update_rollback", respond
