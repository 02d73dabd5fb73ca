"""AWS refuses bad input at the door: CloudFormation parameters and stack names, Fargate task
definitions, service load balancers, INACTIVE task definitions; a no-change update is a FAILED
change set. Each test shows the ground accepting the input without its extension."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from tests.local_ground.test_moto_extensions import IMAGE_1, STACK, Clients, shows_gap_without

TAGGED = "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1.0.0"


def error_of(call: Callable[[], Any]) -> tuple[str, str] | None:
    """(code, message) of the AWS error the call answers, or None when it succeeds."""
    try:
        call()
    except ClientError as error:
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        return str(error.response["Error"]["Code"]), str(error.response["Error"]["Message"])
    return None


def queue_template() -> dict[str, Any]:
    return {
        "Parameters": {
            "ImageUri": {
                "Type": "String",
                "AllowedPattern": r"^[a-z0-9.\-/:]+@sha256:[a-f0-9]{64}$",
                "ConstraintDescription": "an image pinned by digest: REPOSITORY@sha256:...",
            },
            "Version": {"Type": "String", "AllowedPattern": r"^\d+\.\d+\.\d+$"},
            "Size": {"Type": "Number", "Default": 30, "MinValue": 0},
        },
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": {"Ref": "Size"}}}},
    }


def _change_set(
    c: Clients,
    parameters: dict[str, str],
    stack: str = STACK,
    kind: str = "CREATE",
    template: dict[str, Any] | None = None,
) -> Callable[[], Any]:
    return lambda: c.cfn.create_change_set(
        StackName=stack,
        ChangeSetName="cs",
        ChangeSetType=kind,
        TemplateBody=json.dumps(template or queue_template()),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )


def _stack_names(c: Clients) -> list[str]:
    return [s["StackName"] for s in c.cfn.describe_stacks()["Stacks"]]


def test_cloudformation_refuses_parameters_the_template_does_not_allow() -> None:
    def check(c: Clients) -> None:
        before = _stack_names(c)  # moto's backends are process-wide: other files' stacks may be there
        assert error_of(_change_set(c, {"ImageUri": TAGGED, "Version": "1.0.0"})) == (
            "ValidationError",
            "Parameter ImageUri failed to satisfy constraint: an image pinned by digest: REPOSITORY@sha256:...",
        )
        assert error_of(_change_set(c, {"ImageUri": IMAGE_1, "Version": "v1"})) == (
            "ValidationError",
            r"Parameter 'Version' must match pattern ^\d+\.\d+\.\d+$",
        )
        assert error_of(_change_set(c, {"ImageUri": IMAGE_1})) == (
            "ValidationError",
            "Parameters: [Version] must have values",
        )
        assert error_of(_change_set(c, {"ImageUri": IMAGE_1, "Version": "1.0.0", "Extra": "x"})) == (
            "ValidationError",
            "Parameters: [Extra] do not exist in the template",
        )
        create_stack = lambda: c.cfn.create_stack(  # noqa: E731
            StackName=STACK,
            TemplateBody=json.dumps(queue_template()),
            Parameters=[{"ParameterKey": "ImageUri", "ParameterValue": TAGGED}],
        )
        code, message = error_of(create_stack) or ("", "")
        assert code == "ValidationError" and "must have values" in message
        assert _stack_names(c) == before  # nothing was created, not even a REVIEW_IN_PROGRESS stack
        assert error_of(_change_set(c, {"ImageUri": IMAGE_1, "Version": "1.0.0"})) is None

    shows_gap_without("cloudformation_validates_parameters", check)


def test_cloudformation_refuses_bad_stack_names() -> None:
    def check(c: Clients) -> None:
        versions = {"ImageUri": IMAGE_1, "Version": "1.0.0"}
        before = _stack_names(c)  # moto's backends are process-wide: other files' stacks may be there
        code, message = error_of(_change_set(c, versions, stack="a" * 129)) or ("", "")
        assert (code, message) == ("ValidationError", "Stack name cannot exceed 128 characters")
        code, message = error_of(_change_set(c, versions, stack="model_svc")) or ("", "")
        assert code == "ValidationError"
        assert message.startswith("1 validation error detected: Value 'model_svc' at 'stackName'")
        assert _stack_names(c) == before  # nothing was created
        assert error_of(_change_set(c, versions, stack="a" * 128)) is None

    shows_gap_without("cloudformation_validates_stack_names", check)


def test_a_no_change_update_is_a_failed_change_set() -> None:
    template = queue_template()  # every parameter given, as the pipeline deploys (moto then raises)
    del template["Parameters"]["Size"]
    template["Resources"]["Queue"]["Properties"] = {}

    def check(c: Clients) -> None:
        versions = {"ImageUri": IMAGE_1, "Version": "1.0.0"}
        _change_set(c, versions, template=template)()
        c.cfn.execute_change_set(StackName=STACK, ChangeSetName="cs")
        c.cfn.delete_change_set(StackName=STACK, ChangeSetName="cs")
        assert error_of(_change_set(c, versions, kind="UPDATE", template=template)) is None
        change_set = c.cfn.describe_change_set(StackName=STACK, ChangeSetName="cs")
        assert (change_set["Status"], change_set["StatusReason"]) == (
            "FAILED",
            "The submitted information didn't contain changes. Submit different information to create a change set.",
        )
        assert change_set["ExecutionStatus"] == "UNAVAILABLE"

    shows_gap_without("no_change_update_is_a_failed_change_set", check)


def test_a_parameter_left_out_takes_its_default_before_the_stacks_are_compared() -> None:
    """The stack was deployed with Size=30 given; an update leaving Size out (its Default is 30) changes
    nothing, so its change set fails as a no-change update, as on AWS (moto compared the submitted lists)."""

    def check(c: Clients) -> None:
        versions = {"ImageUri": IMAGE_1, "Version": "1.0.0"}
        _change_set(c, {**versions, "Size": "30"})()
        c.cfn.execute_change_set(StackName=STACK, ChangeSetName="cs")
        c.cfn.delete_change_set(StackName=STACK, ChangeSetName="cs")
        _change_set(c, versions, kind="UPDATE")()
        change_set = c.cfn.describe_change_set(StackName=STACK, ChangeSetName="cs")
        assert (change_set["Status"], change_set.get("Changes")) == ("FAILED", [])

    shows_gap_without("no_change_update_is_a_failed_change_set", check)


def _task_definition(c: Clients, **overrides: Any) -> Callable[[], Any]:
    kwargs: dict[str, Any] = {
        "family": "model",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [
            {"name": "model", "image": IMAGE_1, "portMappings": [{"containerPort": 8080}], "essential": True}
        ],
    }
    kwargs.update(overrides)
    return lambda: c.ecs.register_task_definition(**kwargs)


def test_ecs_refuses_task_definitions_fargate_cannot_run() -> None:
    def check(c: Clients) -> None:
        assert error_of(_task_definition(c, memory="4096")) == (
            "ClientException",
            "No Fargate configuration exists for given values: 256 CPU, 4096 memory. "
            "See the Amazon ECS documentation for the valid values.",
        )
        assert error_of(_task_definition(c, networkMode="bridge")) == (
            "ClientException",
            "Fargate only supports network mode ‘awsvpc’.",
        )
        big = [{"name": "model", "image": IMAGE_1, "memory": 1024}]
        assert error_of(_task_definition(c, containerDefinitions=big)) == (
            "ClientException",
            "The 'memory' setting for container 'model' is greater than for the task.",
        )
        assert error_of(_task_definition(c, cpu="1 vCPU", memory="2 GB")) is None
        assert error_of(_task_definition(c, cpu="512", memory="3072")) is None

    shows_gap_without("ecs_validates_fargate_task_definitions", check)


def _vpc(c: Clients) -> tuple[str, str]:
    """A VPC and a subnet of it, once per local AWS."""
    ec2 = boto3.client("ec2", **_client_config(c))
    vpcs = [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.9.0.0/16"]}])["Vpcs"]]
    vpc = vpcs[0] if vpcs else ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    subnet = (
        subnets[0]["SubnetId"]
        if subnets
        else ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
    )
    return vpc, subnet


def _awsvpc(c: Clients) -> dict[str, Any]:
    vpc, subnet = _vpc(c)
    ec2 = boto3.client("ec2", **_client_config(c))
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["tasks"]}])["SecurityGroups"]
    group = (
        groups[0]["GroupId"]
        if groups
        else ec2.create_security_group(GroupName="tasks", Description="t", VpcId=vpc)["GroupId"]
    )
    return {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "ENABLED"}


def _target_group(c: Clients, target_type: str) -> str:
    vpc, _ = _vpc(c)
    group = c.elbv2.create_target_group(
        Name=f"model-{target_type}", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType=target_type
    )
    return str(group["TargetGroups"][0]["TargetGroupArn"])


def _client_config(c: Clients) -> dict[str, str]:
    env = c.aws.environ()
    return {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "region_name": env["AWS_REGION"],
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }


def _service(c: Clients, name: str, task_definition: str, balancer: dict[str, Any] | None = None) -> Callable[[], Any]:
    return lambda: c.ecs.create_service(
        cluster="models",
        serviceName=name,
        taskDefinition=task_definition,
        desiredCount=1,
        launchType="FARGATE",
        loadBalancers=[balancer] if balancer else [],
        networkConfiguration={"awsvpcConfiguration": _awsvpc(c)},
    )


def test_ecs_refuses_load_balancers_the_task_definition_cannot_serve() -> None:
    def check(c: Clients) -> None:
        c.ecs.create_cluster(clusterName="models")
        _task_definition(c)()
        ip_group, instance_group = _target_group(c, "ip"), _target_group(c, "instance")
        balancer = {"containerName": "model", "containerPort": 8080, "targetGroupArn": ip_group}
        assert error_of(_service(c, "a", "model:1", {**balancer, "containerPort": 8081})) == (
            "InvalidParameterException",
            "The container model did not have a container port 8081 defined.",
        )
        assert error_of(_service(c, "b", "model:1", {**balancer, "containerName": "other"})) == (
            "InvalidParameterException",
            "The container other does not exist in the task definition.",
        )
        assert error_of(_service(c, "c", "model:1", {**balancer, "targetGroupArn": instance_group})) == (
            "InvalidParameterException",
            f"The provided target group {instance_group} has target type instance, which is incompatible "
            "with the awsvpc network mode specified in the task definition.",
        )
        assert c.ecs.list_services(cluster="models")["serviceArns"] == []
        assert error_of(_service(c, "d", "model:1", balancer)) is None

    shows_gap_without("ecs_validates_service_load_balancers", check)


def test_ecs_refuses_inactive_task_definitions() -> None:
    def check(c: Clients) -> None:
        c.ecs.create_cluster(clusterName="models")
        _task_definition(c)()
        _task_definition(c)()
        c.ecs.deregister_task_definition(taskDefinition="model:1")
        assert error_of(_service(c, "old", "model:1")) == ("InvalidParameterException", "TaskDefinition is inactive")
        assert error_of(_service(c, "new", "model:2")) is None
        update = lambda: c.ecs.update_service(cluster="models", service="new", taskDefinition="model:1")  # noqa: E731
        assert error_of(update) == ("InvalidParameterException", "TaskDefinition is inactive")

    shows_gap_without("ecs_refuses_inactive_task_definitions", check)
