"""A first release that fails, on a ground of its own (staging starts with no stack): nothing to roll
back to; CloudFormation's rollback of the create cannot delete the load balancer, whose deletion
protection is on (as on AWS), so the stack is ROLLBACK_FAILED and the next release is refused before
it builds, naming what blocked the deletion. A ROLLBACK_COMPLETE stack is deleted and created again
(tests/steps/test_stack_states.py)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import DeployError, ReleaseFailed
from pipeline.report import ReleaseOutcome
from pipeline.steps.release import release
from pipeline.templates import stack_specs
from tests.steps.test_failure_paths import STACK, aws, context, newest_deployment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bootstrapped(ground: Any, project: Any) -> Any:
    for tag in ("v0.9.0", "v1.0.0"):
        ground.github.create_tag(tag)
    ctx = context(project.settings, github=False)
    for spec in stack_specs(project.settings):
        if spec.environment is None:
            ctx.deployer().deploy(spec.stack_name, ctx.committed_template(spec.file_name), {})
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
    assert f"{STACK}: create failed, stack is ROLLBACK_FAILED" in report.cause
    assert "ECS deployment circuit breaker" in report.cause
    assert newest_deployment("staging") == ("0.9.0", "failure")


def test_the_next_release_is_refused_before_the_build_naming_what_blocks(bootstrapped: Any, first_failed: Any) -> None:
    lines: list[str] = []
    with pytest.raises(DeployError) as refused:
        release(context(bootstrapped.settings, lines), "staging", "v1.0.0")
    message = str(refused.value)
    assert message.startswith(f"{STACK} is ROLLBACK_FAILED and cannot be updated: ")
    # Which blocker CloudFormation names first varies: the protected load balancer, or the VPC it holds.
    assert "deletion protection is enabled" in message or "has dependencies and cannot be deleted" in message
    assert "delete the stack by hand, then deploy again" in message
    assert lines == [], "nothing built, pushed or recorded"
    images = aws("ecr").describe_images(repositoryName=bootstrapped.settings.app.name)["imageDetails"]
    assert {t for i in images for t in i.get("imageTags", [])} == {"0.9.0"}
    assert newest_deployment("staging") == ("0.9.0", "failure")
