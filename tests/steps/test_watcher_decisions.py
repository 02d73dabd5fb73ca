"""The rollout watcher's decisions, table-driven, as the peers test theirs: what one reading of the
service means (decide), why a failed rollout failed (rollout_cause, from this deployment only), and
the engine's watcher timing out at the environment's `rollout_timeout` on a fake clock."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from pipeline import config
from pipeline.aws.ecs import Deployment, ServiceEvent, ServiceState, StoppedTask
from pipeline.clock import FakeClock
from pipeline.errors import RolloutError
from pipeline.steps.context import Context
from pipeline.steps.roll import Decision, RolloutOutcome, decide, require_completed, rollout_cause
from tests.projects import ROOT

OURS = "arn:aws:ecs:us-east-1:123456789012:task-definition/app-staging:4"
OLD = "arn:aws:ecs:us-east-1:123456789012:task-definition/app-staging:3"
EARLIER = "arn:aws:ecs:us-east-1:123456789012:task-definition/app-staging:2"
ALARM = "ECS deployment alarms: alarm app-staging-5xx in ALARM rolling back to deploymentId ecs-svc/3."


def deployment(
    task_definition: str, status: str, rollout: str, reason: str = "", running: int = 2, ident: str = ""
) -> Deployment:
    return Deployment(
        ident or f"ecs-svc/{task_definition[-1]}", status, task_definition, 2, running, 0, 0, rollout, reason
    )


def service(*deployments: Deployment, events: tuple[str, ...] = ()) -> ServiceState:
    return ServiceState(
        "cluster", "app", "ACTIVE", OURS, 2, 2, deployments, tuple(ServiceEvent(None, m) for m in events)
    )


DECISIONS = [
    ("one PRIMARY COMPLETED", [deployment(OURS, "PRIMARY", "COMPLETED")], Decision(RolloutOutcome.COMPLETED)),
    (
        "two deployments: keep waiting",
        [deployment(OURS, "PRIMARY", "IN_PROGRESS"), deployment(OLD, "ACTIVE", "COMPLETED")],
        Decision(RolloutOutcome.IN_PROGRESS),
    ),
    (
        "ours FAILED with a reason",
        [deployment(OLD, "PRIMARY", "IN_PROGRESS"), deployment(OURS, "ACTIVE", "FAILED", "tasks failed to start.")],
        Decision(RolloutOutcome.ROLLED_BACK, "tasks failed to start."),
    ),
    (
        "ours gone",
        [deployment(OLD, "PRIMARY", "COMPLETED")],
        Decision(RolloutOutcome.ROLLED_BACK, "the new deployment is no longer in the service"),
    ),
    (
        # The stack update completed with our deployment steady; in the bake an alarm fires.
        "an alarm fails ours after the stack update completed",
        [deployment(OLD, "PRIMARY", "IN_PROGRESS", running=0), deployment(OURS, "ACTIVE", "FAILED", ALARM)],
        Decision(RolloutOutcome.ROLLED_BACK, ALARM),
    ),
    (
        "an alarm fails ours, still PRIMARY, rollback not yet started",
        [deployment(OURS, "PRIMARY", "FAILED", ALARM)],
        Decision(RolloutOutcome.ROLLED_BACK, ALARM),
    ),
]


@pytest.mark.parametrize(("deployments", "expected"), [c[1:] for c in DECISIONS], ids=[c[0] for c in DECISIONS])
def test_decide(deployments: list[Deployment], expected: Decision) -> None:
    assert decide(service(*deployments), OURS, 30, timeout=600) == expected


EARLIER_FAILURE = "(service app) (deployment ecs-svc/2) deployment failed: tasks failed to start."
EARLIER_ROLLBACK = "(service app) rolling back to deployment ecs-svc/1."  # ECS's circuit breaker, an hour ago
OUR_FAILURE = "(service app) (deployment ecs-svc/4) deployment failed: alarm detected."


def stopped(task_definition: str, reason: str) -> StoppedTask:
    return StoppedTask(
        f"arn:aws:ecs:us-east-1:123456789012:task/cluster/{abs(hash(reason))}", task_definition, reason, ()
    )


CAUSES = [
    (
        "ours FAILED: its own reason, then its own stopped tasks",
        service(deployment(OLD, "PRIMARY", "IN_PROGRESS"), deployment(OURS, "ACTIVE", "FAILED", ALARM)),
        "",
        [stopped(OURS, "Task failed ELB health checks"), stopped(EARLIER, "Essential container exited")],
        f"{ALARM}; task stopped: Task failed ELB health checks",
    ),
    (
        "ours gone: the event naming our id, not an earlier deployment's",
        service(deployment(OLD, "PRIMARY", "COMPLETED"), events=(OUR_FAILURE, EARLIER_FAILURE)),
        "ecs-svc/4",
        [],
        OUR_FAILURE,
    ),
    (
        "ours gone, only an earlier deployment failed: no borrowed cause",
        service(deployment(OLD, "PRIMARY", "COMPLETED"), events=(EARLIER_ROLLBACK, EARLIER_FAILURE)),
        "ecs-svc/4",
        [stopped(EARLIER, "Essential container in task exited")],
        "",
    ),
    (
        "ours listed without a reason: its event by its id",
        service(
            deployment(OLD, "PRIMARY", "IN_PROGRESS"),
            deployment(OURS, "ACTIVE", "FAILED", ident="ecs-svc/4"),
            events=(EARLIER_FAILURE, OUR_FAILURE),
        ),
        "",
        [],
        OUR_FAILURE,
    ),
]


@pytest.mark.parametrize(
    ("state", "deployment_id", "tasks", "cause"), [c[1:] for c in CAUSES], ids=[c[0] for c in CAUSES]
)
def test_the_cause_comes_from_this_deployment_only(
    state: ServiceState, deployment_id: str, tasks: list[StoppedTask], cause: str
) -> None:
    assert rollout_cause(state, OURS, deployment_id, tasks) == cause


def test_the_engine_watcher_times_out_at_the_environments_rollout_timeout(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's deployments never progress, as a rollout that never stabilises: TIMED_OUT at exactly
    `rollout_timeout` on the fake clock (one more look at the deadline, then the verdict)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = config.load(ROOT / "pipeline.toml")
    rollout_timeout = settings.environment("staging").service.rollout_timeout
    ecs: Any = boto3.client("ecs", endpoint_url=moto_url, region_name="us-east-1")
    ecs.create_cluster(clusterName="timeout-cluster")
    task_definition = ecs.register_task_definition(
        family="timeout-app", containerDefinitions=[{"name": "model", "image": "model:1", "memory": 512}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="timeout-cluster", serviceName="app", taskDefinition=task_definition, desiredCount=1)
    clock = FakeClock()
    ctx = Context(settings, clock, lambda _line: None, poll=30.0)
    result = ctx.watcher("staging").wait("timeout-cluster", "app", task_definition)
    assert result.outcome is RolloutOutcome.TIMED_OUT
    assert result.cause == f"not stable after {rollout_timeout}s"
    assert rollout_timeout < result.seconds <= rollout_timeout + 30
    with pytest.raises(RolloutError, match=f"app: rollout not stable after {rollout_timeout}s"):
        require_completed(result, "app")
