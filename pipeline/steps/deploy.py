"""deploy: create or update a stack through a change set, as stacker and Sceptre do it.

create the change set -> wait -> "no changes" is a normal outcome (delete it) -> print the summary ->
execute -> stream stack events until the stack settles. Stacks in a state that cannot take an update
are handled explicitly: REVIEW_IN_PROGRESS (never executed) and ROLLBACK_COMPLETE (a failed first
create) hold no resources and are deleted first, UPDATE_ROLLBACK_FAILED is continued, and a stack already in
progress is waited for or refused. Two updates are never stacked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pipeline.aws import cloudformation as cfn
from pipeline.clock import Clock
from pipeline.errors import DeployError, Interrupted, StackBusyError
from pipeline.steps.interrupt import read_now

Echo = Callable[[str], None]
POLL_SECONDS = 5.0


class DeployOutcome(Enum):
    CREATED = "created"
    UPDATED = "updated"
    NO_CHANGES = "no changes"
    PREVIEWED = "previewed"


@dataclass(frozen=True)
class DeployResult:
    stack_name: str
    outcome: DeployOutcome
    changes: tuple[cfn.Change, ...]
    stack: cfn.Stack | None
    seconds: float = 0.0


@dataclass
class Deployer:
    """Drives one stack. `cf` is a CloudFormation client; `clock` paces every wait."""

    cf: Any
    clock: Clock
    echo: Echo = print
    timeout: float = 3600.0
    wait_if_busy: bool = False
    role_arn: str | None = None
    poll: float = POLL_SECONDS
    environment: str = ""  # the environment whose service stack this is (named in hints); "" for shared stacks
    _seen_events: set[str] = field(default_factory=set)
    _doing: str = "be ready for an update"  # what the current wait is for, named in the Ctrl-C message
    _while_waiting: Callable[[], None] | None = None

    def deploy(
        self,
        stack_name: str,
        body: str,
        parameters: dict[str, str],
        *,
        execute: bool = True,
        while_waiting: Callable[[], None] | None = None,
    ) -> DeployResult:
        """`while_waiting` is called between polls of the executing update (a traffic-shifting strategy
        answers the service deployment's lifecycle hooks there: CloudFormation waits for that deployment)."""
        self._doing = "be ready for an update"
        self._while_waiting = while_waiting
        try:
            return self._deploy(stack_name, body, parameters, execute=execute)
        except KeyboardInterrupt:
            raise self.interrupted(stack_name) from None

    def interrupted(self, stack_name: str) -> Interrupted:
        """Ctrl-C: CloudFormation carries on without us; say in what state the stack is right now."""

        def status() -> str:
            stack = cfn.describe_stack(self.cf, stack_name)
            return f"{stack_name} is {stack.status}" if stack else f"{stack_name} does not exist"

        now = read_now(status, f"the status of {stack_name}")
        if self._doing in ("be ready for an update", "create the change set"):
            after = "no update was started"
        else:
            after = "CloudFormation carries on and will finish or roll back by itself"
        look = f"Run `pipeline status --env {self.environment}`" if self.environment else "Look at it in the console"
        return Interrupted(
            f"interrupted while waiting for {stack_name} to {self._doing} ({now}); {after}",
            hint=f"{look} to see where {stack_name} stands; no second update was started.",
        )

    def _deploy(self, stack_name: str, body: str, parameters: dict[str, str], *, execute: bool) -> DeployResult:
        started = self.clock.now()
        stack = self._ready_stack(stack_name)
        change_type = "CREATE" if stack is None else "UPDATE"
        name = f"pipeline-{int(time.time() * 1000)}"
        self._doing = "create the change set"
        change_set_id = cfn.create_change_set(self.cf, stack_name, name, body, parameters, change_type, self.role_arn)
        change_set = self._wait_change_set(stack_name, change_set_id)
        if change_set.has_no_changes:
            cfn.delete_change_set(self.cf, stack_name, change_set_id)
            self.echo(f"{stack_name}: no changes")
            return DeployResult(stack_name, DeployOutcome.NO_CHANGES, (), stack, self.clock.now() - started)
        if change_set.status == "FAILED":
            raise DeployError(
                f"{stack_name}: change set failed: {change_set.reason}",
                hint="Nothing was changed; fix the template or parameters.",
            )
        self._print_changes(stack_name, change_set.changes)
        if not execute:
            cfn.delete_change_set(self.cf, stack_name, change_set_id)
            if change_type == "CREATE" and stack is None:
                # A CREATE change set leaves a REVIEW_IN_PROGRESS stack behind; a preview must not.
                cfn.delete_stack(self.cf, stack_name)
            return DeployResult(
                stack_name, DeployOutcome.PREVIEWED, change_set.changes, stack, self.clock.now() - started
            )
        self._mark_old_events_seen(stack_name, stack)
        cfn.execute_change_set(self.cf, stack_name, change_set_id)
        self.echo(f"{stack_name}: executing {change_type.lower()}")
        final = self._wait_stack(stack_name, "deploy")
        if final.status not in cfn.TERMINAL_OK:
            cause = self._failure_cause(stack_name)
            raise DeployError(
                f"{stack_name}: {change_type.lower()} failed, stack is {final.status}"
                + (f": {cause}" if cause else ""),
                hint="CloudFormation restored the previous state."
                if final.status in cfn.TERMINAL_ROLLED_BACK
                else "Inspect the stack events in the console.",
            )
        outcome = DeployOutcome.CREATED if change_type == "CREATE" else DeployOutcome.UPDATED
        return DeployResult(stack_name, outcome, change_set.changes, final, self.clock.now() - started)

    def delete(self, stack_name: str) -> None:
        """Delete a stack and wait with its events streamed; raises when CloudFormation cannot."""
        stack = cfn.describe_stack(self.cf, stack_name)
        if stack is None:
            return
        refuse_busy(stack)
        self._mark_old_events_seen(stack.stack_id, stack)
        try:
            cfn.delete_stack(self.cf, stack_name)
            # By its id: a deleted stack stays readable (DELETE_COMPLETE, with its events) only so.
            final = self._wait_stack(stack.stack_id, "delete", allow_gone=True)
        except KeyboardInterrupt:
            raise self.interrupted(stack_name) from None
        if final.status != "DELETE_COMPLETE":
            cause = self._failure_cause(stack.stack_id)
            raise DeployError(
                f"{stack_name}: delete failed, stack is {final.status}" + (f": {cause}" if cause else ""),
                hint="Fix or retain the resource named, then delete it again.",
            )

    def settle(self, stack_name: str) -> cfn.Stack | None:
        """Wait while the stack is mid-operation (one that a killed run started); None when it does not exist."""
        stack = cfn.describe_stack(self.cf, stack_name)
        if stack is None or not stack.in_progress:
            return stack
        self.echo(f"{stack_name}: {stack.status}, waiting for it to settle")
        self._mark_old_events_seen(stack_name, stack)
        try:
            return self._wait_stack(stack_name, "settle")
        except KeyboardInterrupt:
            raise self.interrupted(stack_name) from None

    # --- states that cannot take an update as they are -------------------------------------------

    def _ready_stack(self, stack_name: str) -> cfn.Stack | None:
        stack = cfn.describe_stack(self.cf, stack_name)
        if stack is None:
            return None
        if stack.in_progress:
            if not self.wait_if_busy:
                refuse_busy(stack)
            self.echo(f"{stack_name}: {stack.status}, waiting for it to settle")
            stack = self._wait_stack(stack_name, "settle")
        if stack.status in ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"):
            why = (
                "its first create failed" if stack.status == "ROLLBACK_COMPLETE" else "a change set was never executed"
            )
            self.echo(f"{stack_name}: {stack.status} ({why}); deleting the empty stack before creating it")
            cfn.delete_stack(self.cf, stack_name)
            self._wait_stack(stack_name, "delete", allow_gone=True)
            return None
        if stack.status == "UPDATE_ROLLBACK_FAILED":
            self.echo(f"{stack_name}: UPDATE_ROLLBACK_FAILED; continuing the rollback first")
            cfn.continue_update_rollback(self.cf, stack_name)
            stack = self._wait_stack(stack_name, "continue rollback")
            if stack.status != "UPDATE_ROLLBACK_COMPLETE":
                raise DeployError(
                    f"{stack_name}: the rollback could not be continued ({stack.status})",
                    hint="Skip the failing resources with continue-update-rollback in the console.",
                )
        refuse_unusable(self.cf, stack)
        return stack

    # --- waiting ----------------------------------------------------------------------------------

    def _wait_change_set(self, stack_name: str, change_set_id: str) -> cfn.ChangeSet:
        deadline = self.clock.now() + min(self.timeout, 600)
        while True:
            change_set = cfn.describe_change_set(self.cf, stack_name, change_set_id)
            if change_set.status in ("CREATE_COMPLETE", "FAILED"):
                return change_set
            if self.clock.now() > deadline:
                raise DeployError(
                    f"{stack_name}: change set still {change_set.status} after {int(min(self.timeout, 600))}s",
                    hint="Retry; nothing was executed.",
                )
            self.clock.sleep(min(self.poll, 2.0))

    def _wait_stack(self, stack_name: str, what: str, allow_gone: bool = False) -> cfn.Stack:
        self._doing = what
        deadline = self.clock.now() + self.timeout
        while True:
            stack = cfn.describe_stack(self.cf, stack_name)
            if stack is not None:
                self._stream_events(stack_name)
            if stack is None:
                if allow_gone:
                    return cfn.Stack(stack_name, "", "DELETE_COMPLETE", "", {}, {})
                raise DeployError(
                    f"{stack_name} disappeared while waiting to {what}", hint="Someone deleted it; deploy again."
                )
            if not stack.in_progress:
                return stack
            if what == "deploy" and self._while_waiting is not None:
                self._while_waiting()
            if self.clock.now() > deadline:
                raise DeployError(
                    f"{stack_name} still {stack.status} after {int(self.timeout)}s",
                    hint="CloudFormation goes on by itself; check `pipeline status` later.",
                )
            self.clock.sleep(self.poll)

    def _mark_old_events_seen(self, stack_name: str, stack: cfn.Stack | None) -> None:
        if stack is not None:
            self._seen_events.update(e.event_id for e in cfn.stack_events(self.cf, stack_name))

    def _stream_events(self, stack_name: str) -> None:
        for event in cfn.stack_events(self.cf, stack_name):
            if event.event_id not in self._seen_events:
                self._seen_events.add(event.event_id)
                self.echo(f"  {event.line()}")

    def _failure_cause(self, stack_name: str) -> str:
        """The first failure reason of this operation: the one that started the rollback."""
        for event in cfn.stack_events(self.cf, stack_name):
            if event.status.endswith("_FAILED") and event.reason and event.event_id in self._seen_events:
                return event.reason
        return ""

    def _print_changes(self, stack_name: str, changes: tuple[cfn.Change, ...]) -> None:
        self.echo(f"{stack_name}: {len(changes)} change(s)")
        for change in changes:
            self.echo(f"  {change.line()}")


def refuse_busy(stack: cfn.Stack | None) -> None:
    """A stack mid-operation takes no second update."""
    if stack is not None and stack.in_progress:
        raise StackBusyError(
            f"{stack.name} is {stack.status}: another operation is running",
            hint="Wait for it to finish (or pass --wait); two updates are never stacked.",
        )


def refuse_unusable(cf: Any, stack: cfn.Stack | None) -> None:
    """A stack no update can fix (ROLLBACK_FAILED, DELETE_FAILED) is refused, naming what blocked it
    (the stack's reason, else its newest event in that state)."""
    if stack is not None and stack.status in ("ROLLBACK_FAILED", "DELETE_FAILED", "DELETE_COMPLETE"):
        reason = stack.reason or next(
            (e.reason for e in reversed(cfn.stack_events(cf, stack.name)) if e.status == stack.status and e.reason),
            "",
        )
        why = f": {reason}" if reason else ""
        raise DeployError(
            f"{stack.name} is {stack.status} and cannot be updated{why}",
            hint="Remove what blocks the deletion (e.g. the load balancer's deletion protection), delete the stack "
            "by hand, then deploy again.",
        )
