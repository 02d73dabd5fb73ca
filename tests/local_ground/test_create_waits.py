"""Stack creation waits for the ECS service to be stable, and a failed first deployment rolls the
creation back: ROLLBACK_COMPLETE, or ROLLBACK_FAILED when a resource cannot be deleted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_ground.moto_extensions import ServiceDeployments, set_task_runner
from local_ground.moto_extensions.deployments import Deployment
from tests.local_ground.test_load_balancers import protected_template
from tests.local_ground.test_moto_extensions import IMAGE_1, Clients, shows_gap_without

NAME = "stack_creation_waits_for_ecs"


class HandMovedDeployments:
    """A task runner that runs nothing: the tests move deployments with complete/fail_deployment."""

    def deployment_started(self, deployments: ServiceDeployments, deployment: Deployment) -> None:
        pass


@pytest.fixture(autouse=True)
def runner() -> Iterator[None]:
    set_task_runner(HandMovedDeployments())
    yield
    set_task_runner(None)


def test_stack_creation_completes_when_the_service_is_stable() -> None:
    def check(c: Clients) -> None:
        set_task_runner(HandMovedDeployments())  # LocalAWS's ECS extension clears it on exit
        c.deploy("CREATE", IMAGE_1, "create")
        assert c.stack()["StackStatus"] == "CREATE_IN_PROGRESS"
        c.aws.complete_deployment(*c.cluster_and_service())
        stack = c.stack()
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        assert {o["OutputKey"] for o in stack["Outputs"]} >= {"ClusterName", "ServiceName", "Url"}

    shows_gap_without(NAME, check)


def test_a_failed_first_deployment_rolls_the_creation_back() -> None:
    def check(c: Clients) -> None:
        set_task_runner(HandMovedDeployments())
        c.deploy("CREATE", IMAGE_1, "create")
        cluster, service = c.cluster_and_service()
        c.aws.fail_deployment(cluster, service)
        assert c.stack()["StackStatus"] == "ROLLBACK_COMPLETE"
        assert c.ecs.describe_services(cluster=cluster, services=[service])["services"][0]["status"] != "ACTIVE"
        events = c.cfn.describe_stack_events(StackName="model-svc")["StackEvents"]
        failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
        assert [e["LogicalResourceId"] for e in failed] == ["Service"]

    shows_gap_without(NAME, check)


def test_a_creation_whose_rollback_cannot_delete_the_load_balancer_is_rollback_failed() -> None:
    def check(c: Clients) -> None:
        set_task_runner(HandMovedDeployments())
        c.deploy("CREATE", IMAGE_1, "create", protected_template())
        c.aws.fail_deployment(*c.cluster_and_service())
        stack = c.stack()
        assert stack["StackStatus"] == "ROLLBACK_FAILED"
        events = c.cfn.describe_stack_events(StackName="model-svc")["StackEvents"]
        assert "deletion protection is enabled" in events[0]["ResourceStatusReason"]

    shows_gap_without(NAME, check)
