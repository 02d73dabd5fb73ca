"""Exports in use are protected, as CloudFormation protects them.

- stack_deletion_can_fail: DeleteStack ends DELETE_FAILED, the stack and its resources kept, when
another stack imports one of its exports ("Export X cannot be deleted as it is in use by Y") or a
resource cannot be deleted (e.g. a load balancer with deletion protection).

AWS: "Exporting stack output values" in the CloudFormation User Guide
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-exports.html: "You
can't delete a stack if another stack references one of its outputs"), and the stack status codes
(DELETE_FAILED: "Unsuccessful deletion of one or more stacks ... Because the delete failed, you
might have some resources that are still running"). moto 5.2.5 deletes such a stack and drops the
export under the importer, and an undeletable resource surfaces as an HTTP 500.
- exports_in_use_cannot_change: a stack update that changes the value of, or removes, an export
  another stack imports fails and rolls back ("Export X cannot be updated as it is in use by Y";
  same User Guide page: "You can't modify or remove an output value that is referenced by another
  stack"). moto 5.2.5 applies it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.cloudformation.models import CloudFormationBackend, Stack, cloudformation_backends

from ._base import Extension, Patch
from .stack_rollback import StackUpdate, error_message


def imported_names(node: Any) -> set[str]:
    """Literal export names a template imports (Fn::ImportValue of a string)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::ImportValue" and isinstance(value, str):
                found.add(value)
            else:
                found |= imported_names(value)
    elif isinstance(node, list):
        for item in node:
            found |= imported_names(item)
    return found


def importer_of(backend: CloudFormationBackend, stack: Stack, export_name: str) -> Stack | None:
    for other in backend.stacks.values():
        if other is not stack and export_name in imported_names(getattr(other, "template_dict", {})):
            return other
    return None


class StackDeletionCanFail(Extension):
    name = "stack_deletion_can_fail"

    def patches(self) -> Iterable[Patch]:
        delete_stack = CloudFormationBackend.delete_stack

        def delete(backend: CloudFormationBackend, name_or_stack_id: str) -> None:
            stacks = [s for s in backend.stacks.values() if name_or_stack_id in (s.stack_id, s.name)]
            if not stacks:
                return delete_stack(backend, name_or_stack_id)
            stack = stacks[0]
            for export in stack.exports:
                importer = importer_of(backend, stack, export.name)
                if importer is not None:
                    stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
                    stack.status = "DELETE_FAILED"
                    stack._add_stack_event(
                        "DELETE_FAILED",
                        resource_status_reason=f"Export {export.name} cannot be deleted as it is in use by {importer.name}",
                    )
                    return None
            try:
                return delete_stack(backend, name_or_stack_id)
            except Exception as error:  # noqa: BLE001 - a resource that cannot be deleted: DELETE_FAILED, as on AWS
                backend.stacks[stack.stack_id] = stack  # moto popped it before deleting its resources
                backend.deleted_stacks.pop(stack.stack_id, None)
                stack.status = "DELETE_FAILED"
                stack._add_stack_event(
                    "DELETE_FAILED",
                    resource_status_reason=f"The following resource(s) failed to delete: {error_message(error)}",
                )
                return None

        yield CloudFormationBackend, "delete_stack", delete


class ExportsInUseCannotChange(Extension):
    name = "exports_in_use_cannot_change"

    def patches(self) -> Iterable[Patch]:
        complete = StackUpdate.complete

        def complete_unless_an_export_in_use_changes(update: StackUpdate) -> None:
            stack = update.stack
            backend = cloudformation_backends[stack.account_id][stack.region_name]
            new = {e.name: e.value for e in stack._create_output_map().exports}  # the template is already new
            # The values registered when the stack last completed (its output map resolves lazily).
            registered = [e for e in backend.exports.values() if e.exporting_stack_id == stack.stack_id]
            for export in registered:
                importer = importer_of(backend, stack, export.name)
                if importer is None:
                    continue
                if export.name not in new:
                    update.fail(None, f"Export {export.name} cannot be deleted as it is in use by {importer.name}")
                    return
                if new[export.name] != export.value:
                    update.fail(None, f"Export {export.name} cannot be updated as it is in use by {importer.name}")
                    return
            complete(update)

        yield StackUpdate, "complete", complete_unless_an_export_in_use_changes
