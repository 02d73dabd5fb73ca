from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from pipeline.aws import cloudformation as cfn
from pipeline.clock import FakeClock
from pipeline.errors import AwsError, Interrupted, StackBusyError
from pipeline.steps.deploy import Deployer, DeployOutcome


@pytest.fixture(scope="module")
def cf() -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield boto3.client(
        "cloudformation",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    server.stop()


def queue_template(visibility: int) -> str:
    return json.dumps(
        {
            "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": visibility}}},
            "Outputs": {"QueueUrl": {"Value": {"Ref": "Queue"}}},
        }
    )


def deployer(cf: Any, lines: list[str], **kw: Any) -> Deployer:
    return Deployer(cf, FakeClock(), echo=lines.append, poll=1.0, **kw)


def test_create_then_no_changes_then_update(cf: Any) -> None:
    lines: list[str] = []
    first = deployer(cf, lines).deploy("queue-stack", queue_template(30), {})
    assert first.outcome is DeployOutcome.CREATED
    assert [c.action for c in first.changes] == ["Add"]
    assert "queue-stack: 1 change(s)" in lines
    assert any("Add     Queue [AWS::SQS::Queue]" in line for line in lines)

    again = deployer(cf, lines).deploy("queue-stack", queue_template(30), {})
    assert again.outcome is DeployOutcome.NO_CHANGES
    assert cfn.describe_stack(cf, "queue-stack").status == "CREATE_COMPLETE"
    # moto lists every stack's change sets whatever StackName says: keep this stack's only.
    left = [
        c
        for c in cf.list_change_sets(StackName="queue-stack")["Summaries"]
        if c["StackName"] == "queue-stack" and c["ExecutionStatus"] != "EXECUTE_COMPLETE"
    ]
    assert left == [], "the empty change set is deleted"

    updated = deployer(cf, lines).deploy("queue-stack", queue_template(60), {})
    assert updated.outcome is DeployOutcome.UPDATED
    assert [c.action for c in updated.changes] == ["Modify"]
    assert cfn.describe_stack(cf, "queue-stack").status == "UPDATE_COMPLETE"


def test_preview_of_a_new_stack_leaves_nothing_behind(cf: Any) -> None:
    lines: list[str] = []
    result = deployer(cf, lines).deploy("preview-stack", queue_template(30), {}, execute=False)
    assert result.outcome is DeployOutcome.PREVIEWED
    assert [c.logical_id for c in result.changes] == ["Queue"]
    assert cfn.describe_stack(cf, "preview-stack") is None


def test_review_in_progress_stack_is_created(cf: Any) -> None:
    cf.create_change_set(
        StackName="review-stack", ChangeSetName="abandoned", TemplateBody=queue_template(30), ChangeSetType="CREATE"
    )
    assert cfn.describe_stack(cf, "review-stack").status == "REVIEW_IN_PROGRESS"
    result = deployer(cf, []).deploy("review-stack", queue_template(30), {})
    assert result.outcome is DeployOutcome.CREATED
    assert cfn.describe_stack(cf, "review-stack").status == "CREATE_COMPLETE"


def test_busy_stack_is_refused(cf: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    busy = cfn.Stack("busy", "id", "UPDATE_IN_PROGRESS", "", {}, {})
    monkeypatch.setattr(cfn, "describe_stack", lambda _cf, _name: busy)
    with pytest.raises(StackBusyError, match="busy is UPDATE_IN_PROGRESS"):
        deployer(cf, []).deploy("busy", queue_template(30), {})


def test_change_set_failure_is_reported(cf: Any) -> None:
    template = {
        "Parameters": {"Size": {"Type": "Number"}},
        "Resources": {"X": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": {"Ref": "Size"}}}},
    }
    # AWS refuses at create_change_set, moto at execute: either way one clear line.
    with pytest.raises(AwsError, match="change set (for|of) bad-stack: ValidationError: .*Size"):
        deployer(cf, []).deploy("bad-stack", json.dumps(template), {})


class CtrlC(FakeClock):
    def sleep(self, seconds: float) -> None:
        raise KeyboardInterrupt


def test_ctrl_c_while_waiting_for_a_busy_stack_says_its_status(cf: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto settles stacks at once, so the stack in progress is a stand-in; the message reads it again."""
    busy = cfn.Stack("busy", "id", "UPDATE_IN_PROGRESS", "", {}, {})
    monkeypatch.setattr(cfn, "describe_stack", lambda _cf, _name: busy)
    monkeypatch.setattr(cfn, "stack_events", lambda _cf, _name: [])
    waiting = Deployer(cf, CtrlC(), echo=lambda _line: None, wait_if_busy=True)
    with pytest.raises(Interrupted) as stopped:
        waiting.deploy("busy", queue_template(30), {})
    assert stopped.value.exit_code == 130
    assert str(stopped.value).startswith(
        "interrupted while waiting for busy to settle (busy is UPDATE_IN_PROGRESS); CloudFormation carries on"
    )
    assert stopped.value.hint == "Look at it in the console to see where busy stands; no second update was started."


def test_ctrl_c_before_an_update_started_says_so(cf: Any) -> None:
    """Ctrl-C before the change set is executed (here: while its changes are printed) starts no update."""
    stack = "interrupted-stack"

    def ctrl_c(_line: str) -> None:
        raise KeyboardInterrupt

    deployer(cf, []).deploy(stack, queue_template(30), {})
    with pytest.raises(Interrupted) as stopped:
        Deployer(cf, FakeClock(), echo=ctrl_c).deploy(stack, queue_template(60), {})
    assert f"({stack} is CREATE_COMPLETE); no update was started" in str(stopped.value)
