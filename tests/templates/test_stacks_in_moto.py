"""Each committed template, with example parameters, creates a stack in the local AWS (moto as a server
on 127.0.0.1), and what moto supports exists through its own service API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from local_ground.aws import LocalAWS
from pipeline import config
from pipeline.templates import names, render
from pipeline.templates.service import build_service

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAWS]:
    with LocalAWS() as local:
        yield local


def client(aws: LocalAWS, service: str) -> Any:
    return aws.client(service)


def create(
    aws: LocalAWS,
    settings: config.Settings,
    file_name: str,
    stack: str,
    params: dict[str, str] | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    cf = client(aws, "cloudformation")
    body = body or (settings.root / "cloudformation" / file_name).read_text()
    cf.create_stack(
        StackName=stack,
        TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (params or {}).items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    described = cf.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


@pytest.fixture(scope="module")
def registry(aws: LocalAWS, settings: config.Settings) -> dict[str, Any]:
    return create(aws, settings, "registry.yaml", names.registry_stack(settings))


def test_registry_stack(aws: LocalAWS, settings: config.Settings, registry: dict[str, Any]) -> None:
    repo = client(aws, "ecr").describe_repositories(repositoryNames=[settings.app.name])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    # moto 5.2.5 keeps ImageScanningConfiguration from a template in CloudFormation's casing and
    # answers {} for it, so scan-on-push is checked on the template (tests/templates) instead.
    assert registry["RepositoryUri"] == repo["repositoryUri"]


def test_ci_access_stack(aws: LocalAWS, settings: config.Settings, registry: dict[str, Any]) -> None:
    outputs = create(aws, settings, "ci-access.yaml", names.ci_access_stack(settings))
    iam = client(aws, "iam")
    for env in settings.environment_names:
        deploy = iam.get_role(RoleName=names.deploy_role_name(settings, env))["Role"]
        assert outputs[f"DeployRoleArn{names.logical_suffix(env)}"] == deploy["Arn"]
        statement = deploy["AssumeRolePolicyDocument"]["Statement"][0]
        assert statement["Action"] == ["sts:AssumeRoleWithWebIdentity"]
        assert statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == (
            f"repo:acme/iris-classifier:environment:{env}"
        )
        assert iam.list_role_policies(RoleName=deploy["RoleName"])["PolicyNames"] == ["release-and-rollback"]
        execution = iam.get_role(RoleName=names.execution_role_name(settings, env))["Role"]
        assert execution["Arn"] == names.execution_role_arn(settings, env)


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_service_stack(aws: LocalAWS, settings: config.Settings, registry: dict[str, Any], environment: str) -> None:
    image = f"{registry['RepositoryUri']}@{DIGEST}"
    env = settings.environment(environment)
    body = None
    if env.https:
        # The listener needs a certificate that exists in this account: request one, synthesize with it.
        arn = client(aws, "acm").request_certificate(DomainName="model.example.com")["CertificateArn"]
        with_cert = replace(
            settings,
            environments=tuple(replace(e, certificate_arn=arn) if e is env else e for e in settings.environments),
        )
        body = render(build_service(with_cert, environment))
    outputs = create(
        aws,
        settings,
        f"service-{environment}.yaml",
        names.service_stack(settings, environment),
        {"ImageUri": image, "Version": "1.0.0"},
        body,
    )

    ecs = client(aws, "ecs")
    service = ecs.describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]])["services"][0]
    assert service["desiredCount"] == env.service.desired_count
    assert service["loadBalancers"][0]["targetGroupArn"] == outputs["TargetGroupArn"]
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    task = ecs.describe_task_definition(taskDefinition=outputs["TaskDefinitionArn"])["taskDefinition"]
    assert task["containerDefinitions"][0]["image"] == image
    assert (task["cpu"], task["memory"]) == (str(env.service.cpu), str(env.service.memory))

    elb = client(aws, "elbv2")
    group = elb.describe_target_groups(TargetGroupArns=[outputs["TargetGroupArn"]])["TargetGroups"][0]
    assert group["HealthCheckPath"] == "/health"
    assert group["HealthCheckIntervalSeconds"] == env.service.health_check_interval
    listeners = elb.describe_listeners(LoadBalancerArn=group["LoadBalancerArns"][0])["Listeners"]
    test_port = [env.traffic.test_listener_port] if env.shifts_traffic else []
    assert sorted(x["Port"] for x in listeners) == ([80, 443] if env.https else [80]) + test_port
    if env.shifts_traffic:
        # The second target group and the weighted rules ECS rewrites to shift traffic exist.
        alternate = elb.describe_target_groups(TargetGroupArns=[outputs["AlternateTargetGroupArn"]])["TargetGroups"]
        assert alternate[0]["HealthCheckPath"] == "/health"
        rules = elb.describe_rules(RuleArns=[outputs["ProductionListenerRuleArn"], outputs["TestListenerRuleArn"]])
        for rule in rules["Rules"]:
            weights = {g["TargetGroupArn"]: g["Weight"] for g in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]}
            assert weights == {outputs["TargetGroupArn"]: 100, outputs["AlternateTargetGroupArn"]: 0}
        assert outputs["TestUrl"].endswith(f":{env.traffic.test_listener_port}")
    assert outputs["ServiceUrl"].startswith("https://" if env.https else "http://")

    ec2 = client(aws, "ec2")
    vpcs = [v for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == env.network.vpc_cidr]
    assert len(vpcs) == 1
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])["Subnets"]
    assert len(subnets) == 4

    logs = client(aws, "logs").describe_log_groups(logGroupNamePrefix=outputs["LogGroupName"])["logGroups"]
    assert logs[0]["retentionInDays"] == env.service.log_retention_days

    scaling = client(aws, "application-autoscaling")
    targets = scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    ours = [t for t in targets if t["ResourceId"].endswith("/" + outputs["ServiceName"])]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in ours] == [(env.service.min_count, env.service.max_count)]
    policies = scaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=ours[0]["ResourceId"])[
        "ScalingPolicies"
    ]
    assert len(policies) == 2
