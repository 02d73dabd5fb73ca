"""change_set_stacks_report_outputs: a stack created or updated through a change set reports
its Outputs (and its new template, parameters and description) in describe_stacks.

moto 5.2.5 builds a change-set stack from an empty template and, on execution, updates its
resources but never re-parses the template, so Outputs stay empty and ``stack.parameters``
keeps the values of the first change set (which also breaks "no changes" detection).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.cloudformation.models import CloudFormationBackend, Stack

from ._base import Extension, Patch


def refresh_stack_record(backend: CloudFormationBackend, stack: Stack, template: str) -> None:
    """Make the stack's record match the template its resources were just built from."""
    stack.template = template
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.parameters = dict(stack.resource_map.input_parameters)
    for export in stack.exports:  # drop this stack's old exports before re-reading them
        backend.exports.pop(export.name, None)
    stack.output_map = stack._create_output_map()
    for export in stack.exports:
        backend.exports[export.name] = export


class ChangeSetStacksReportOutputs(Extension):
    name = "change_set_stacks_report_outputs"

    def patches(self) -> Iterable[Patch]:
        original = CloudFormationBackend.execute_change_set

        def execute_change_set(
            backend: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
        ) -> Any:
            result = original(backend, change_set_name, stack_name)
            change_set = backend.describe_change_set(change_set_name)
            stack = backend.stacks.get(change_set.stack_id)
            # An update that is still waiting on ECS keeps the old record until it ends
            # (see stack_rollback); everything else has finished executing by now.
            if stack is not None and stack.status.endswith("_COMPLETE") and "ROLLBACK" not in stack.status:
                refresh_stack_record(backend, stack, change_set.template)
            return result

        yield CloudFormationBackend, "execute_change_set", execute_change_set
