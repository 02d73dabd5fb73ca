"""change_sets_list_resolved_changes: an UPDATE change set lists the resources whose resolved
properties change, parameters included, each with Replacement and Details, as CloudFormation does.

AWS: "Update CloudFormation stacks using change sets" and the ResourceChange / ResourceChangeDetail
API reference (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ResourceChange.html):
a resource is listed with Action Modify when a property changes, directly ("DirectModification",
evaluated Static), through a changed parameter it references ("ParameterReference", Static) or
through a resource it references that is replaced ("ResourceReference", Dynamic); Replacement is
True when a changed property requires recreation (the resource type's createOnlyProperties in its
CloudFormation resource provider schema, shipped with cfn-lint), Conditional when that change is
only Dynamic, else False. So a new image digest lists the task definition Modify/Replacement True
and the service Modify/Replacement False.

moto 5.2.5 compares the raw template text only (a parameter change lists nothing, and resources
whose stored JSON moto itself rewrote show up as Modify) and never sets Replacement.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from botocore import xform_name
from moto.cloudformation.models import ChangeSet

from ._base import Extension, Patch
from .cfn_validation import parse_template

PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::Region",
        "AWS::StackName",
        "AWS::StackId",
        "AWS::Partition",
        "AWS::URLSuffix",
        "AWS::NoValue",
    }
)


@functools.cache
def create_only_properties(resource_type: str) -> frozenset[str]:
    """Top-level properties whose change replaces the resource (provider schema's createOnlyProperties)."""
    from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    except Exception:  # noqa: BLE001 - an unknown type (custom resources): nothing forces replacement
        return frozenset()
    return frozenset(p.split("/")[2] for p in schema.get("createOnlyProperties", []) if p.startswith("/properties/"))


def references(node: Any) -> set[str]:
    """Names a template fragment refers to: Ref, Fn::GetAtt and ${Name} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value if isinstance(value, list) else str(value).split(".")
                found.add(str(target[0]))
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found.update(name.split(".")[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", str(text)))
                if isinstance(value, list) and len(value) > 1:
                    found.update(references(value[1]))
            else:
                found.update(references(value))
    elif isinstance(node, list):
        for item in node:
            found.update(references(item))
    return found - PSEUDO_PARAMETERS


def parameter_values(template: dict[str, Any], given: dict[str, Any]) -> dict[str, str]:
    declared = template.get("Parameters") or {}
    return {name: str(given.get(name, (spec or {}).get("Default"))) for name, spec in declared.items()}


class ResourceChange:
    """One entry of describe_change_set's Changes, in the API's shape."""

    type = "Resource"

    def __init__(self, **resource_change: Any) -> None:
        # moto's serializer reads ResourceChange's members from this object's snake_case attributes
        # (action, logical_resource_id, ... as on moto's own Change).
        for key, value in resource_change.items():
            if value is not None:
                setattr(self, xform_name(key), value)


def _detail(name: str, resource_type: str, evaluation: str, source: str, cause: str | None) -> dict[str, Any]:
    recreate = "Always" if name in create_only_properties(resource_type) else "Never"
    detail: dict[str, Any] = {
        "Target": {"Attribute": "Properties", "Name": name, "RequiresRecreation": recreate},
        "Evaluation": evaluation,
        "ChangeSource": source,
    }
    if cause:
        detail["CausingEntity"] = cause
    return detail


def _replacement(details: list[dict[str, Any]]) -> str:
    recreating = [d for d in details if d["Target"]["RequiresRecreation"] == "Always"]
    if any(d["Evaluation"] == "Static" for d in recreating):
        return "True"
    return "Conditional" if recreating else "False"


def resolved_changes(
    old: dict[str, Any],
    old_parameters: dict[str, Any],
    new: dict[str, Any],
    new_parameters: dict[str, Any],
    physical_ids: dict[str, str],
) -> list[ResourceChange]:
    old_resources: dict[str, Any] = old.get("Resources") or {}
    new_resources: dict[str, Any] = new.get("Resources") or {}
    before, after = parameter_values(old, old_parameters), parameter_values(new, new_parameters)
    changed_parameters = {name for name in after if before.get(name) != after[name]}
    details: dict[str, list[dict[str, Any]]] = {}
    for name, body in new_resources.items():
        if name not in old_resources:
            continue
        kind = body.get("Type", "")
        props, old_props = body.get("Properties") or {}, old_resources[name].get("Properties") or {}
        found = []
        for prop in sorted(set(props) | set(old_props)):
            if props.get(prop) != old_props.get(prop):
                found.append(_detail(prop, kind, "Static", "DirectModification", None))
            else:
                for parameter in sorted(references(props.get(prop)) & changed_parameters):
                    found.append(_detail(prop, kind, "Static", "ParameterReference", parameter))
        if body.get("Metadata") != old_resources[name].get("Metadata"):
            target = {"Attribute": "Metadata", "RequiresRecreation": "Never"}
            found.append({"Target": target, "Evaluation": "Static", "ChangeSource": "DirectModification"})
        if found:
            details[name] = found
    # A replaced resource gets a new physical id: whatever refers to it changes too (Dynamic).
    replaced: set[str] = set()
    while True:
        now_replaced = {n for n, d in details.items() if _replacement(d) != "False"}
        if now_replaced <= replaced:
            break
        fresh, replaced = now_replaced - replaced, replaced | now_replaced
        for name, body in new_resources.items():
            if name not in old_resources:
                continue
            props = body.get("Properties") or {}
            for prop, value in props.items():
                for cause in sorted(references(value) & fresh):
                    detail = _detail(prop, body.get("Type", ""), "Dynamic", "ResourceReference", cause)
                    details.setdefault(name, []).append(detail)
    changes = [
        ResourceChange(Action="Add", LogicalResourceId=n, ResourceType=b.get("Type", ""), Scope=[], Details=[])
        for n, b in new_resources.items()
        if n not in old_resources
    ]
    for name, found in details.items():
        scope = sorted({d["Target"]["Attribute"] for d in found})
        changes.append(
            ResourceChange(
                Action="Modify",
                LogicalResourceId=name,
                PhysicalResourceId=physical_ids.get(name),
                ResourceType=new_resources[name].get("Type", ""),
                Replacement=_replacement(found),
                Scope=scope,
                Details=found,
            )
        )
    changes += [
        ResourceChange(
            Action="Remove",
            LogicalResourceId=n,
            PhysicalResourceId=physical_ids.get(n),
            ResourceType=b.get("Type", ""),
            PolicyAction="Delete",
            Scope=[],
            Details=[],
        )
        for n, b in old_resources.items()
        if n not in new_resources
    ]
    return changes


def _physical_ids(change_set: ChangeSet) -> dict[str, str]:
    ids = {}
    for name, resource in change_set.stack.resource_map._parsed_resources.items():
        physical = getattr(resource, "physical_resource_id", None)
        if isinstance(physical, str):
            ids[name] = physical
    return ids


class ChangeSetsListResolvedChanges(Extension):
    name = "change_sets_list_resolved_changes"

    def patches(self) -> Iterable[Patch]:
        diff = ChangeSet.diff

        def resolved_diff(change_set: ChangeSet) -> list[Any]:
            stack = change_set.stack
            if change_set.change_set_type != "UPDATE" or not stack.template:
                return diff(change_set)
            return list(
                resolved_changes(
                    parse_template(stack.template),
                    dict(stack.parameters or {}),
                    change_set.template_dict,
                    dict(change_set.parameters or {}),
                    _physical_ids(change_set),
                )
            )

        yield ChangeSet, "diff", resolved_diff
