"""CloudFormation calls the deploy step makes, with plain data out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.clients import aws_call, error_code, error_message

TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
TERMINAL_ROLLED_BACK = {"ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
TERMINAL_FAILED = {
    "CREATE_FAILED",
    "ROLLBACK_FAILED",
    "DELETE_FAILED",
    "UPDATE_FAILED",
    "UPDATE_ROLLBACK_FAILED",
    "IMPORT_ROLLBACK_FAILED",
}
NO_CHANGES_REASONS = (
    "didn't contain changes",
    "No updates are to be performed",
    "The submitted information didn't contain changes",
)


@dataclass(frozen=True)
class Stack:
    name: str
    stack_id: str
    status: str
    reason: str
    outputs: dict[str, str]
    parameters: dict[str, str]

    @property
    def in_progress(self) -> bool:
        return self.status.endswith("_IN_PROGRESS") and self.status != "REVIEW_IN_PROGRESS"


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove
    logical_id: str
    resource_type: str
    replacement: str  # True | False | Conditional | "" for Add/Remove

    def line(self) -> str:
        replace = {"True": " (replacement)", "Conditional": " (may be replaced)"}.get(self.replacement, "")
        return f"{self.action:<7} {self.logical_id} [{self.resource_type}]{replace}"


@dataclass(frozen=True)
class ChangeSet:
    change_set_id: str
    status: str
    execution_status: str
    reason: str
    changes: tuple[Change, ...]

    @property
    def has_no_changes(self) -> bool:
        return self.status == "FAILED" and any(r in self.reason for r in NO_CHANGES_REASONS)


@dataclass(frozen=True)
class StackEvent:
    event_id: str
    timestamp: datetime
    logical_id: str
    resource_type: str
    status: str
    reason: str

    def line(self) -> str:
        reason = f": {self.reason}" if self.reason else ""
        return f"{self.status:<28} {self.logical_id} [{self.resource_type}]{reason}"


def describe_stack(cf: Any, name: str) -> Stack | None:
    with aws_call(f"describe stack {name}"):
        try:
            found = cf.describe_stacks(StackName=name)["Stacks"]
        except ClientError as err:
            if error_code(err) == "ValidationError" and "does not exist" in error_message(err):
                return None
            raise
    if not found:
        return None
    s = found[0]
    return Stack(
        name=s["StackName"],
        stack_id=s["StackId"],
        status=s["StackStatus"],
        reason=s.get("StackStatusReason", ""),
        outputs={o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])},
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in s.get("Parameters", [])},
    )


def create_change_set(
    cf: Any,
    stack: str,
    change_set: str,
    body: str,
    parameters: dict[str, str],
    change_type: str,
    role_arn: str | None = None,
) -> str:
    args: dict[str, Any] = {
        "StackName": stack,
        "ChangeSetName": change_set,
        "TemplateBody": body,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "ChangeSetType": change_type,
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        "Description": "ecs-model-pipeline",
    }
    if role_arn:
        args["RoleARN"] = role_arn
    with aws_call(f"create change set for {stack}", hint="Check the template with `pipeline lint`."):
        return str(cf.create_change_set(**args)["Id"])


def describe_change_set(cf: Any, stack: str, change_set_id: str) -> ChangeSet:
    with aws_call(f"describe change set of {stack}"):
        raw = cf.describe_change_set(ChangeSetName=change_set_id, StackName=stack)
        listed = list(raw.get("Changes", []))
        # A large change set lists its changes in pages: every page, or changes go unreviewed.
        while raw.get("NextToken"):
            raw = cf.describe_change_set(ChangeSetName=change_set_id, StackName=stack, NextToken=raw["NextToken"])
            listed += raw.get("Changes", [])
    changes = []
    for c in listed:
        rc = c.get("ResourceChange", {})
        changes.append(
            Change(
                rc.get("Action", ""),
                rc.get("LogicalResourceId", ""),
                rc.get("ResourceType", ""),
                rc.get("Replacement", ""),
            )
        )
    return ChangeSet(
        change_set_id=change_set_id,
        status=raw.get("Status", ""),
        execution_status=raw.get("ExecutionStatus", ""),
        reason=raw.get("StatusReason", ""),
        changes=tuple(changes),
    )


def execute_change_set(cf: Any, stack: str, change_set_id: str) -> None:
    with aws_call(f"execute change set of {stack}"):
        cf.execute_change_set(ChangeSetName=change_set_id, StackName=stack)


def delete_change_set(cf: Any, stack: str, change_set_id: str) -> None:
    with aws_call(f"delete change set of {stack}"):
        cf.delete_change_set(ChangeSetName=change_set_id, StackName=stack)


def delete_stack(cf: Any, stack: str) -> None:
    with aws_call(f"delete stack {stack}"):
        cf.delete_stack(StackName=stack)


def continue_update_rollback(cf: Any, stack: str) -> None:
    with aws_call(f"continue the rollback of {stack}"):
        cf.continue_update_rollback(StackName=stack)


def stack_events(cf: Any, stack: str, limit: int = 100) -> list[StackEvent]:
    """The newest events, oldest first."""
    with aws_call(f"read events of {stack}"):
        raw = cf.describe_stack_events(StackName=stack).get("StackEvents", [])[:limit]
    events = [
        StackEvent(
            e["EventId"],
            e["Timestamp"],
            e.get("LogicalResourceId", ""),
            e.get("ResourceType", ""),
            e.get("ResourceStatus", ""),
            e.get("ResourceStatusReason", "") or "",
        )
        for e in raw
    ]
    return list(reversed(events))


def physical_ids(cf: Any, stack: str, resource_type: str) -> list[str]:
    """Physical ids of the stack's resources of one type (e.g. its load balancers' ARNs)."""
    with aws_call(f"list resources of {stack}"):
        pages = cf.get_paginator("list_stack_resources").paginate(StackName=stack)
        return [
            r["PhysicalResourceId"]
            for page in pages
            for r in page.get("StackResourceSummaries", [])
            if r.get("ResourceType") == resource_type and r.get("PhysicalResourceId")
        ]
