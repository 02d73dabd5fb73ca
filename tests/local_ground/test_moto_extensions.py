"""Each moto extension reproduces one AWS behaviour; each test also shows the gap without it.

Stacks are made as the pipeline makes them: create_change_set (CREATE/UPDATE), execute.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_ground.moto_extensions import inject_throttling
from tests.local_ground.moto_stack import (
    IMAGE_1,
    IMAGE_2,
    STACK,
    Clients,
    local_aws,
    service_template,
    shows_gap_without,
)


def test_change_set_stacks_report_outputs() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create")
        stack = c.stack()
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        cluster, _ = c.cluster_and_service()
        assert outputs["ClusterName"] == cluster
        assert outputs["Url"].startswith("http://")
        assert outputs["ServiceName"] == c.service()["serviceName"]

    shows_gap_without("change_set_stacks_report_outputs", check)


def test_change_set_stack_update_records_new_parameters() -> None:
    with local_aws() as c:
        c.deploy("CREATE", IMAGE_1, "create")
        c.deploy("UPDATE", IMAGE_2, "update")
        c.aws.complete_deployment(*c.cluster_and_service())
        params = {p["ParameterKey"]: p["ParameterValue"] for p in c.stack()["Parameters"]}
        assert params["Image"] == IMAGE_2
        # The same image again is "no changes", as on AWS.
        c.cfn.create_change_set(
            StackName=STACK,
            ChangeSetName="same",
            ChangeSetType="UPDATE",
            TemplateBody=json.dumps(service_template()),
            Parameters=[{"ParameterKey": "Image", "ParameterValue": IMAGE_2}],
        )
        assert c.cfn.describe_change_set(StackName=STACK, ChangeSetName="same")["Status"] == "FAILED"


@pytest.mark.filterwarnings("ignore:Tried to parse AWS::ApplicationAutoScaling")
def test_autoscaling_resources_from_templates() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create")
        cluster, service = c.cluster_and_service()
        resource_id = f"service/{cluster}/{service.split('/')[-1]}"
        targets = c.autoscaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
        assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(resource_id, 1, 4)]
        policies = {
            p["PolicyName"]: p
            for p in c.autoscaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
        }
        assert set(policies) == {"cpu", "requests"}
        cpu = policies["cpu"]["TargetTrackingScalingPolicyConfiguration"]
        assert cpu["TargetValue"] == 60.0 and cpu["ScaleOutCooldown"] == 30
        spec = policies["requests"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
        assert spec["PredefinedMetricType"] == "ALBRequestCountPerTarget"
        assert spec["ResourceLabel"].startswith("app/") and "/targetgroup/" in spec["ResourceLabel"]
        resources = c.cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        by_id = {r["LogicalResourceId"]: r for r in resources}
        assert by_id["ScalableTarget"]["ResourceType"] == "AWS::ApplicationAutoScaling::ScalableTarget"
        assert by_id["ScalableTarget"]["PhysicalResourceId"] == f"{resource_id}|ecs:service:DesiredCount|ecs"
        assert by_id["CpuPolicy"]["PhysicalResourceId"] == policies["cpu"]["PolicyARN"]
        c.cfn.delete_stack(StackName=STACK)
        assert c.autoscaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
        assert c.autoscaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"] == []

    shows_gap_without("autoscaling_resources_from_templates", check)


def test_ecs_service_keeps_template_configuration() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create")
        service = c.service()
        target_group = c.elbv2.describe_target_groups()["TargetGroups"][0]["TargetGroupArn"]
        assert service["loadBalancers"] == [
            {"containerName": "model", "containerPort": 8080, "targetGroupArn": target_group}
        ]
        assert service["deploymentConfiguration"] == {
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "alarms": {"alarmNames": ["model-5xx"], "enable": True, "rollback": True},
        }
        assert service["healthCheckGracePeriodSeconds"] == 30
        assert service["launchType"] == "FARGATE"
        vpc = service["networkConfiguration"]["awsvpcConfiguration"]
        assert vpc["assignPublicIp"] == "ENABLED" and len(vpc["subnets"]) == 2

    shows_gap_without("ecs_service_keeps_template_configuration", check)


def test_ecs_service_with_capacity_providers_reports_no_launch_type() -> None:
    template = service_template()
    props = template["Resources"]["Service"]["Properties"]
    del props["LaunchType"]
    props["CapacityProviderStrategy"] = [
        {"CapacityProvider": "FARGATE", "Weight": 1, "Base": 1},
        {"CapacityProvider": "FARGATE_SPOT", "Weight": 3},
    ]
    with local_aws() as c:
        c.deploy("CREATE", IMAGE_1, "create", template)
        service = c.service()
        assert "launchType" not in service
        assert service["capacityProviderStrategy"][0] == {"capacityProvider": "FARGATE", "weight": 1, "base": 1}


def test_ecs_task_definition_keeps_template_configuration() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create")
        task_definition = c.ecs.describe_task_definition(taskDefinition=c.service()["taskDefinition"])["taskDefinition"]
        assert task_definition["networkMode"] == "awsvpc"
        assert task_definition["cpu"] == "256" and task_definition["memory"] == "512"
        assert task_definition["requiresCompatibilities"] == ["FARGATE"]
        assert task_definition["containerDefinitions"][0]["image"] == IMAGE_1

    shows_gap_without("ecs_task_definition_keeps_template_configuration", check)


def _deployments(c: Clients) -> list[tuple[str, str, str]]:
    return [(d["status"], d["taskDefinition"].split("/")[-1], d["rolloutState"]) for d in c.service()["deployments"]]


def test_ecs_deployments_from_a_stack_update() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create")
        cluster, service = c.cluster_and_service()
        assert _deployments(c) == [("PRIMARY", "model:1", "IN_PROGRESS")]
        c.aws.complete_deployment(cluster, service)
        c.ecs.get_waiter("services_stable").wait(cluster=cluster, services=[service], WaiterConfig={"Delay": 0})
        c.deploy("UPDATE", IMAGE_2, "update")
        assert _deployments(c) == [("PRIMARY", "model:2", "IN_PROGRESS"), ("ACTIVE", "model:1", "COMPLETED")]
        new = c.ecs.describe_task_definition(taskDefinition="model:2")["taskDefinition"]
        assert new["containerDefinitions"][0]["image"] == IMAGE_2
        assert c.stack()["StackStatus"] == "UPDATE_IN_PROGRESS"  # CloudFormation waits for ECS
        c.aws.complete_deployment(cluster, service)
        assert _deployments(c) == [("PRIMARY", "model:2", "COMPLETED")]
        c.ecs.get_waiter("services_stable").wait(cluster=cluster, services=[service], WaiterConfig={"Delay": 0})
        assert c.stack()["StackStatus"] == "UPDATE_COMPLETE"

    shows_gap_without("ecs_deployments", check)


def test_ecs_deployments_from_update_service() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create")
        cluster, service = c.cluster_and_service()
        c.aws.complete_deployment(cluster, service)
        c.ecs.register_task_definition(
            family="model",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "model", "image": IMAGE_2, "portMappings": [{"containerPort": 8080}]}],
        )
        updated = c.ecs.update_service(cluster=cluster, service=service, taskDefinition="model")["service"]
        assert updated["taskDefinition"].endswith(":task-definition/model:2")
        assert _deployments(c) == [("PRIMARY", "model:2", "IN_PROGRESS"), ("ACTIVE", "model:1", "COMPLETED")]
        assert c.service()["deployments"][0]["rolloutStateReason"].endswith("in progress.")
        c.ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
        assert len(c.service()["deployments"]) == 3

    shows_gap_without("ecs_deployments", check)


def test_circuit_breaker_rolls_the_service_back() -> None:
    with local_aws() as c:
        c.deploy("CREATE", IMAGE_1, "create")
        cluster, service = c.cluster_and_service()
        c.aws.complete_deployment(cluster, service)
        c.ecs.register_task_definition(
            family="model",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "model", "image": IMAGE_2, "portMappings": [{"containerPort": 8080}]}],
        )
        c.ecs.update_service(cluster=cluster, service=service, taskDefinition="model:2")
        failed = c.aws.fail_deployment(cluster, service)
        assert _deployments(c) == [("PRIMARY", "model:1", "IN_PROGRESS"), ("ACTIVE", "model:2", "FAILED")]
        assert "rolling back" in c.service()["deployments"][1]["rolloutStateReason"]
        c.aws.complete_deployment(cluster, service)
        deployments = c.service()["deployments"]
        assert [d["id"] for d in deployments if d["id"] == failed.id] == []  # gone, as after an ECS rollback
        assert _deployments(c) == [("PRIMARY", "model:1", "COMPLETED")]
        messages = [e["message"] for e in c.service()["events"]]
        assert any("deployment failed: tasks failed to start." in m for m in messages)


@pytest.mark.parametrize("outcome", ["failed", "completed"])
def test_an_outcome_reached_before_anyone_listens_is_still_heard(outcome: str) -> None:
    """The scheduler runs on its own thread: a deployment whose tasks are refused at once (an execution
    role that may not pull) can fail before the stack update that started it registers to hear of it.
    A listener registered after the outcome is called at once, and only once."""
    from types import SimpleNamespace

    from local_ground.moto_extensions.deployments import ServiceDeployments

    model = ServiceDeployments(SimpleNamespace(name="svc", events=[], desired_count=1, deployments=[]))
    deployment = model.start_deployment("arn:aws:ecs:us-east-1:123456789012:task-definition/model:1")
    early: list[str] = []
    model.on_outcome(deployment.id, lambda _m, d: early.append(d.rollout_state.value))
    if outcome == "failed":
        model.mark_failed("tasks failed to start.", deployment.id, rollback=False)
    else:
        model.mark_completed(deployment.id)
    late: list[str] = []
    model.on_outcome(deployment.id, lambda _m, d: late.append(d.rollout_state.value))
    assert early == late == [outcome.upper()]


def _events(c: Clients) -> list[tuple[str, str, str]]:
    events = c.cfn.describe_stack_events(StackName=STACK)["StackEvents"]
    return [(e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason", "")) for e in events]


def _image(c: Clients) -> str:
    return next(p["ParameterValue"] for p in c.stack()["Parameters"] if p["ParameterKey"] == "Image")


def test_failed_stack_update_rolls_back_when_the_circuit_breaker_trips() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create")
        cluster, service = c.cluster_and_service()
        c.aws.complete_deployment(cluster, service)
        c.deploy("UPDATE", IMAGE_2, "update")
        c.aws.fail_deployment(cluster, service)
        c.aws.complete_deployment(cluster, service)  # the rollback deployment is steady
        assert c.stack()["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        assert _image(c) == IMAGE_1
        template = c.cfn.get_template(StackName=STACK)["TemplateBody"]
        assert template == service_template() or json.loads(template) == service_template()
        events = _events(c)
        statuses = [status for name, status, _ in events if name == STACK]
        assert statuses[:3] == [
            "UPDATE_ROLLBACK_COMPLETE",
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_IN_PROGRESS",
        ]
        reasons = [reason for name, status, reason in events if name == "Service" and status == "UPDATE_FAILED"]
        assert reasons and reasons[0].startswith(
            'Resource handler returned message: "Error occurred during operation '
            "'ECS Deployment Circuit Breaker was triggered'.\""
        )
        assert c.service()["taskDefinition"].endswith("model:1")
        active = c.ecs.list_task_definitions(familyPrefix="model", status="ACTIVE")["taskDefinitionArns"]
        assert [a.split("/")[-1] for a in active] == ["model:1"]

    shows_gap_without("failed_stack_update_rolls_back", check)


def test_failed_stack_update_rolls_back_when_a_resource_fails() -> None:
    broken = service_template()
    broken["Resources"]["ScalableTarget"]["Properties"]["ResourceId"] = "service/no-such-cluster/no-such-service"

    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create")
        c.deploy("UPDATE", IMAGE_1, "broken", broken)
        assert c.stack()["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        reasons = [r for name, status, r in _events(c) if name == "ScalableTarget" and status == "UPDATE_FAILED"]
        assert reasons and "Cluster not found." in reasons[0]
        assert reasons[0].startswith('Resource handler returned message: "')
        targets = c.autoscaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
        assert [t["ResourceId"].split("/")[0] for t in targets] == ["service"]
        assert "no-such-cluster" not in targets[0]["ResourceId"]

    shows_gap_without("failed_stack_update_rolls_back", check)


def _error_code(call: Callable[[], Any]) -> str | None:
    try:
        call()
    except ClientError as error:
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        return str(error.response["Error"]["Code"])
    return None


def test_throttling_injection() -> None:
    def check(c: Clients) -> None:
        no_retries = Clients.of(c.aws, Config(retries={"mode": "standard", "total_max_attempts": 1}))
        inject_throttling("cloudformation", "DescribeStacks", count=1)
        assert _error_code(no_retries.cfn.describe_stacks) == "Throttling"
        assert _error_code(no_retries.cfn.describe_stacks) is None  # only the next N calls
        inject_throttling("ecs", "ListClusters", count=2)
        assert _error_code(no_retries.ecs.list_clusters) == "ThrottlingException"
        retrying = Clients.of(c.aws, Config(retries={"mode": "standard", "total_max_attempts": 3}))
        response = retrying.ecs.list_clusters()  # botocore retries it as throttling
        assert response["ResponseMetadata"]["RetryAttempts"] == 1

    shows_gap_without("throttling_injection", check)
