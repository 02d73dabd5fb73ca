"""The rollout check: the decision on one reading of the service (table-driven), and the watcher that
polls it on a fake clock, against ECS in moto (whose deployments stay IN_PROGRESS, as a slow one does)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config

from pipeline.aws.ecs import Deployment, ServiceState
from pipeline.clock import FakeClock
from pipeline.errors import Interrupted, RolloutError
from pipeline.steps.roll import (
    Decision,
    RolloutOutcome,
    RolloutResult,
    RolloutWatcher,
    decide,
    deployments_line,
    require_completed,
)

OURS = "arn:aws:ecs:us-east-1:123456789012:task-definition/app-staging:4"
OLD = "arn:aws:ecs:us-east-1:123456789012:task-definition/app-staging:3"


def deployment(task_definition: str, status: str, rollout: str, reason: str = "", running: int = 2) -> Deployment:
    return Deployment(f"ecs-svc/{task_definition[-1]}", status, task_definition, 2, running, 0, 0, rollout, reason)


def service(*deployments: Deployment) -> ServiceState:
    return ServiceState("cluster", "app", "ACTIVE", OURS, 2, 2, deployments, ())


CIRCUIT = "ECS deployment circuit breaker: tasks failed to start."

DECISIONS = [
    ("one PRIMARY COMPLETED", [deployment(OURS, "PRIMARY", "COMPLETED")], 30, Decision(RolloutOutcome.COMPLETED)),
    (
        "two deployments: old tasks still draining",
        [deployment(OURS, "PRIMARY", "IN_PROGRESS"), deployment(OLD, "ACTIVE", "COMPLETED")],
        30,
        Decision(RolloutOutcome.IN_PROGRESS),
    ),
    (
        "ours COMPLETED while the old one is still listed",
        [deployment(OURS, "PRIMARY", "COMPLETED"), deployment(OLD, "ACTIVE", "COMPLETED", running=1)],
        30,
        Decision(RolloutOutcome.IN_PROGRESS),
    ),
    ("ours still starting", [deployment(OURS, "PRIMARY", "", running=0)], 30, Decision(RolloutOutcome.IN_PROGRESS)),
    (
        "ours FAILED with a reason",
        [deployment(OLD, "PRIMARY", "IN_PROGRESS"), deployment(OURS, "ACTIVE", "FAILED", CIRCUIT)],
        30,
        Decision(RolloutOutcome.ROLLED_BACK, CIRCUIT),
    ),
    (
        "ours FAILED without a reason",
        [deployment(OURS, "PRIMARY", "FAILED")],
        30,
        Decision(RolloutOutcome.ROLLED_BACK, "the new deployment FAILED"),
    ),
    (
        "ours gone",
        [deployment(OLD, "PRIMARY", "COMPLETED")],
        30,
        Decision(RolloutOutcome.ROLLED_BACK, "the new deployment is no longer in the service"),
    ),
    (
        "primary is another task definition",
        [deployment(OLD, "PRIMARY", "IN_PROGRESS"), deployment(OURS, "ACTIVE", "IN_PROGRESS")],
        30,
        Decision(RolloutOutcome.ROLLED_BACK, "ECS made app-staging:3 PRIMARY again"),
    ),
    (
        "timeout while in progress",
        [deployment(OURS, "PRIMARY", "IN_PROGRESS"), deployment(OLD, "ACTIVE", "COMPLETED")],
        601,
        Decision(RolloutOutcome.TIMED_OUT, "not stable after 600s"),
    ),
    (
        "at the timeout exactly: one more look",
        [deployment(OURS, "PRIMARY", "IN_PROGRESS")],
        600,
        Decision(RolloutOutcome.IN_PROGRESS),
    ),
    (
        "completed after the timeout still counts",
        [deployment(OURS, "PRIMARY", "COMPLETED")],
        900,
        Decision(RolloutOutcome.COMPLETED),
    ),
    (
        "failed after the timeout is a rollback, not a timeout",
        [deployment(OURS, "PRIMARY", "FAILED", CIRCUIT)],
        900,
        Decision(RolloutOutcome.ROLLED_BACK, CIRCUIT),
    ),
]


@pytest.mark.parametrize(
    ("deployments", "elapsed", "expected"), [case[1:] for case in DECISIONS], ids=[case[0] for case in DECISIONS]
)
def test_decide(deployments: list[Deployment], elapsed: float, expected: Decision) -> None:
    assert decide(service(*deployments), OURS, elapsed, timeout=600) == expected


def test_deployments_line_names_each_deployment() -> None:
    state = service(deployment(OURS, "PRIMARY", "IN_PROGRESS", running=1), deployment(OLD, "ACTIVE", "COMPLETED"))
    assert deployments_line(state) == (
        "PRIMARY app-staging:4 IN_PROGRESS 1/2 running, ACTIVE app-staging:3 COMPLETED 2/2 running"
    )
    assert deployments_line(service()) == "service app has no deployment"


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        (RolloutOutcome.TIMED_OUT, "app: rollout not stable after 600s. Raise service.rollout_timeout"),
        (RolloutOutcome.ROLLED_BACK, "app: the new deployment failed and ECS rolled back: not stable after 600s"),
    ],
)
def test_require_completed_raises_for_anything_else(outcome: RolloutOutcome, message: str) -> None:
    require_completed(RolloutResult(RolloutOutcome.COMPLETED, 1.0), "app")
    with pytest.raises(RolloutError) as failed:
        require_completed(RolloutResult(outcome, 1.0, cause="not stable after 600s"), "app")
    assert str(failed.value).startswith(message)


# --- the watcher, against ECS in moto -----------------------------------------------------------------


def ecs_client(url: str, **config: Any) -> Any:
    return boto3.client(
        "ecs",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config) if config else None,
    )


@pytest.fixture()
def ecs_service(moto_url: str, request: pytest.FixtureRequest) -> tuple[Any, str, str]:
    """A service of its own per test (cluster named after the test): (client, cluster, task definition)."""
    ecs = ecs_client(moto_url)
    cluster = request.node.name.replace("[", "-").replace("]", "")[:200]
    ecs.create_cluster(clusterName=cluster)
    task_definition = ecs.register_task_definition(
        family=f"{cluster}-app", containerDefinitions=[{"name": "model", "image": "model:1", "memory": 512}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName="app", taskDefinition=task_definition, desiredCount=1)
    return ecs, cluster, task_definition


class CtrlC(FakeClock):
    """A fake clock whose next sleep is Ctrl-C, after running `before` (which may break things)."""

    def __init__(self, before: Any = None) -> None:
        super().__init__()
        self.before = before

    def sleep(self, seconds: float) -> None:
        if self.before is not None:
            self.before()
        raise KeyboardInterrupt


def test_the_watcher_times_out_on_the_fake_clock(ecs_service: tuple[Any, str, str]) -> None:
    ecs, cluster, task_definition = ecs_service
    clock = FakeClock()
    lines: list[str] = []
    result = RolloutWatcher(ecs, None, clock, lines.append, timeout=30, poll=5).wait(cluster, "app", task_definition)
    assert (result.outcome, result.cause) == (RolloutOutcome.TIMED_OUT, "not stable after 30s")
    assert clock.slept == [5] * 7 and result.seconds == 35
    assert lines == [f"  rollout in_progress: 0/1 new task(s) running ({s}s)" for s in range(0, 35, 5)]


def test_the_watcher_reports_a_deployment_that_is_gone(ecs_service: tuple[Any, str, str]) -> None:
    ecs, cluster, task_definition = ecs_service
    other = ecs.register_task_definition(
        family=f"{cluster}-app", containerDefinitions=[{"name": "model", "image": "model:2", "memory": 512}]
    )["taskDefinition"]["taskDefinitionArn"]
    clock = FakeClock()
    result = RolloutWatcher(ecs, None, clock, lambda _line: None).wait(cluster, "app", other)
    assert (result.outcome, result.cause) == (
        RolloutOutcome.ROLLED_BACK,
        "the new deployment is no longer in the service",
    )
    assert clock.slept == []


def test_ctrl_c_while_watching_says_what_the_deployments_do(ecs_service: tuple[Any, str, str]) -> None:
    ecs, cluster, task_definition = ecs_service
    watcher = RolloutWatcher(ecs, None, CtrlC(), lambda _line: None, environment="staging")
    with pytest.raises(Interrupted) as stopped:
        watcher.wait(cluster, "app", task_definition)
    assert stopped.value.exit_code == 130
    assert stopped.value.hint == "Run `pipeline status --env staging` to see where it stands."
    assert str(stopped.value).startswith(
        f"interrupted while watching the rollout of app (PRIMARY {cluster}-app:1 IN_PROGRESS 0/1 running); "
        "ECS carries on"
    )


def test_ctrl_c_while_watching_says_when_the_state_cannot_be_read(ecs_service: tuple[Any, str, str]) -> None:
    ecs, cluster, task_definition = ecs_service
    watcher = RolloutWatcher(ecs, None, FakeClock(), lambda _line: None)

    def lose_the_network() -> None:
        watcher.ecs = ecs_client("http://127.0.0.1:9", retries={"max_attempts": 1}, connect_timeout=2)

    watcher.clock = CtrlC(before=lose_the_network)
    with pytest.raises(Interrupted) as stopped:
        watcher.wait(cluster, "app", task_definition)
    assert stopped.value.exit_code == 130
    assert "(the deployments of app could not be read (describe service app: cannot reach AWS" in str(stopped.value)
