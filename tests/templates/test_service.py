from __future__ import annotations

import copy
import re
from typing import Any

from pipeline import config
from pipeline.templates.service import DIGEST_PATTERN, build_service


def resources(t: Any, kind: str) -> dict[str, dict[str, Any]]:
    body = t.to_dict()["Resources"]
    return {name: r for name, r in body.items() if r["Type"] == kind}


def one(t: Any, kind: str) -> dict[str, Any]:
    found = resources(t, kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.values()))["Properties"]


def test_service_rolls_back_on_circuit_breaker_and_alarms(settings: config.Settings) -> None:
    t = build_service(settings, "production")
    svc = one(t, "AWS::ECS::Service")
    deploy = svc["DeploymentConfiguration"]
    assert deploy["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert deploy["Alarms"]["Enable"] and deploy["Alarms"]["Rollback"]
    alarm_refs = {a["Ref"] for a in deploy["Alarms"]["AlarmNames"]}
    alarms = resources(t, "AWS::CloudWatch::Alarm")
    assert alarm_refs == set(alarms)
    metrics = {
        m.get("MetricName") or q["MetricStat"]["Metric"]["MetricName"]
        for a in alarms.values()
        for m in [a["Properties"]]
        for q in a["Properties"].get("Metrics", [{"MetricStat": {"Metric": m}}])
        if "MetricStat" in q
    }
    assert metrics == {"HTTPCode_Target_5XX_Count", "RequestCount", "TargetResponseTime"}
    # The count is a parameter (each deploy passes what autoscaling set), desired_count when created.
    assert svc["DesiredCount"] == {"Ref": "DesiredCount"}
    assert t.to_dict()["Parameters"]["DesiredCount"] == {
        "Type": "Number",
        "Default": 2,
        "MinValue": 2,
        "MaxValue": 6,
        "Description": "Tasks to run: the service's current count on a deploy, desired_count when it is created",
    }
    # Protection is a parameter too: off only while the pipeline first creates the stack.
    assert t.to_dict()["Parameters"]["DeletionProtection"]["Default"] == "true"
    balancer = one(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert {"Key": "deletion_protection.enabled", "Value": {"Ref": "DeletionProtection"}} in [
        a.to_dict() if hasattr(a, "to_dict") else a for a in balancer["LoadBalancerAttributes"]
    ]
    assert svc["LoadBalancers"][0]["ContainerPort"] == 8080
    assert svc["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    assert svc["HealthCheckGracePeriodSeconds"] == settings.environment("production").service.warmup


def test_the_settings_model_of_the_alarm_bake_is_the_templates(settings: config.Settings) -> None:
    """settings refuse a rollout_timeout below the rollout plus this bake: it must be the alarms' longest evaluation."""
    t = build_service(settings, "staging")
    named = {a["Ref"] for a in one(t, "AWS::ECS::Service")["DeploymentConfiguration"]["Alarms"]["AlarmNames"]}
    windows = []
    for name, alarm in resources(t, "AWS::CloudWatch::Alarm").items():
        p = alarm["Properties"]
        period = p.get("Period") or max(q["MetricStat"]["Period"] for q in p["Metrics"] if "MetricStat" in q)
        if name in named:
            windows.append(period * p["EvaluationPeriods"])
    assert max(windows) == config.ALARM_BAKE_SECONDS


def test_autoscaling_tracks_cpu_and_requests(settings: config.Settings) -> None:
    t = build_service(settings, "staging")
    target = one(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    policies = [
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        for p in resources(t, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    ]
    kinds = {p["PredefinedMetricSpecification"]["PredefinedMetricType"]: p for p in policies}
    assert set(kinds) == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    assert kinds["ALBRequestCountPerTarget"]["TargetValue"] == 400.0
    assert "ResourceLabel" in kinds["ALBRequestCountPerTarget"]["PredefinedMetricSpecification"]


def test_rollout_knobs_come_from_settings(settings: config.Settings) -> None:
    s = settings.environment("production").service
    t = build_service(settings, "production")
    tg = resources(t, "AWS::ElasticLoadBalancingV2::TargetGroup")["TargetGroup"]["Properties"]
    assert tg["HealthCheckPath"] == s.health_check_path
    assert tg["HealthCheckIntervalSeconds"] == s.health_check_interval
    assert tg["HealthyThresholdCount"] == s.healthy_threshold
    attrs = {a["Key"]: a["Value"] for a in tg["TargetGroupAttributes"]}
    assert attrs["deregistration_delay.timeout_seconds"] == str(s.deregistration_delay)
    alb = {a["Key"]: a["Value"] for a in one(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")["LoadBalancerAttributes"]}
    assert alb["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert int(alb["idle_timeout.timeout_seconds"]) > s.request_timeout
    container = one(t, "AWS::ECS::TaskDefinition")["ContainerDefinitions"][0]
    assert container["StopTimeout"] == s.stop_timeout


def test_https_when_a_certificate_is_set(settings: config.Settings) -> None:
    listeners = [
        r["Properties"]
        for r in resources(build_service(settings, "production"), "AWS::ElasticLoadBalancingV2::Listener").values()
    ]
    by_port = {listener["Port"]: listener for listener in listeners}
    assert by_port[443]["Protocol"] == "HTTPS"
    assert by_port[443]["Certificates"][0]["CertificateArn"] == settings.environment("production").certificate_arn
    assert by_port[80]["DefaultActions"][0]["Type"] == "redirect"
    assert by_port[80]["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"


def test_http_only_without_certificate(settings: config.Settings) -> None:
    listeners = [
        r["Properties"]
        for r in resources(build_service(settings, "staging"), "AWS::ElasticLoadBalancingV2::Listener").values()
    ]
    assert [(x["Port"], x["DefaultActions"][0]["Type"]) for x in listeners] == [(80, "forward")]


def test_tasks_are_reachable_only_from_the_load_balancer(settings: config.Settings) -> None:
    t = build_service(settings, "production")
    groups = resources(t, "AWS::EC2::SecurityGroup")
    task_sg = groups["TaskSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in task_sg
    into_tasks = [
        r["Properties"]
        for r in resources(t, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Ref": "TaskSecurityGroup"}
    ]
    assert len(into_tasks) == 1
    rule = into_tasks[0]
    assert rule["SourceSecurityGroupId"] == {"Ref": "LoadBalancerSecurityGroup"}
    assert rule["FromPort"] == rule["ToPort"] == 8080


def test_image_is_a_digest_parameter(settings: config.Settings) -> None:
    t = build_service(settings, "staging").to_dict()
    assert t["Parameters"]["ImageUri"]["AllowedPattern"] == DIGEST_PATTERN
    container = next(r for r in t["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition")["Properties"][
        "ContainerDefinitions"
    ][0]
    assert container["Image"] == {"Ref": "ImageUri"}
    digest = "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris-classifier@sha256:" + "a" * 64
    assert re.match(DIGEST_PATTERN, digest)
    assert not re.match(DIGEST_PATTERN, "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris-classifier:1.0.0")


def test_outputs_are_useful(settings: config.Settings) -> None:
    outputs = build_service(settings, "staging").to_dict()["Outputs"]
    assert {
        "ServiceUrl",
        "ClusterName",
        "ServiceName",
        "TargetGroupArn",
        "TaskDefinitionArn",
        "ImageUri",
        "Version",
    } <= set(outputs)


def test_log_group_has_retention_and_key(settings: config.Settings) -> None:
    t = build_service(settings, "staging")
    groups = [g["Properties"] for g in resources(t, "AWS::Logs::LogGroup").values()]
    assert all(g["RetentionInDays"] == 30 and "KmsKeyId" in g for g in groups)


def test_existing_vpc_creates_no_network(raw_settings: dict[str, Any]) -> None:
    raw = copy.deepcopy(raw_settings)
    del raw["environments"]["staging"]["vpc_cidr"]
    raw["environments"]["staging"].update(
        vpc_id="vpc-0123456789abcdef0",
        public_subnet_ids=["subnet-01234567", "subnet-89abcdef"],
        private_subnet_ids=["subnet-11111111", "subnet-22222222"],
    )
    t = build_service(config.parse(raw), "staging")
    assert not resources(t, "AWS::EC2::VPC") and not resources(t, "AWS::EC2::Subnet")
    assert one(t, "AWS::ElasticLoadBalancingV2::TargetGroup")["VpcId"] == "vpc-0123456789abcdef0"


def test_environment_variables_reach_the_container(raw_settings: dict[str, Any]) -> None:
    raw = copy.deepcopy(raw_settings)
    raw["environments"]["staging"]["variables"] = {"MODEL_SCHEMA": "v2"}
    container = one(build_service(config.parse(raw), "staging"), "AWS::ECS::TaskDefinition")["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["MODEL_SCHEMA"] == "v2" and env["PORT"] == "8080" and env["MODEL_VERSION"] == {"Ref": "Version"}
