"""Deleting the service stack stops the service's tasks first (deregistered, drained, stopped; their
network interfaces deleted, as Fargate does), then the network and the VPC go; moto 5.2.5 leaves
the service ACTIVE with its tasks running after the stack is gone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_ground.aws import LocalAWS
from local_ground.ecr_bridge import EcrRegistryBridge
from local_ground.moto_extensions import all_extensions
from local_ground.registry import LocalRegistry
from local_ground.tasks import EcsTasksRunForReal
from tests.local_ground.tasks.task_env import SCALE, SERVICE_STACK, Env, released, wait_for

NAME = "stack_deletion_stops_ecs_services"


def deleted(env: Env) -> str:
    """Delete the service stack (its load balancer's deletion protection lifted first, as `pipeline destroy`
    does); its final status (DELETE_COMPLETE once it is gone)."""
    elbv2 = env.client("elbv2")
    for balancer in elbv2.describe_load_balancers()["LoadBalancers"]:
        elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=balancer["LoadBalancerArn"],
            Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}],
        )
    cloudformation = env.client("cloudformation")
    cloudformation.delete_stack(StackName=SERVICE_STACK)

    def settled() -> str:
        found = [s for s in cloudformation.describe_stacks()["Stacks"] if s["StackName"] == SERVICE_STACK]
        status = found[0]["StackStatus"] if found else "DELETE_COMPLETE"
        return "" if status.endswith("_IN_PROGRESS") else status

    return str(wait_for(settled, timeout=60))


def test_the_tasks_stop_before_the_network_goes(env: Env, images: dict[str, str]) -> None:
    outputs = released(env, images)
    vpcs_before = {v["VpcId"] for v in env.client("ec2").describe_vpcs()["Vpcs"]}
    task = env.tasks_of("RUNNING")[0]
    eni = next(d["value"] for a in task["attachments"] for d in a["details"] if d["name"] == "networkInterfaceId")

    assert deleted(env) == "DELETE_COMPLETE"
    assert env.tasks.live_task_pids() == []
    ecs = env.client("ecs")
    stopped = ecs.describe_tasks(cluster=outputs["ClusterName"], tasks=[task["taskArn"]])["tasks"]
    assert stopped and stopped[0]["lastStatus"] == "STOPPED" and stopped[0]["stoppedReason"] == "Service deleted"
    assert eni not in {
        n["NetworkInterfaceId"] for n in env.client("ec2").describe_network_interfaces()["NetworkInterfaces"]
    }
    assert len({v["VpcId"] for v in env.client("ec2").describe_vpcs()["Vpcs"]}) == len(vpcs_before) - 1


@pytest.fixture
def without_it(registry: LocalRegistry) -> Iterator[Env]:
    bridge = EcrRegistryBridge(registry)
    tasks = EcsTasksRunForReal(bridge, time_scale=SCALE)
    with LocalAWS(extensions=[*all_extensions(without=(NAME,)), bridge, tasks]) as aws:
        yield Env(aws, bridge, tasks)
        tasks.uninstall()
    assert tasks.live_task_pids() == []


def test_the_gap_without_it(without_it: Env, images: dict[str, str]) -> None:
    released(without_it, images)
    assert deleted(without_it) == "DELETE_COMPLETE"
    assert without_it.tasks.live_task_pids(), "the service's task still runs after its stack is gone"
