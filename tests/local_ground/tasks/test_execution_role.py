"""On AWS an ECS task starts only if its execution role may pull its image from ECR and write its
awslogs stream; otherwise ECS stops it before any container runs, with CannotPullContainerError or
ResourceInitializationError naming the denied action, and the circuit breaker fails the deployment.
The local ground does the same while identity enforcement is on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local_ground.aws import LocalAWS
from local_ground.ecr_bridge import EcrRegistryBridge
from local_ground.moto_extensions import all_extensions
from local_ground.registry import LocalRegistry
from local_ground.tasks import EcsTasksRunForReal
from tests.local_ground.tasks.task_env import SCALE, SERVICE_STACK, Env, wait_for


@pytest.fixture()
def enforced(registry: LocalRegistry) -> Iterator[Env]:
    """Real tasks with identity enforcement on; the tests sign with the operator's (administrator) keys."""
    from local_ground.iam.enforcement import IdentityEnforcement

    bridge = EcrRegistryBridge(registry)
    tasks = EcsTasksRunForReal(bridge, time_scale=SCALE)
    identity = IdentityEnforcement(operator_keys=["testing"])
    with LocalAWS(extensions=[*all_extensions(), bridge, tasks, identity]) as aws:
        yield Env(aws, bridge, tasks)
        tasks.uninstall()
    assert tasks.live_task_pids() == []


def release_v1(env: Env, images: dict[str, str]) -> None:
    env.create_registry_stack()
    env.create_service_stack(env.push(images["v1"], "1.0.0"))
    wait_for(lambda: env.service()["deployments"][0]["rolloutState"] == "COMPLETED")


def execution_role(env: Env) -> str:
    """The name of the role the service's task definition names as its executionRoleArn."""
    definition = env.client("ecs").describe_task_definition(taskDefinition=env.service()["taskDefinition"])
    return str(definition["taskDefinition"]["executionRoleArn"]).rsplit("/", 1)[-1]


def test_the_staging_execution_role_pulls_the_image_and_writes_the_logs(enforced: Env, images: dict[str, str]) -> None:
    release_v1(enforced, images)
    running = enforced.tasks_of("RUNNING")
    assert len(running) == 1 and running[0]["lastStatus"] == "RUNNING"
    assert enforced.tasks_of("STOPPED") == []


def test_a_task_whose_execution_role_may_not_pull_its_image_stops_and_the_release_fails(
    enforced: Env, images: dict[str, str]
) -> None:
    """The staging execution role may pull only from the app's repository: an image of another
    repository of the same account is refused by ECR, so no task of that release starts."""
    release_v1(enforced, images)
    old_task = enforced.tasks_of("RUNNING")[0]["taskArn"]
    enforced.client("ecr").create_repository(repositoryName="another-model")
    enforced.update_image(enforced.push(images["v2"], "2.0.0", repository="another-model"), "2.0.0")
    wait_for(lambda: not enforced.stack_status().endswith("_IN_PROGRESS"), timeout=60)
    assert enforced.stack_status() == "UPDATE_ROLLBACK_COMPLETE"
    stopped = enforced.tasks_of("STOPPED")
    assert len(stopped) >= 3  # the circuit breaker's threshold for a desired count of 1
    role = execution_role(enforced)
    repository = f"arn:aws:ecr:{enforced.aws.region}:123456789012:repository/another-model"
    for task in stopped:
        message: str = task["stoppedReason"]
        assert message.startswith("CannotPullContainerError: "), message
        task_id = task["taskArn"].split("/")[-1]
        assert (
            f"AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/{role}/{task_id} "
            f"is not authorized to perform: ecr:BatchGetImage on resource: {repository} "
            "because no identity-based policy allows the ecr:BatchGetImage action"
        ) in message
        assert task["stopCode"] == "TaskFailedToStart"
    assert [t["taskArn"] for t in enforced.tasks_of("RUNNING")] == [old_task]  # v1 serves on
    events = enforced.client("cloudformation").describe_stack_events(StackName=SERVICE_STACK)["StackEvents"]
    reasons: list[Any] = [e.get("ResourceStatusReason", "") for e in events if e["ResourceStatus"] == "UPDATE_FAILED"]
    assert any("ECS Deployment Circuit Breaker was triggered" in r for r in reasons)
