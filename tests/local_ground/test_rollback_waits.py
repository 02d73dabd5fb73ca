"""A stack update's rollback waits for the ECS deployment restoring the service, can fail
(UPDATE_ROLLBACK_FAILED), and ContinueUpdateRollback finishes it, as CloudFormation does."""

from __future__ import annotations

from tests.local_ground.test_moto_extensions import IMAGE_1, IMAGE_2, STACK, Clients, shows_gap_without
from tests.local_ground.test_validation import error_of

NAME = "update_rollback_waits_for_ecs"


def _failed_update(c: Clients) -> tuple[str, str]:
    c.deploy("CREATE", IMAGE_1, "create")
    cluster, service = c.cluster_and_service()
    c.aws.complete_deployment(cluster, service)
    c.deploy("UPDATE", IMAGE_2, "update")
    c.aws.fail_deployment(cluster, service)  # the circuit breaker: ECS starts restoring model:1
    return cluster, service


def test_the_rollback_completes_only_when_the_restoring_deployment_is_steady() -> None:
    def check(c: Clients) -> None:
        cluster, service = _failed_update(c)
        assert c.stack()["StackStatus"] == "UPDATE_ROLLBACK_IN_PROGRESS"
        c.aws.complete_deployment(cluster, service)
        assert c.stack()["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"

    shows_gap_without(NAME, check)


def test_a_restore_that_fails_ends_in_update_rollback_failed_and_continue_finishes_it() -> None:
    def check(c: Clients) -> None:
        cluster, service = _failed_update(c)
        c.aws.fail_deployment(cluster, service)  # the restoring deployment fails too
        stack = c.stack()
        assert stack["StackStatus"] == "UPDATE_ROLLBACK_FAILED"
        events = c.cfn.describe_stack_events(StackName=STACK)["StackEvents"]
        assert events[0]["ResourceStatusReason"] == "The following resource(s) failed to update: [Service]. "
        assert any(e["LogicalResourceId"] == "Service" and e["ResourceStatus"] == "UPDATE_FAILED" for e in events[:3])
        c.cfn.continue_update_rollback(StackName=STACK)
        assert c.stack()["StackStatus"] == "UPDATE_ROLLBACK_IN_PROGRESS"
        c.aws.complete_deployment(cluster, service)
        assert c.stack()["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        assert c.service()["taskDefinition"].endswith("model:1")
        code, _ = error_of(lambda: c.cfn.continue_update_rollback(StackName=STACK)) or ("", "")
        assert code == "ValidationError"  # only from UPDATE_ROLLBACK_FAILED

    shows_gap_without(NAME, check)
