"""A first release that fails, on a ground of its own (staging starts with no stack): nothing to roll
back to, and the create ran with the load balancer unprotected, so CloudFormation's rollback is not
stopped by it (a protected load balancer ends a failed create in ROLLBACK_FAILED on AWS)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import ReleaseFailed
from pipeline.report import ReleaseOutcome
from pipeline.steps.release import release
from tests.steps.story import aws, bootstrap, context
from tests.steps.test_failure_paths import STACK, newest_deployment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bootstrapped(ground: Any, project: Any) -> Any:
    bootstrap(ground, project.settings, ("v0.9.0", "v1.0.0"))
    return project


@pytest.fixture(scope="module")
def first_failed(bootstrapped: Any) -> tuple[ReleaseFailed, list[str]]:
    """Tasks that never become healthy: ECS fails the first deployment, the create rolls back."""
    lines: list[str] = []
    with pytest.raises(ReleaseFailed) as failed:
        release(context(bootstrapped.with_image("model-broken"), lines), "staging", "v0.9.0")
    return failed.value, lines


def test_a_first_release_that_fails_has_nothing_to_roll_back_to(first_failed: tuple[ReleaseFailed, list[str]]) -> None:
    failed, lines = first_failed
    report = failed.report
    assert (report.outcome, report.restored_version) == (ReleaseOutcome.FAILED, "")
    assert "nothing ran in staging before; nothing to roll back to" in lines
    assert f"{STACK}: create failed, stack is ROLLBACK_" in report.cause  # _COMPLETE on AWS; see below
    assert "ECS deployment circuit breaker" in report.cause
    assert newest_deployment("staging") == ("0.9.0", "failure")


def test_the_first_create_ran_with_the_load_balancer_unprotected(first_failed: Any) -> None:
    """So the protected load balancer is not what stops CloudFormation's rollback of the create.
    (Deleting the empty stack and creating it again: tests/steps/test_stack_states.py. On this ground
    the rollback of the full service template still stops at the VPC: moto deletes no NAT gateway,
    internet gateway, route table or task network interface.)"""
    stack = aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    assert {"ParameterKey": "DeletionProtection", "ParameterValue": "false"} in stack["Parameters"]
    events = aws("cloudformation").describe_stack_events(StackName=STACK)["StackEvents"]
    assert not any("deletion protection" in (e.get("ResourceStatusReason") or "") for e in events)
