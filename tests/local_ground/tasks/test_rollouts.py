"""Releases of the staging service stack decided by real tasks: real busybox images pushed through the
ECR bridge, run with buildah, health-checked through the target group, served by the ALB proxy."""

from __future__ import annotations

import ipaddress
import time

import pytest

from tests.client_loop import ClientLoop, get
from tests.local_ground.tasks.task_env import Env, released, wait_for


def rollout_state(env: Env) -> str:
    deployments = env.service()["deployments"]
    return str(deployments[0]["rolloutState"]) if len(deployments) == 1 else "IN_PROGRESS"


def test_healthy_release_completes_and_traffic_moves_only_to_passing_tasks(env: Env, images: dict[str, str]) -> None:
    started = time.monotonic()
    outputs = released(env, images)
    first_ready = time.monotonic() - started
    # Each load balancer has a loopback address of its own (127.X.Y.Z), its listeners their own ports there.
    host = ipaddress.ip_address(outputs["LoadBalancerDns"].rsplit(":", 1)[0])
    assert outputs["ServiceUrl"] == f"http://{outputs['LoadBalancerDns']}" and host.is_loopback
    assert get(outputs["ServiceUrl"]) == (200, "v1")
    old_task = env.tasks_of("RUNNING")[0]["taskArn"]

    v2 = env.push(images["v2"], "2.0.0")
    states_before_v2: list[list[str]] = []
    with ClientLoop(outputs["ServiceUrl"]) as client:
        env.update_image(v2, "2.0.0")
        while env.stack_status() == "UPDATE_IN_PROGRESS":
            states_before_v2.append(env.target_states())
            time.sleep(0.02)
        time.sleep(0.1)
    assert env.stack_status() == "UPDATE_COMPLETE"
    service = env.service()
    assert [d["rolloutState"] for d in service["deployments"]] == ["COMPLETED"]
    assert service["deployments"][0]["taskDefinition"].endswith(":2")
    assert client.errors() == []  # no request failed while tasks were replaced
    bodies = [body for _, _, body in client.answers]
    assert bodies[0] == "v1" and bodies[-1] == "v2"
    switch = bodies.index("v2")
    assert "v1" not in bodies[switch + 5 :]  # the old task drained: no new requests after the switch
    assert ["healthy", "initial"] in [sorted(s) for s in states_before_v2]  # the new target had to pass first
    stopped = env.tasks_of("STOPPED")
    assert [t["taskArn"] for t in stopped] == [old_task]
    assert stopped[0]["stoppedReason"].startswith("Scaling activity initiated by (deployment ecs-svc/")
    assert stopped[0]["lastStatus"] == "STOPPED" and stopped[0]["containers"][0]["exitCode"] == 143  # SIGTERM
    assert env.target_states() == ["healthy"]
    messages = [e["message"] for e in service["events"]]
    assert any("deregistered 1 targets in (target-group" in m for m in messages)
    print(f"first release COMPLETED {first_ready:.2f} s after the stack was created")


def test_unhealthy_release_fails_rolls_back_and_the_old_task_keeps_serving(env: Env, images: dict[str, str]) -> None:
    outputs = released(env, images)
    old_task = env.tasks_of("RUNNING")[0]["taskArn"]
    bad = env.push(images["unhealthy"], "2.0.0")
    with ClientLoop(outputs["ServiceUrl"]) as client:
        env.update_image(bad, "2.0.0")
        wait_for(lambda: not env.stack_status().endswith("_IN_PROGRESS"), timeout=30)
        wait_for(lambda: rollout_state(env) == "COMPLETED", timeout=10)  # the rollback deployment
    assert env.stack_status() == "UPDATE_ROLLBACK_COMPLETE"
    assert client.answers and client.errors() == []
    assert {body for _, _, body in client.answers} == {"v1"}

    service = env.service()
    assert service["taskDefinition"].endswith(":1")
    assert [t["taskArn"] for t in env.tasks_of("RUNNING")] == [old_task]
    stopped = env.tasks_of("STOPPED")
    assert len(stopped) >= 3  # the circuit breaker's threshold for a desired count of 1
    assert all(
        t["stoppedReason"] == f"Task failed ELB health checks in (target-group {outputs['TargetGroupArn']})"
        for t in stopped
    )
    messages = [e["message"] for e in service["events"]]
    assert any("failed ELB health checks in (target-group" in m for m in messages)
    assert any("deployment failed: tasks failed to start." in m for m in messages)
    assert any("rolling back to deployment" in m for m in messages)
    events = env.client("cloudformation").describe_stack_events(StackName="iris-classifier-staging")["StackEvents"]
    reasons = [e.get("ResourceStatusReason", "") for e in events if e["ResourceStatus"] == "UPDATE_FAILED"]
    assert any("ECS Deployment Circuit Breaker was triggered" in r for r in reasons)
    assert env.outputs()["ImageUri"].endswith(env.outputs()["ImageUri"].split("@")[1])


def test_crashing_release_fails_with_the_exit_reason(env: Env, images: dict[str, str]) -> None:
    released(env, images)
    env.update_image(env.push(images["crashing"], "2.0.0"), "2.0.0")
    wait_for(lambda: not env.stack_status().endswith("_IN_PROGRESS"), timeout=30)
    assert env.stack_status() == "UPDATE_ROLLBACK_COMPLETE"
    stopped = env.tasks_of("STOPPED")
    assert len(stopped) >= 3
    for task in stopped:
        assert task["stoppedReason"] == "Essential container in task exited"
        assert task["containers"][0]["exitCode"] == 3
        assert "model failed to load" in task["containers"][0]["reason"] or task["containers"][0]["reason"]


@pytest.mark.parametrize("desired", [2])
def test_scaling_the_service_starts_and_stops_tasks(env: Env, images: dict[str, str], desired: int) -> None:
    outputs = released(env, images)
    ecs = env.client("ecs")
    ecs.update_service(cluster=outputs["ClusterName"], service=outputs["ServiceName"], desiredCount=desired)
    wait_for(lambda: env.target_states() == ["healthy"] * desired)
    assert env.service()["runningCount"] == desired
    ecs.update_service(cluster=outputs["ClusterName"], service=outputs["ServiceName"], desiredCount=1)
    wait_for(lambda: len(env.tasks_of("RUNNING")) == 1 and env.target_states() == ["healthy"])
