"""ECS-native traffic shifting in the service template: what ECS needs to run blue_green, canary and
linear, and what the pipeline relies on (PAUSE hooks that roll back, alarms on the new target group)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pipeline import config
from pipeline.templates import render
from pipeline.templates.service import build_service
from pipeline.templates.traffic import DECISION_STAGE, GATE_STAGE


@pytest.fixture()
def raw_settings(canary_raw_settings: dict[str, Any]) -> dict[str, Any]:
    """This module's settings: production as a canary with the model gate (tests/conftest.py)."""
    return canary_raw_settings


@pytest.fixture()
def settings(canary_settings: config.Settings) -> config.Settings:
    return canary_settings


# AmazonECSInfrastructureRolePolicyForLoadBalancers (AWS managed policy v6): the actions ECS uses.
MANAGED_POLICY_ACTIONS = {
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:DeregisterTargets",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyRule",
}


def body(settings: config.Settings, environment: str) -> dict[str, Any]:
    return build_service(settings, environment).to_dict()  # type: ignore[no-any-return]


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in template["Resources"].items() if r["Type"] == kind}


def with_strategy(raw: dict[str, Any], environment: str, **keys: Any) -> config.Settings:
    raw = copy.deepcopy(raw)
    raw["environments"][environment].update(keys)
    return config.parse(raw)


def service_of(template: dict[str, Any]) -> dict[str, Any]:
    return of_type(template, "AWS::ECS::Service")["Service"]


def test_canary_production_shifts_traffic_between_two_target_groups(settings: config.Settings) -> None:
    t = body(settings, "production")
    groups = of_type(t, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert sorted(groups) == ["AlternateTargetGroup", "TargetGroup"]
    assert groups["AlternateTargetGroup"] == groups["TargetGroup"]  # same health check and drain
    lb = service_of(t)["LoadBalancers"][0]
    assert lb["TargetGroupArn"] == {"Ref": "TargetGroup"}
    assert lb["AdvancedConfiguration"] == {
        "AlternateTargetGroupArn": {"Ref": "AlternateTargetGroup"},
        "ProductionListenerRule": {"Ref": "ProductionListenerRule"},
        "TestListenerRule": {"Ref": "TestListenerRule"},
        "RoleArn": {"Fn::GetAtt": ["TrafficShiftRole", "Arn"]},
    }
    deploy = service_of(t)["DeploymentConfiguration"]
    assert deploy["Strategy"] == "CANARY"
    assert deploy["CanaryConfiguration"] == {"CanaryPercent": 10.0, "CanaryBakeTimeInMinutes": 5}
    assert deploy["BakeTimeInMinutes"] == 5
    assert "LinearConfiguration" not in deploy


def test_pause_hooks_hold_the_gate_and_the_decision_and_roll_back_on_timeout(settings: config.Settings) -> None:
    hooks = service_of(body(settings, "production"))["DeploymentConfiguration"]["LifecycleHooks"]
    assert [h["LifecycleStages"] for h in hooks] == [[GATE_STAGE], [DECISION_STAGE]]
    assert [GATE_STAGE, DECISION_STAGE] == ["POST_TEST_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT"]
    for hook in hooks:
        assert hook["TargetType"] == "PAUSE"
        assert hook["TimeoutConfiguration"] == {"TimeoutInMinutes": 30, "Action": "ROLLBACK"}
        # PAUSE takes no target, role or details: ContinueServiceDeployment answers it.
        assert not {"HookTargetArn", "RoleArn", "HookDetails"} & set(hook)


def test_the_rules_ecs_rewrites_forward_to_both_groups(settings: config.Settings) -> None:
    t = body(settings, "production")
    rules = of_type(t, "AWS::ElasticLoadBalancingV2::ListenerRule")
    assert rules["ProductionListenerRule"]["ListenerArn"] == {"Ref": "HttpsListener"}
    assert rules["TestListenerRule"]["ListenerArn"] == {"Ref": "TestListener"}
    for rule in rules.values():
        (action,) = rule["Actions"]
        assert action["Type"] == "forward"  # ECS refuses listeners mixing forward with other actions
        weights = [(g["TargetGroupArn"]["Ref"], g["Weight"]) for g in action["ForwardConfig"]["TargetGroups"]]
        assert weights == [("TargetGroup", 100), ("AlternateTargetGroup", 0)]
        assert rule["Conditions"][0]["PathPatternConfig"]["Values"] == ["/*"]


def test_the_test_listener_has_its_own_port_and_production_tls(settings: config.Settings) -> None:
    t = body(settings, "production")
    listeners = of_type(t, "AWS::ElasticLoadBalancingV2::Listener")
    test, https = listeners["TestListener"], listeners["HttpsListener"]
    assert test["Port"] == 9000 and test["Protocol"] == "HTTPS"
    assert (test["SslPolicy"], test["Certificates"]) == (https["SslPolicy"], https["Certificates"])
    assert t["Outputs"]["TestUrl"]["Value"] == {"Fn::Sub": "https://${LoadBalancer.DNSName}:9000"}


def test_the_test_listener_is_open_only_to_the_vpc_by_default(settings: config.Settings) -> None:
    t = body(settings, "production")
    opened = [
        (r["FromPort"], r["CidrIp"])
        for r in of_type(t, "AWS::EC2::SecurityGroupIngress").values()
        if r["GroupId"] == {"Ref": "LoadBalancerSecurityGroup"}
    ]
    assert opened == [(9000, "10.50.0.0/16")]
    inline = of_type(t, "AWS::EC2::SecurityGroup")["LoadBalancerSecurityGroup"]["SecurityGroupIngress"]
    assert 9000 not in {r["FromPort"] for r in inline}  # the public rules stay 80/443


def test_the_test_listener_opens_to_the_cidrs_the_settings_name(raw_settings: dict[str, Any]) -> None:
    s = with_strategy(raw_settings, "production", test_listener_cidrs=["203.0.113.7/32", "10.50.0.0/16"])
    opened = sorted(
        r["CidrIp"]
        for r in of_type(body(s, "production"), "AWS::EC2::SecurityGroupIngress").values()
        if r.get("FromPort") == 9000
    )
    assert opened == ["10.50.0.0/16", "203.0.113.7/32"]


def test_the_infrastructure_role_has_the_managed_policys_actions_scoped_to_this_stack(
    settings: config.Settings,
) -> None:
    role = of_type(body(settings, "production"), "AWS::IAM::Role")["TrafficShiftRole"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ecs.amazonaws.com"} and trust["Action"] == ["sts:AssumeRole"]
    (policy,) = role["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert {a for s in statements.values() for a in s["Action"]} == MANAGED_POLICY_ACTIONS
    assert statements["RegisterTasks"]["Resource"] == [{"Ref": "TargetGroup"}, {"Ref": "AlternateTargetGroup"}]
    assert statements["ModifyListeners"]["Resource"] == [{"Ref": "HttpsListener"}, {"Ref": "TestListener"}]
    assert statements["ShiftTraffic"]["Resource"] == [{"Ref": "ProductionListenerRule"}, {"Ref": "TestListenerRule"}]
    wildcard = [s for s in statements.values() if s["Resource"] == ["*"]]
    assert [s["Sid"] for s in wildcard] == ["ReadLoadBalancing"]
    assert all(a.split(":")[1].startswith("Describe") for a in statements["ReadLoadBalancing"]["Action"])


def test_rollback_alarms_watch_both_target_groups(settings: config.Settings) -> None:
    """The new revision lives in whichever group is idle, so each alarm has a twin on the other one."""
    t = body(settings, "production")
    alarms = of_type(t, "AWS::CloudWatch::Alarm")
    watched = {r["Ref"] for r in service_of(t)["DeploymentConfiguration"]["Alarms"]["AlarmNames"]}
    assert watched == set(alarms)

    def target_group(dimensions: list[dict[str, Any]]) -> str:
        (dim,) = [d for d in dimensions if d["Name"] == "TargetGroup"]
        return str(dim["Value"]["Fn::GetAtt"][0])

    by_metric: dict[str, set[str]] = {}
    for alarm in alarms.values():
        # A plain alarm names one metric; a metric-math alarm (the 5xx rate) reads several.
        metrics = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m] or [alarm]
        for metric in metrics:
            by_metric.setdefault(metric["MetricName"], set()).add(target_group(metric["Dimensions"]))
    assert by_metric == {
        "HTTPCode_Target_5XX_Count": {"TargetGroup", "AlternateTargetGroup"},
        "RequestCount": {"TargetGroup", "AlternateTargetGroup"},
        "TargetResponseTime": {"TargetGroup", "AlternateTargetGroup"},
    }
    twin, original = alarms["AlternateTargetLatencyAlarm"], alarms["TargetLatencyAlarm"]
    assert {k: v for k, v in twin.items() if k not in ("Dimensions", "AlarmDescription")} == {
        k: v for k, v in original.items() if k not in ("Dimensions", "AlarmDescription")
    }


def test_request_scaling_follows_traffic_across_both_groups(settings: config.Settings) -> None:
    t = body(settings, "production")
    policy = of_type(t, "AWS::ApplicationAutoScaling::ScalingPolicy")["RequestsScalingPolicy"]
    spec = policy["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
    groups = [
        q["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for q in spec["Metrics"]
        if "MetricStat" in q
    ]
    assert groups == ["TargetGroup", "AlternateTargetGroup"]
    returned = [q for q in spec["Metrics"] if q["ReturnData"]]
    assert [q["Expression"] for q in returned] == ["SUM([group0, group1])"]


@pytest.mark.parametrize(
    ("strategy", "ecs_name", "config_key"),
    [
        ("blue_green", "BLUE_GREEN", None),
        ("linear", "LINEAR", "LinearConfiguration"),
        ("canary", "CANARY", "CanaryConfiguration"),
    ],
)
def test_each_strategy_sets_its_own_configuration(
    raw_settings: dict[str, Any], strategy: str, ecs_name: str, config_key: str | None
) -> None:
    s = with_strategy(raw_settings, "production", strategy=strategy, linear_step_percent=20.0)
    deploy = service_of(body(s, "production"))["DeploymentConfiguration"]
    assert deploy["Strategy"] == ecs_name
    present = {"LinearConfiguration", "CanaryConfiguration"} & set(deploy)
    assert present == ({config_key} if config_key else set())
    if strategy == "linear":
        assert deploy["LinearConfiguration"] == {"StepPercent": 20.0, "StepBakeTimeInMinutes": 2}


def test_an_http_only_environment_gets_an_http_test_listener(raw_settings: dict[str, Any]) -> None:
    s = with_strategy(raw_settings, "staging", strategy="canary")
    t = body(s, "staging")
    test = t["Resources"]["TestListener"]
    assert test["Properties"]["Protocol"] == "HTTP"
    assert {x["id"] for x in test["Metadata"]["checkov"]["skip"]} == {"CKV_AWS_2", "CKV_AWS_103"}
    assert of_type(t, "AWS::ElasticLoadBalancingV2::ListenerRule")["ProductionListenerRule"]["ListenerArn"] == {
        "Ref": "HttpListener"
    }


def test_rolling_keeps_one_target_group_and_no_traffic_resources(settings: config.Settings) -> None:
    t = body(settings, "staging")
    assert len(of_type(t, "AWS::ElasticLoadBalancingV2::TargetGroup")) == 1
    assert not of_type(t, "AWS::ElasticLoadBalancingV2::ListenerRule")
    assert "TrafficShiftRole" not in t["Resources"] and "TestUrl" not in t["Outputs"]
    svc = service_of(t)
    assert "AdvancedConfiguration" not in svc["LoadBalancers"][0]
    assert not {"Strategy", "LifecycleHooks", "BakeTimeInMinutes"} & set(svc["DeploymentConfiguration"])
    requests = of_type(t, "AWS::ApplicationAutoScaling::ScalingPolicy")["RequestsScalingPolicy"]
    spec = requests["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
    assert spec["PredefinedMetricType"] == "ALBRequestCountPerTarget"


def test_switching_production_to_rolling_gives_the_rolling_template(
    raw_settings: dict[str, Any], settings: config.Settings
) -> None:
    """Every traffic resource comes from the strategy: rolling production equals canary production minus them."""
    rolling = body(with_strategy(raw_settings, "production", strategy="rolling"), "production")
    canary = body(settings, "production")
    added = set(canary["Resources"]) - set(rolling["Resources"])
    assert added == {
        "AlternateTargetGroup",
        "AlternateTargetErrorsAlarm",
        "AlternateTargetLatencyAlarm",
        "ProductionListenerRule",
        "TestListener",
        "TestListenerRule",
        "TestListenerIngress1",
        "TrafficShiftRole",
    }
    assert not set(rolling["Resources"]) - set(canary["Resources"])
    unchanged = set(rolling["Resources"]) - {"Service", "RequestsScalingPolicy"}
    assert all(rolling["Resources"][n] == canary["Resources"][n] for n in unchanged)


def test_templates_render_the_same_bytes_twice(settings: config.Settings) -> None:
    assert render(build_service(settings, "production")) == render(build_service(settings, "production"))


def test_bake_steps_and_hook_timeout_come_from_the_settings(raw_settings: dict[str, Any]) -> None:
    s = with_strategy(
        raw_settings, "production", canary_percent=2.5, canary_bake_minutes=12, bake_minutes=0, hook_timeout_minutes=7
    )
    deploy = service_of(body(s, "production"))["DeploymentConfiguration"]
    assert deploy["CanaryConfiguration"] == {"CanaryPercent": 2.5, "CanaryBakeTimeInMinutes": 12}
    assert deploy["BakeTimeInMinutes"] == 0
    assert {h["TimeoutConfiguration"]["TimeoutInMinutes"] for h in deploy["LifecycleHooks"]} == {7}


def test_a_metric_math_alarm_is_mirrored_onto_the_alternate_group() -> None:
    """Whatever shape the service's alarms take (the 5xx alarm may become a rate), the twin follows."""
    from troposphere import GetAtt
    from troposphere.cloudwatch import Alarm, Metric, MetricDataQuery, MetricDimension, MetricStat
    from troposphere.elasticloadbalancingv2 import TargetGroup

    from pipeline.templates.traffic import _mirror_alarm

    primary, alternate = TargetGroup("TargetGroup"), TargetGroup("AlternateTargetGroup")

    def count(query_id: str, metric: str) -> MetricDataQuery:
        dims = [MetricDimension(Name="TargetGroup", Value=GetAtt(primary, "TargetGroupFullName"))]
        stat = MetricStat(Metric=Metric(Namespace="AWS/ApplicationELB", MetricName=metric, Dimensions=dims))
        return MetricDataQuery(Id=query_id, MetricStat=MetricStat(**{**stat.properties, "Period": 60, "Stat": "Sum"}))

    rate = Alarm(
        "TargetErrorRateAlarm",
        Metrics=[
            count("errors", "HTTPCode_Target_5XX_Count"),
            count("requests", "RequestCount"),
            MetricDataQuery(Id="rate", Expression="errors / requests", ReturnData=True),
        ],
        EvaluationPeriods=1,
        Threshold=0.05,
        ComparisonOperator="GreaterThanThreshold",
    )
    twin = _mirror_alarm(rate, primary, alternate).to_dict()["Properties"]
    groups = [q["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for q in twin["Metrics"] if "MetricStat" in q]
    assert groups == [{"Fn::GetAtt": ["AlternateTargetGroup", "TargetGroupFullName"]}] * 2
    original = rate.to_dict()["Properties"]["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
    assert original == {"Fn::GetAtt": ["TargetGroup", "TargetGroupFullName"]}  # the source is left alone
