"""failed_stack_update_rolls_back: a failed stack update rolls back to the previous template
and parameters, with events saying why, as CloudFormation does.

moto 5.2.5 executes an UPDATE change set synchronously and has no failure path (its code says
"TODO: handle execution errors and implement rollback"): an exception from a resource
escapes as an HTTP 500 and the stack is left half-updated.

What this extension does with an UPDATE change set (``StackUpdate``):
1. UPDATE_IN_PROGRESS; the resources are updated (moto's ResourceMap.update).
2. If a resource update raises: UPDATE_FAILED on that resource with
   ``Resource handler returned message: "..."``, then UPDATE_ROLLBACK_IN_PROGRESS ->
   previous template, parameters and resources restored -> UPDATE_ROLLBACK_COMPLETE.
3. Waiting for ECS, the hook the real-task work builds on: on AWS the ECS service handler
   does not finish until the service is stable, and a deployment the circuit breaker marks
   FAILED fails the update. So every ECS deployment the update started (collected through
   ``deployments.collect_started_deployments``) keeps the stack UPDATE_IN_PROGRESS until its
   outcome is known (``ServiceDeployments.on_outcome``): all COMPLETED -> UPDATE_COMPLETE;
   one FAILED -> step 2's rollback. Whoever moves deployments (a task runner, or a test via
   ``complete_deployment``/``fail_deployment``) therefore also finishes the stack update.

Not covered: update_stack (the pipeline uses change sets), stack *creation* waiting for ECS,
resources removed by the failed update are not re-created on rollback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.models import ChangeSet, CloudFormationBackend, Event, Stack
from moto.ecs.models import TaskDefinition, ecs_backends
from moto.moto_api._internal import mock_random

from ._base import Extension, Patch
from .change_set_outputs import refresh_stack_record
from .deployments import Deployment, RolloutState, ServiceDeployments, collect_started_deployments

CIRCUIT_BREAKER_MESSAGE = "Error occurred during operation 'ECS Deployment Circuit Breaker was triggered'."
# This ground's wording for a deployment failed by its alarms (the ECS handler's text is not documented).
ALARMS_MESSAGE = "Error occurred during operation 'ECS Deployment Alarms were triggered'."


def failure_message(failed_by: str) -> str:
    """Why the ECS service resource failed, by what failed its deployment."""
    if failed_by == "alarms":
        return ALARMS_MESSAGE
    if failed_by in ("", "circuit breaker"):
        return CIRCUIT_BREAKER_MESSAGE
    # A traffic-shifting deployment rolled back by a lifecycle hook, its timeout or StopServiceDeployment.
    return f"Error occurred during operation 'ECS Deployment was rolled back ({failed_by})'."


_failure = threading.local()  # (logical id, exception) of the last resource update that raised


def handler_message(message: str) -> str:
    """A resource failure reason as CloudFormation words it."""
    return (
        f'Resource handler returned message: "{message}" '
        f"(RequestToken: {mock_random.uuid4()}, HandlerErrorCode: GeneralServiceException)"
    )


def error_message(error: BaseException) -> str:
    """moto's errors carry the API message separately from their code."""
    message = getattr(error, "message", None)
    return message if isinstance(message, str) and message else str(error)


def _physical_id(resource: Any) -> Any:
    return getattr(resource, "physical_resource_id", resource)


class StackUpdate:
    """One execution of an UPDATE change set, from start to UPDATE_COMPLETE or rollback."""

    def __init__(self, backend: CloudFormationBackend, stack: Stack, change_set: ChangeSet) -> None:
        self.backend, self.stack, self.change_set = backend, stack, change_set
        resource_map = stack.resource_map
        self.old_template = stack.template
        self.old_template_dict = stack.template_dict
        self.old_parameters = dict(resource_map.input_parameters)
        self.old_json = dict(resource_map._resource_json_map)
        self.old_resources = dict(resource_map._parsed_resources)
        self.modified: list[str] = []
        self.added: list[str] = []
        self.waiting: set[str] = set()
        self.finished = False

    # --- running ------------------------------------------------------------------------

    def run(self) -> None:
        self.stack.status = "UPDATE_IN_PROGRESS"
        self._stack_event("UPDATE_IN_PROGRESS", "User Initiated")
        self.change_set.execution_status = "EXECUTE_IN_PROGRESS"
        resource_map = self.stack.resource_map
        diff = resource_map.build_resource_diff(self.change_set.template_dict, self.change_set.parameters)
        self.modified, self.added = list(diff["Modify"]), list(diff["Add"])
        listed = [c for c in self.change_set.changes if getattr(c, "replacement", None) is not None]
        if listed:  # the change set lists resolved changes (change_sets_list_resolved_changes): report those
            self.modified = [c.logical_resource_id for c in listed if c.action == "Modify"]
            self.added = [c.logical_resource_id for c in self.change_set.changes if c.action == "Add"]
        for name in self.added:
            self._resource_event(name, "CREATE_IN_PROGRESS", self.change_set.template_dict)
        for name in self.modified:
            self._resource_event(name, "UPDATE_IN_PROGRESS", self.change_set.template_dict)
        _failure.last = None
        with collect_started_deployments() as started:
            try:
                self.change_set.apply()
            except Exception as error:  # noqa: BLE001 - any resource failure rolls back, as on AWS
                name, cause = _failure.last or (None, error)
                self.fail(name, error_message(cause))
                return
        self.stack.template = self.change_set.template
        self.stack._parse_template()
        self.stack.parameters = dict(resource_map.input_parameters)
        waiting_on = {self._logical_id_of(model): deployment for model, deployment in started}
        for name in self.added:
            self._resource_event(name, "CREATE_COMPLETE", self.change_set.template_dict)
        for name in self.modified:
            if name not in waiting_on:
                self._resource_event(name, "UPDATE_COMPLETE", self.change_set.template_dict)
        if not started:
            self.complete()
            return
        # The ECS service resource stays UPDATE_IN_PROGRESS until its deployment's outcome.
        for model, deployment in started:
            self.waiting.add(deployment.id)
            model.on_outcome(deployment.id, self._deployment_outcome)

    def _deployment_outcome(self, model: ServiceDeployments, deployment: Deployment) -> None:
        if self.finished:
            return
        name = self._logical_id_of(model)
        if deployment.rollout_state is RolloutState.FAILED:
            self.fail(name, failure_message(deployment.failed_by))
            return
        self.waiting.discard(deployment.id)
        self._resource_event(name, "UPDATE_COMPLETE", self.change_set.template_dict)
        if not self.waiting:
            self.complete()

    def complete(self) -> None:
        self.finished = True
        refresh_stack_record(self.backend, self.stack, self.change_set.template)
        self.stack.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
        self._stack_event("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        self.stack.status = "UPDATE_COMPLETE"
        self._stack_event("UPDATE_COMPLETE")
        self.change_set.execution_status = "EXECUTE_COMPLETE"

    # --- failing ------------------------------------------------------------------------

    def fail(self, logical_id: str | None, message: str) -> None:
        """A resource (or, with no logical id, the stack itself: `message` is then the reason)
        failed: roll back."""
        self.finished = True
        failed = logical_id or self.stack.name
        if logical_id:
            self._resource_event(logical_id, "UPDATE_FAILED", self.change_set.template_dict, handler_message(message))
        self.stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
        reason = f"The following resource(s) failed to update: [{failed}]. " if logical_id else message
        self._stack_event("UPDATE_ROLLBACK_IN_PROGRESS", reason)
        self.change_set.execution_status = "EXECUTE_FAILED"
        with collect_started_deployments() as started:
            failures = self.restore()
        self.finish_rollback(failures, started)

    def finish_rollback(self, failures: dict[str, str], started: list[tuple[ServiceDeployments, Deployment]]) -> None:
        """The restore is done: the rollback ends. (update_rollback_waits_for_ecs makes it wait for
        the restoring ECS deployments and fail when the restore fails.)"""
        self.rollback_complete()

    def rollback_complete(self) -> None:
        self.stack.status = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
        self._stack_event("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        self.stack.status = "UPDATE_ROLLBACK_COMPLETE"
        self._stack_event("UPDATE_ROLLBACK_COMPLETE")

    def restore(self) -> dict[str, str]:
        """Previous template, parameters and resources back in place; the resources that could not
        be restored, with why."""
        failures: dict[str, str] = {}
        resource_map = self.stack.resource_map
        account, region = self.stack.account_id, self.stack.region_name
        new_json = dict(resource_map._resource_json_map)
        for name in self.added:  # created by the failed update: delete
            resource = resource_map._parsed_resources.pop(name, None)
            if resource is not None and name not in self.old_resources:
                try:
                    resource_map._delete_resource(resource, new_json[name])
                except Exception:  # noqa: BLE001 - best effort, like DELETE_FAILED being ignored in cleanup  # nosec B110
                    pass
        resource_map._template = self.old_template_dict
        resource_map.input_parameters = self.old_parameters
        resource_map.load_mapping()
        resource_map.load_parameters()
        resource_map.load_conditions()
        resource_map._resource_json_map = self.old_template_dict["Resources"]
        in_place = []
        for name in self.modified:
            old, new = self.old_resources.get(name), resource_map._parsed_resources.get(name)
            if old is None:
                continue
            if new is not None and new is not old and _physical_id(new) != _physical_id(old):
                # Replaced: the old physical resource still exists until cleanup; use it again.
                resource_map._parsed_resources[name] = old
                if isinstance(new, TaskDefinition):
                    ecs_backends[account][region].deregister_task_definition(new.arn)
                    old.status = "ACTIVE"
            else:
                in_place.append(name)
        for name in in_place:  # updated in place: update again with the old properties
            self._resource_event(name, "UPDATE_IN_PROGRESS", self.old_template_dict)
            try:
                changed = parsing.parse_and_update_resource(
                    name, self.old_json[name], resource_map, account_id=account, region_name=region
                )
                if changed is not None:
                    resource_map._parsed_resources[name] = changed
                self._resource_event(name, "UPDATE_COMPLETE", self.old_template_dict)
            except Exception as error:  # noqa: BLE001 - a restore failure is an UPDATE_FAILED event, as on AWS
                failures[name] = error_message(error)
                self._resource_event(
                    name, "UPDATE_FAILED", self.old_template_dict, handler_message(error_message(error))
                )
        self.stack.template = self.old_template
        self.stack._parse_template()
        self.stack.parameters = dict(self.old_parameters)
        self.stack.output_map = self.stack._create_output_map()
        return failures

    # --- events -------------------------------------------------------------------------

    def _logical_id_of(self, model: ServiceDeployments) -> str | None:
        for name, resource in self.stack.resource_map._parsed_resources.items():
            if resource is model.service:
                return name
        return None

    def _stack_event(self, status: str, reason: str | None = None) -> None:
        self.stack._add_stack_event(status, resource_status_reason=reason)

    def _resource_event(
        self, logical_id: str | None, status: str, template: dict[str, Any], reason: str | None = None
    ) -> None:
        if logical_id is None:
            return
        resource = self.stack.resource_map._parsed_resources.get(logical_id)
        event = Event(
            stack_id=self.stack.stack_id,
            stack_name=self.stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=_physical_id(resource) if resource is not None else "",
            resource_type=template.get("Resources", {}).get(logical_id, {}).get("Type", ""),
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
        self.stack.events.append(event)


class FailedStackUpdateRollsBack(Extension):
    name = "failed_stack_update_rolls_back"

    def patches(self) -> Iterable[Patch]:
        execute = CloudFormationBackend.execute_change_set
        update_resource = parsing.parse_and_update_resource

        def execute_change_set(
            backend: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
        ) -> None:
            change_set = backend.describe_change_set(change_set_name)
            if change_set.change_set_type != "UPDATE":
                return execute(backend, change_set_name, stack_name)
            StackUpdate(backend, backend.stacks[change_set.stack_id], change_set).run()
            return None

        def parse_and_update_resource(logical_id: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return update_resource(logical_id, *args, **kwargs)
            except Exception as error:  # remember which resource failed; moto retries, then re-raises
                _failure.last = (logical_id, error)
                raise

        yield CloudFormationBackend, "execute_change_set", execute_change_set
        yield parsing, "parse_and_update_resource", parse_and_update_resource
