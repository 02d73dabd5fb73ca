"""change_set_stacks_import_values: a stack created through a change set resolves Fn::ImportValue
against the exports of the account's other stacks.

moto 5.2.5 gives create_stack the backend's exports (`cross_stack_resources`) but builds a
change-set stack without them, so executing a template that imports a value fails with
"No export named ... found" even though list_exports shows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.cloudformation.models import CloudFormationBackend

from ._base import Extension, Patch


class ChangeSetStacksImportValues(Extension):
    name = "change_set_stacks_import_values"

    def patches(self) -> Iterable[Patch]:
        original = CloudFormationBackend.create_change_set

        def create_change_set(backend: CloudFormationBackend, *args: Any, **kwargs: Any) -> Any:
            result = original(backend, *args, **kwargs)
            for stack in backend.stacks.values():
                # The backend's own dict, so exports made later are seen too (as create_stack does).
                stack.cross_stack_resources = backend.exports
                resource_map = getattr(stack, "resource_map", None)
                if resource_map is not None:
                    resource_map.cross_stack_resources = backend.exports
            return result

        yield CloudFormationBackend, "create_change_set", create_change_set
