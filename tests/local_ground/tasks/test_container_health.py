"""The container health check (ContainerDefinition `healthCheck`) on the local ground: run inside the
container, its result is the container's and the task's healthStatus in DescribeTasks, and a service
stops a task whose essential container is UNHEALTHY ("Task failed container health checks"), which
counts toward the deployment circuit breaker."""

from __future__ import annotations

from typing import Any

import pytest

from local_ground.tasks.container_health import ContainerHealthCheck, HealthState, HealthStatus, task_health
from local_ground.tasks.timescale import TimeScale
from tests.local_ground.tasks.task_env import ROOT, SERVICE_STACK, Env, wait_for

HEALTHY, UNHEALTHY, UNKNOWN = HealthStatus.HEALTHY, HealthStatus.UNHEALTHY, HealthStatus.UNKNOWN
# The test images are FROM scratch with busybox alone (no /bin/sh), so the checks run busybox's sh.
PASSES = ["CMD", "/bin/busybox", "sh", "-c", "/bin/busybox wget -q -O /dev/null http://127.0.0.1:$PORT/health"]
FAILS = ["CMD", "/bin/busybox", "false"]


def test_health_check_defaults_and_commands_are_ecs_s() -> None:
    check = ContainerHealthCheck.of({"healthCheck": {"command": ["CMD-SHELL", "curl -f localhost"]}}, TimeScale(0.02))
    assert check is not None
    assert check.command == ("/bin/sh", "-c", "curl -f localhost")  # the container's shell
    # interval 30 s is an AWS duration (scaled); timeout 5 s and no start period bound the app's own work (real)
    assert (check.interval, check.timeout, check.retries, check.start_period) == (pytest.approx(0.6), 5.0, 3, 0.0)
    direct = ContainerHealthCheck.of({"healthCheck": {"command": ["CMD", "/bin/true"], "retries": 1}}, TimeScale(1))
    assert direct is not None and (direct.command, direct.retries) == (("/bin/true",), 1)
    assert ContainerHealthCheck.of({"name": "model"}, TimeScale(1)) is None


def test_a_container_is_unhealthy_after_retries_consecutive_failures() -> None:
    state = HealthState(retries=3, start_period=0, started=0.0)
    assert state.status is UNKNOWN  # until the first result
    assert [state.record(False, t) for t in (1, 2)] == [UNKNOWN, UNKNOWN]
    assert state.record(True, 3) is HEALTHY  # a pass resets the count
    assert [state.record(False, t) for t in (4, 5, 6)] == [HEALTHY, HEALTHY, UNHEALTHY]


def test_failures_within_the_start_period_do_not_count_but_a_pass_there_does() -> None:
    state = HealthState(retries=1, start_period=10, started=0.0)
    assert [state.record(False, t) for t in (1, 5, 9)] == [UNKNOWN] * 3
    assert state.record(False, 10) is UNHEALTHY  # the start period is over
    started_up = HealthState(retries=1, start_period=10, started=0.0)
    assert started_up.record(True, 2) is HEALTHY
    assert started_up.record(False, 3) is UNHEALTHY  # once it passed, every failure counts


@pytest.mark.parametrize(
    ("containers", "status"),
    [
        ([(True, HEALTHY), (True, None)], HEALTHY),  # every essential container with a check is HEALTHY
        ([(True, HEALTHY), (True, UNKNOWN)], UNKNOWN),
        ([(True, HEALTHY), (True, UNHEALTHY)], UNHEALTHY),
        ([(True, HEALTHY), (False, UNHEALTHY)], HEALTHY),  # non-essential containers do not count
        ([(True, None)], UNKNOWN),  # no health check
    ],
)
def test_the_task_health_follows_its_essential_containers(
    containers: list[tuple[bool, HealthStatus | None]], status: HealthStatus
) -> None:
    assert task_health(containers) is status


def _template(command: list[str] | None) -> str:
    """The staging service stack with a container health check (interval 5 s, the least ECS takes)."""
    text = (ROOT / "cloudformation" / "service-staging.yaml").read_text()
    if command is None:
        return text
    check = (
        f"          HealthCheck:\n            Command: {command!r}\n            Interval: 5\n            Retries: 2\n"
    )
    marker = "          Essential: true\n"
    assert text.count(marker) == 1
    return text.replace(marker, marker + check)


def _parameters(image_uri: str, version: str) -> list[dict[str, Any]]:
    return [
        {"ParameterKey": "ImageUri", "ParameterValue": image_uri},
        {"ParameterKey": "Version", "ParameterValue": version},
    ]


def _create(env: Env, image: str, check: list[str] | None) -> None:
    """The service stack at 1.0.0 with `check` as its container health check; returns once it completed."""
    env.create_registry_stack()
    env.client("cloudformation").create_stack(
        StackName=SERVICE_STACK,
        TemplateBody=_template(check),
        Parameters=_parameters(env.push(image, "1.0.0"), "1.0.0"),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    wait_for(lambda: env.service()["deployments"][0]["rolloutState"] == "COMPLETED", timeout=30)


def test_a_passing_container_health_check_makes_the_task_healthy(env: Env, images: dict[str, str]) -> None:
    _create(env, images["v1"], PASSES)
    [task] = env.tasks_of("RUNNING")
    assert task["healthStatus"] == "HEALTHY"
    assert [c["healthStatus"] for c in task["containers"]] == ["HEALTHY"]


def test_a_release_failing_its_container_health_check_is_rolled_back(env: Env, images: dict[str, str]) -> None:
    _create(env, images["v1"], None)
    [old] = env.tasks_of("RUNNING")
    assert old["healthStatus"] == "UNKNOWN"  # no container health check
    cloudformation = env.client("cloudformation")
    cloudformation.create_change_set(
        StackName=SERVICE_STACK,
        ChangeSetName="release-2-0-0",
        ChangeSetType="UPDATE",
        TemplateBody=_template(FAILS),
        Parameters=_parameters(env.push(images["v2"], "2.0.0"), "2.0.0"),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    cloudformation.execute_change_set(StackName=SERVICE_STACK, ChangeSetName="release-2-0-0")
    wait_for(lambda: not env.stack_status().endswith("_IN_PROGRESS"), timeout=60)
    assert env.stack_status() == "UPDATE_ROLLBACK_COMPLETE"
    assert [t["taskArn"] for t in env.tasks_of("RUNNING")] == [old["taskArn"]]
    stopped = env.tasks_of("STOPPED")
    assert len(stopped) >= 3  # the circuit breaker's threshold for a desired count of 1
    for task in stopped:  # the target group's check passed: the container's own check stopped them
        assert task["stoppedReason"] == "Task failed container health checks"
        assert task["healthStatus"] == "UNHEALTHY" and task["containers"][0]["healthStatus"] == "UNHEALTHY"
    messages = [e["message"] for e in env.service()["events"]]
    assert any("failed container health checks." in m for m in messages)
    assert any("deployment failed: tasks failed to start." in m for m in messages)
