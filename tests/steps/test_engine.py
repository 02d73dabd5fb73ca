"""The Engine's phases on a plain moto server: Ctrl-C in any phase says what the stack is doing."""

from __future__ import annotations

import pytest

from pipeline.clock import FakeClock
from pipeline.config import Settings
from pipeline.errors import Interrupted
from pipeline.report import ReleaseReport
from pipeline.steps.context import Context
from pipeline.steps.release import Engine


@pytest.fixture()
def context(settings: Settings, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Context:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return Context(settings, FakeClock(), lambda _line: None)


STACK = "iris-classifier-service-staging"


def no_stack(context: Context) -> None:
    """The module's moto holds what other tests made: start without the service stack."""
    context.clients_for("staging").cloudformation.delete_stack(StackName=STACK)


def test_ctrl_c_before_a_deploy_says_nothing_was_started(context: Context) -> None:
    no_stack(context)
    engine = Engine(context, "staging", ReleaseReport("release", "staging", "1.2.0"))
    with pytest.raises(Interrupted) as stopped, engine.phase("build"):
        raise KeyboardInterrupt
    assert stopped.value.exit_code == 130
    assert stopped.value.message == (
        "interrupted during build of release 1.2.0 to staging "
        "(iris-classifier-service-staging does not exist); no deployment was started"
    )
    assert [(p.name, p.ok) for p in engine.report.phases] == [("build", False)]


def test_ctrl_c_after_a_deploy_says_the_stack_status(context: Context) -> None:
    no_stack(context)
    context.clients_for("staging").cloudformation.create_stack(
        StackName=STACK,
        TemplateBody='{"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}',
    )
    engine = Engine(context, "staging", ReleaseReport("rollback", "staging", "1.0.0"))
    engine.deploy_started = True
    with pytest.raises(Interrupted) as stopped, engine.phase("smoke"):
        raise KeyboardInterrupt
    assert stopped.value.message == (
        "interrupted during smoke of rollback 1.0.0 to staging "
        "(iris-classifier-service-staging is CREATE_COMPLETE); CloudFormation and ECS carry on by themselves"
    )
