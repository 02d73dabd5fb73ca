"""A CANARY service on the local ground: the new revision in the other target group, the test listener on
its own port, PAUSE hooks answered through ContinueServiceDeployment, production moved by the rule's
weights, and a rollback that only shifts traffic back (the old tasks never stopped)."""

from __future__ import annotations

import tomllib
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline import config
from pipeline.templates import render
from pipeline.templates.service import build_service
from tests.conftest import CANARY_PRODUCTION
from tests.local_ground.tasks.task_env import ROOT, SERVICE_STACK, Env, wait_for

CANARY = {**CANARY_PRODUCTION, "canary_percent": 50.0, "canary_bake_minutes": 1, "bake_minutes": 1}


def canary_template(**overrides: Any) -> str:
    raw: dict[str, Any] = tomllib.loads((ROOT / "pipeline.toml").read_text())
    raw["environments"]["staging"].update({**CANARY, **overrides})
    return render(build_service(config.parse(raw, root=ROOT), "staging"))


def create(env: Env, body: str, image: str) -> dict[str, str]:
    env.client("cloudformation").create_stack(
        StackName=SERVICE_STACK,
        TemplateBody=body,
        Parameters=[
            {"ParameterKey": "ImageUri", "ParameterValue": image},
            {"ParameterKey": "Version", "ParameterValue": "1.0.0"},
        ],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    outputs = env.outputs()
    wait_for(lambda: get(outputs["ServiceUrl"]) == "v1", timeout=60)
    return outputs


def get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode().strip())
    except OSError as error:
        return f"error: {error}"


def listener_9000(outputs: dict[str, str]) -> str:
    """The test listener: the balancer's own address, the listener's port."""
    return outputs["ServiceUrl"].rsplit(":", 1)[0] + ":9000"


class Deployments:
    def __init__(self, env: Env, outputs: dict[str, str]) -> None:
        self.ecs, self.outputs = env.client("ecs"), outputs

    def current(self) -> dict[str, Any] | None:
        listed = self.ecs.list_service_deployments(
            cluster=self.outputs["ClusterName"], service=self.outputs["ServiceName"]
        )["serviceDeployments"]
        if not listed:
            return None
        found = self.ecs.describe_service_deployments(serviceDeploymentArns=[listed[0]["serviceDeploymentArn"]])
        return dict(found["serviceDeployments"][0])

    def paused(self) -> dict[str, Any] | None:
        current = self.current()
        if current is None:
            return None
        hooks = [h for h in current.get("lifecycleHookDetails", []) if h["status"] == "AWAITING_ACTION"]
        return {**current, "hook": hooks[0]["hookId"]} if hooks else None

    def answer(self, action: str = "CONTINUE") -> dict[str, Any]:
        paused = wait_for(self.paused, timeout=60)
        self.ecs.continue_service_deployment(
            serviceDeploymentArn=paused["serviceDeploymentArn"], hookId=paused["hook"], action=action
        )
        wait_for(
            lambda: (
                (c := self.current()) is not None
                and all(
                    h["hookId"] != paused["hook"] or h["status"] != "AWAITING_ACTION" for h in c["lifecycleHookDetails"]
                )
            )
        )
        return paused

    def ended(self) -> dict[str, Any]:
        return wait_for(
            lambda: (
                (c := self.current()) is not None
                and c["status"] in ("SUCCESSFUL", "ROLLBACK_SUCCESSFUL", "STOPPED")
                and c
            ),
            timeout=60,
        )


@pytest.fixture()
def released(env: Env, images: dict[str, str]) -> tuple[dict[str, str], Deployments]:
    env.create_registry_stack()
    outputs = create(env, canary_template(), env.push(images["v1"], "1.0.0"))
    env.update_image(env.push(images["v2"], "2.0.0"), "2.0.0")
    return outputs, Deployments(env, outputs)


def test_a_canary_waits_at_the_test_listener_then_shifts_production_and_completes(
    env: Env, released: tuple[dict[str, str], Deployments]
) -> None:
    outputs, deployments = released
    paused = wait_for(deployments.paused, timeout=60)
    assert paused["lifecycleStage"] == "POST_TEST_TRAFFIC_SHIFT"
    assert get(listener_9000(outputs)) == "v2"  # the new revision answers the test listener...
    assert {get(outputs["ServiceUrl"]) for _ in range(20)} == {"v1"}  # ...and no production request
    assert paused["targetServiceRevision"]["requestedProductionTrafficWeight"] == 0
    deployments.answer()  # the gate passed
    before_canary = deployments.answer()  # before the first production shift
    assert before_canary["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT"
    decision = wait_for(deployments.paused, timeout=60)
    assert decision["targetServiceRevision"]["requestedProductionTrafficWeight"] == 50
    assert {get(outputs["ServiceUrl"]) for _ in range(40)} == {"v1", "v2"}  # the canary takes its share
    deployments.answer()
    done = deployments.ended()
    assert done["status"] == "SUCCESSFUL"
    wait_for(lambda: not env.stack_status().endswith("_IN_PROGRESS"), timeout=60)
    assert env.stack_status() == "UPDATE_COMPLETE"
    assert {get(outputs["ServiceUrl"]) for _ in range(20)} == {"v2"}
    assert [t["taskDefinitionArn"].endswith(":2") for t in env.tasks_of("RUNNING")] == [True]
    # The service's history lists both: the canary, and the deployment that created the service.
    history = deployments.ecs.list_service_deployments(cluster=outputs["ClusterName"], service=outputs["ServiceName"])[
        "serviceDeployments"
    ]
    assert [d["status"] for d in history] == ["SUCCESSFUL", "SUCCESSFUL"]
    assert history[0]["serviceDeploymentArn"] == done["serviceDeploymentArn"]  # newest first
    assert history[0]["createdAt"] > history[1]["createdAt"]


def test_a_rollback_at_the_gate_shifts_nothing_and_keeps_the_old_tasks(
    env: Env, released: tuple[dict[str, str], Deployments]
) -> None:
    outputs, deployments = released
    old_tasks = {t["taskArn"] for t in env.tasks_of("RUNNING") if t["taskDefinitionArn"].endswith(":1")}
    deployments.answer("ROLLBACK")
    done = deployments.ended()
    assert done["status"] == "ROLLBACK_SUCCESSFUL"
    assert "rolled back at POST_TEST_TRAFFIC_SHIFT" in done["rollback"]["reason"]
    wait_for(lambda: not env.stack_status().endswith("_IN_PROGRESS"), timeout=60)
    assert env.stack_status() == "UPDATE_ROLLBACK_COMPLETE"
    assert {get(outputs["ServiceUrl"]) for _ in range(20)} == {"v1"}
    assert get(listener_9000(outputs)) == "v1"
    assert old_tasks <= {t["taskArn"] for t in env.tasks_of("RUNNING")}  # never replaced
    with pytest.raises(ClientError, match="ConflictException"):
        env.client("ecs").stop_service_deployment(serviceDeploymentArn=done["serviceDeploymentArn"])


def test_a_hook_nobody_answers_rolls_back_when_it_times_out(env: Env, images: dict[str, str]) -> None:
    env.create_registry_stack()
    outputs = create(env, canary_template(hook_timeout_minutes=1), env.push(images["v1"], "1.0.0"))
    env.update_image(env.push(images["v2"], "2.0.0"), "2.0.0")
    done = Deployments(env, outputs).ended()
    assert done["status"] == "ROLLBACK_SUCCESSFUL"
    assert [h["status"] for h in done["lifecycleHookDetails"]] == ["TIMED_OUT"]
    assert {get(outputs["ServiceUrl"]) for _ in range(10)} == {"v1"}


def test_stop_service_deployment_rolls_back_and_unknown_deployments_are_refused(
    env: Env, released: tuple[dict[str, str], Deployments]
) -> None:
    outputs, deployments = released
    paused = wait_for(deployments.paused, timeout=60)
    ecs = env.client("ecs")
    with pytest.raises(ClientError, match="ServiceDeploymentNotFoundException"):
        ecs.stop_service_deployment(serviceDeploymentArn=paused["serviceDeploymentArn"] + "x")
    with pytest.raises(ClientError, match="InvalidParameterException"):
        ecs.continue_service_deployment(serviceDeploymentArn=paused["serviceDeploymentArn"], hookId="ecs-pause-nope")
    ecs.stop_service_deployment(serviceDeploymentArn=paused["serviceDeploymentArn"], stopType="ROLLBACK")
    assert deployments.ended()["status"] == "ROLLBACK_SUCCESSFUL"
    assert {get(outputs["ServiceUrl"]) for _ in range(10)} == {"v1"}


@pytest.mark.parametrize(
    ("strategy", "settings", "production_weights"),
    [
        # LINEAR: equal steps of stepPercent, a decision before each (the hook at PRE_PRODUCTION_TRAFFIC_SHIFT).
        ("linear", {"linear_step_percent": 50.0, "linear_step_bake_minutes": 1}, [0.0, 50.0]),
        # BLUE_GREEN: all production traffic in one shift, after the test listener's turn.
        ("blue_green", {}, [0.0]),
    ],
)
def test_linear_and_blue_green_shift_production_in_their_steps_and_complete(
    env: Env, images: dict[str, str], strategy: str, settings: dict[str, Any], production_weights: list[float]
) -> None:
    env.create_registry_stack()
    outputs = create(env, canary_template(strategy=strategy, **settings), env.push(images["v1"], "1.0.0"))
    env.update_image(env.push(images["v2"], "2.0.0"), "2.0.0")
    deployments = Deployments(env, outputs)
    assert wait_for(deployments.paused, timeout=60)["lifecycleStage"] == "POST_TEST_TRAFFIC_SHIFT"
    deployments.answer()  # the gate passed
    seen = []
    for _ in production_weights:
        paused = wait_for(deployments.paused, timeout=60)
        assert paused["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT"
        seen.append(paused["targetServiceRevision"]["requestedProductionTrafficWeight"])
        deployments.answer()
    assert seen == production_weights
    done = deployments.ended()
    assert done["status"] == "SUCCESSFUL"
    assert {get(outputs["ServiceUrl"]) for _ in range(20)} == {"v2"}
