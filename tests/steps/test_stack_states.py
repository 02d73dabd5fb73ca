"""The Deployer on stacks in the states the peers test, made for real on the local AWS (moto with the
ground's extensions, deployments moved by hand as ECS would move them) and waited on a fake clock."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local_ground.moto_extensions import ServiceDeployments, set_task_runner
from local_ground.moto_extensions.deployments import Deployment
from pipeline.aws import cloudformation as cfn
from pipeline.clock import FakeClock
from pipeline.errors import DeployError
from pipeline.steps.deploy import Deployer, DeployOutcome
from tests.local_ground.moto_stack import IMAGE_1, IMAGE_2, STACK, Clients, local_aws, service_template
from tests.local_ground.test_load_balancers import protected_template


class HandMovedDeployments:
    """A task runner that runs nothing: ECS's progress is made by the clock below."""

    def deployment_started(self, deployments: ServiceDeployments, deployment: Deployment) -> None:
        pass


@pytest.fixture()
def c() -> Iterator[Clients]:
    with local_aws() as clients:
        set_task_runner(HandMovedDeployments())
        yield clients
    set_task_runner(None)


class EcsSettles(FakeClock):
    """A fake clock on which, while the pipeline waits, ECS brings the service's deployment in
    progress to a steady state (as it would in that time), unless `stuck`."""

    def __init__(self, c: Clients, stuck: bool = False) -> None:
        super().__init__()
        self.c, self.stuck = c, stuck

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self.stuck:
            return
        cluster, service = self.c.cluster_and_service()
        deployments = self.c.ecs.describe_services(cluster=cluster, services=[service])["services"][0]["deployments"]
        if any(d["status"] == "PRIMARY" and d["rolloutState"] == "IN_PROGRESS" for d in deployments):
            self.c.aws.complete_deployment(cluster, service)


def deployer(c: Clients, lines: list[str], clock: FakeClock | None = None, **options: Any) -> Deployer:
    return Deployer(c.cfn, clock or EcsSettles(c), echo=lines.append, poll=5.0, **options)


def body(template: dict[str, Any] | None = None) -> str:
    return json.dumps(template or service_template())


def image_of(c: Clients) -> str:
    task_definition = c.service()["taskDefinition"]
    return str(
        c.ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]["containerDefinitions"][0][
            "image"
        ]
    )


def created(c: Clients) -> tuple[str, str]:
    c.deploy("CREATE", IMAGE_1, "create")
    cluster, service = c.cluster_and_service()
    c.aws.complete_deployment(cluster, service)
    assert c.stack()["StackStatus"] == "CREATE_COMPLETE"
    return cluster, service


def test_update_rollback_failed_is_continued_then_updated(c: Clients) -> None:
    cluster, service = created(c)
    c.deploy("UPDATE", IMAGE_2, "update")
    c.aws.fail_deployment(cluster, service)  # the circuit breaker: ECS starts restoring IMAGE_1 ...
    c.aws.fail_deployment(cluster, service)  # ... and that restore fails too
    assert c.stack()["StackStatus"] == "UPDATE_ROLLBACK_FAILED"
    lines: list[str] = []
    result = deployer(c, lines).deploy(STACK, body(), {"Image": IMAGE_2})
    assert f"{STACK}: UPDATE_ROLLBACK_FAILED; continuing the rollback first" in lines
    assert result.outcome is DeployOutcome.UPDATED
    assert c.stack()["StackStatus"] == "UPDATE_COMPLETE"
    assert image_of(c) == IMAGE_2


def test_rollback_failed_is_refused_with_a_hint(c: Clients) -> None:
    c.deploy("CREATE", IMAGE_1, "create", protected_template())
    c.aws.fail_deployment(*c.cluster_and_service())
    assert c.stack()["StackStatus"] == "ROLLBACK_FAILED"
    with pytest.raises(DeployError) as refused:
        deployer(c, []).deploy(STACK, body(protected_template()), {"Image": IMAGE_2})
    assert str(refused.value).startswith(f"{STACK} is ROLLBACK_FAILED and cannot be updated: ")
    assert "deletion protection is enabled" in str(refused.value)
    assert refused.value.hint is not None and "delete the stack by hand, then deploy again" in refused.value.hint
    assert c.cfn.list_change_sets(StackName=STACK)["Summaries"] == [
        s for s in c.cfn.list_change_sets(StackName=STACK)["Summaries"] if s["ChangeSetName"] == "create"
    ], "no change set was made"


@pytest.mark.filterwarnings("ignore:Exception\\(DeletionProtectionRefused\\)")
def test_delete_failed_is_refused_with_a_hint(c: Clients) -> None:
    c.deploy("CREATE", IMAGE_1, "create", protected_template())
    c.aws.complete_deployment(*c.cluster_and_service())
    c.cfn.delete_stack(StackName=STACK)
    assert c.stack()["StackStatus"] == "DELETE_FAILED"
    with pytest.raises(DeployError, match=f"{STACK} is DELETE_FAILED and cannot be updated: ") as refused:
        deployer(c, []).deploy(STACK, body(protected_template()), {"Image": IMAGE_2})
    assert refused.value.hint is not None and "delete the stack by hand" in refused.value.hint


def test_rollback_complete_is_deleted_and_created_again(c: Clients) -> None:
    c.deploy("CREATE", IMAGE_1, "create")
    c.aws.fail_deployment(*c.cluster_and_service())
    assert c.stack()["StackStatus"] == "ROLLBACK_COMPLETE"
    lines: list[str] = []
    result = deployer(c, lines).deploy(STACK, body(), {"Image": IMAGE_2})
    assert f"{STACK}: ROLLBACK_COMPLETE (its first create failed); deleting the empty stack before creating it" in lines
    assert result.outcome is DeployOutcome.CREATED
    assert c.stack()["StackStatus"] == "CREATE_COMPLETE"
    assert image_of(c) == IMAGE_2


def test_wait_on_a_busy_stack_waits_then_proceeds(c: Clients) -> None:
    created(c)
    c.deploy("UPDATE", IMAGE_2, "someone-else")  # still waiting for ECS
    assert c.stack()["StackStatus"] == "UPDATE_IN_PROGRESS"
    lines: list[str] = []
    clock = EcsSettles(c)
    result = deployer(c, lines, clock, wait_if_busy=True).deploy(STACK, body(), {"Image": IMAGE_1})
    waited = lines.index(f"{STACK}: UPDATE_IN_PROGRESS, waiting for it to settle")
    assert waited < lines.index(f"{STACK}: executing update"), "the update starts only after the other one"
    assert result.outcome is DeployOutcome.UPDATED
    assert image_of(c) == IMAGE_1
    assert clock.slept, "it waited on the clock"


def test_the_stack_wait_times_out_on_its_own_deadline(c: Clients) -> None:
    created(c)
    clock = EcsSettles(c, stuck=True)  # ECS never settles the new deployment
    with pytest.raises(DeployError) as timed_out:
        deployer(c, [], clock, timeout=300.0).deploy(STACK, body(), {"Image": IMAGE_2})
    assert str(timed_out.value).startswith(f"{STACK} still UPDATE_IN_PROGRESS after 300s")
    assert timed_out.value.hint == "CloudFormation goes on by itself; check `pipeline status` later."
    assert 300 < sum(clock.slept) <= 305
    assert c.stack()["StackStatus"] == "UPDATE_IN_PROGRESS", "the pipeline stopped waiting; nothing was cancelled"


def test_a_change_set_is_read_across_pages(c: Clients) -> None:
    """The ground pages DescribeChangeSet (change_sets_described_in_pages); the preview lists every change."""
    template = service_template()
    result = deployer(c, []).deploy(STACK, body(template), {"Image": IMAGE_1}, execute=False)
    assert result.outcome is DeployOutcome.PREVIEWED
    assert sorted(ch.logical_id for ch in result.changes) == sorted(template["Resources"])
    assert len(result.changes) > 10, "more than one page"


def test_describe_change_set_follows_next_token(c: Clients) -> None:
    made = c.cfn.create_change_set(
        StackName=STACK,
        ChangeSetName="big",
        ChangeSetType="CREATE",
        TemplateBody=body(),
        Parameters=[{"ParameterKey": "Image", "ParameterValue": IMAGE_1}],
    )
    first = c.cfn.describe_change_set(ChangeSetName=made["Id"], StackName=STACK)
    assert len(first["Changes"]) == 10 and first["NextToken"]
    read: Callable[..., Any] = cfn.describe_change_set
    assert len(read(c.cfn, STACK, made["Id"]).changes) == len(service_template()["Resources"])


def protectable_template() -> dict[str, Any]:
    """The test service with the pipeline's DeletionProtection parameter on its load balancer."""
    template = service_template()
    template["Parameters"]["DeletionProtection"] = {
        "Type": "String",
        "AllowedValues": ["true", "false"],
        "Default": "true",
    }
    template["Resources"]["Alb"]["Properties"]["LoadBalancerAttributes"] = [
        {"Key": "deletion_protection.enabled", "Value": {"Ref": "DeletionProtection"}}
    ]
    return template


def protection(c: Clients) -> str:
    balancer = c.elbv2.describe_load_balancers()["LoadBalancers"][0]["LoadBalancerArn"]
    attributes = c.elbv2.describe_load_balancer_attributes(LoadBalancerArn=balancer)["Attributes"]
    return next(a["Value"] for a in attributes if a["Key"] == "deletion_protection.enabled")


@pytest.mark.parametrize(
    ("on_create", "after_failure"), [("true", "ROLLBACK_FAILED"), ("false", "ROLLBACK_COMPLETE")], ids=str
)
def test_a_failed_first_create_rolls_back_completely_only_unprotected(
    c: Clients, on_create: str, after_failure: str
) -> None:
    """Why the pipeline creates the stack with DeletionProtection=false (steps/protection.py)."""
    c.cfn.create_change_set(
        StackName=STACK,
        ChangeSetName="create",
        ChangeSetType="CREATE",
        TemplateBody=body(protectable_template()),
        Parameters=[
            {"ParameterKey": "Image", "ParameterValue": IMAGE_1},
            {"ParameterKey": "DeletionProtection", "ParameterValue": on_create},
        ],
    )
    c.cfn.get_waiter("change_set_create_complete").wait(
        StackName=STACK, ChangeSetName="create", WaiterConfig={"Delay": 0}
    )
    c.cfn.execute_change_set(StackName=STACK, ChangeSetName="create")
    c.aws.fail_deployment(*c.cluster_and_service())
    assert c.stack()["StackStatus"] == after_failure


def test_the_next_create_runs_unprotected_then_turns_protection_on(c: Clients) -> None:
    from pipeline.steps.protection import protect_once_created

    lines: list[str] = []
    d = deployer(c, lines)
    parameters = {"Image": IMAGE_2, "DeletionProtection": "false"}
    created = d.deploy(STACK, body(protectable_template()), parameters)
    assert protection(c) == "false"
    result = protect_once_created(d, STACK, body(protectable_template()), parameters, created)
    assert result.outcome is DeployOutcome.CREATED
    assert f"{STACK}: created; turning on the load balancer's deletion protection" in lines
    assert protection(c) == "true"
    assert {"ParameterKey": "DeletionProtection", "ParameterValue": "true"} in c.stack()["Parameters"]
    assert result.stack is not None and "ClusterName" in result.stack.outputs
