"""CloudWatch alarms from templates, evaluated against metrics; ECS deployments watched by them
through a bake time and failed (and rolled back) by an alarm in ALARM."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from local_ground.aws import LocalAWS
from local_ground.moto_extensions import all_extensions
from tests.local_ground.test_moto_extensions import IMAGE_1, IMAGE_2, Clients, service_template

SCALE = 0.02  # a 60 s alarm period lasts 1.2 s


def alarm_template() -> dict[str, Any]:
    template = service_template()
    resources = template["Resources"]
    resources["ErrorsAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "Namespace": "AWS/ApplicationELB",
            "MetricName": "HTTPCode_Target_5XX_Count",
            "Dimensions": [{"Name": "TargetGroup", "Value": {"Fn::GetAtt": ["TargetGroup", "TargetGroupFullName"]}}],
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 10,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        },
    }
    alarms = resources["Service"]["Properties"]["DeploymentConfiguration"]["Alarms"]
    alarms["AlarmNames"] = [{"Ref": "ErrorsAlarm"}]
    return template


@contextmanager
def local_aws(without: tuple[str, ...] = ()) -> Iterator[Clients]:
    with LocalAWS(extensions=all_extensions(without=without), time_scale=SCALE) as aws:
        yield Clients.of(aws)


def cloudwatch(c: Clients) -> Any:
    env = c.aws.environ()
    return boto3.client(
        "cloudwatch",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def errors_alarm(watch: Any) -> dict[str, Any]:
    """The template's alarm (target tracking policies add alarms of their own)."""
    alarms = watch.describe_alarms()["MetricAlarms"]
    return dict(next(a for a in alarms if a["MetricName"] == "HTTPCode_Target_5XX_Count"))


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        time.sleep(0.02)
    return value


def _rollouts(c: Clients) -> list[tuple[str, str]]:
    return [(d["taskDefinition"].split("/")[-1], d["rolloutState"]) for d in c.service()["deployments"]]


def test_alarms_in_templates_exist_in_cloudwatch_and_name_the_service_alarms() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create", alarm_template())
        alarm = errors_alarm(cloudwatch(c))
        assert alarm["Dimensions"][0]["Value"].startswith("targetgroup/")
        names = c.service()["deploymentConfiguration"]["alarms"]["alarmNames"]
        assert names == [alarm["AlarmName"]]
        resources = c.cfn.list_stack_resources(StackName="model-svc")["StackResourceSummaries"]
        assert {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}["ErrorsAlarm"] == names[0]

    with local_aws() as c:
        check(c)
    with local_aws(without=("cloudwatch_alarms_from_templates",)) as c:
        try:
            check(c)
        except (AssertionError, KeyError, IndexError, StopIteration):
            return
    raise AssertionError("the gap did not show without cloudwatch_alarms_from_templates")


def test_a_deployment_with_alarms_bakes_before_it_completes() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create", alarm_template())
        steady = time.monotonic()
        c.aws.complete_deployment(*c.cluster_and_service())  # steady: the bake starts
        assert _rollouts(c) == [("model:1", "IN_PROGRESS")]
        wait_for(lambda: _rollouts(c) == [("model:1", "COMPLETED")])
        assert time.monotonic() - steady >= 60 * SCALE  # Period x EvaluationPeriods, scaled

    with local_aws() as c:
        check(c)
    with local_aws(without=("ecs_deployment_alarms",)) as c:
        c.deploy("CREATE", IMAGE_1, "create", alarm_template())
        c.aws.complete_deployment(*c.cluster_and_service())
        assert _rollouts(c) == [("model:1", "COMPLETED")]  # the gap: no bake


def test_an_alarm_in_alarm_fails_the_deployment_and_rolls_it_back() -> None:
    with local_aws() as c:
        c.deploy("CREATE", IMAGE_1, "create", alarm_template())
        c.aws.complete_deployment(*c.cluster_and_service())
        wait_for(lambda: _rollouts(c) == [("model:1", "COMPLETED")])
        c.deploy("UPDATE", IMAGE_2, "update", alarm_template())
        c.aws.complete_deployment(*c.cluster_and_service())  # steady, baking
        name = c.service()["deploymentConfiguration"]["alarms"]["alarmNames"][0]
        cloudwatch(c).set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="5xx from the new tasks")
        wait_for(lambda: any(d["rolloutState"] == "FAILED" for d in c.service()["deployments"]))
        failed = next(d for d in c.service()["deployments"] if d["rolloutState"] == "FAILED")
        assert failed["taskDefinition"].endswith("model:2")
        assert f"alarm(s) detected in ALARM state: {name}." in failed["rolloutStateReason"]
        assert "rolling back to deploymentId" in failed["rolloutStateReason"]
        assert c.stack()["StackStatus"] == "UPDATE_ROLLBACK_IN_PROGRESS"  # until the restore is steady
        c.aws.complete_deployment(*c.cluster_and_service())  # the restoring deployment is steady (then bakes)
        wait_for(lambda: c.stack()["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE")
        assert c.service()["taskDefinition"].endswith("model:1")
        events = c.cfn.describe_stack_events(StackName="model-svc")["StackEvents"]
        reasons = [e.get("ResourceStatusReason", "") for e in events if e["ResourceStatus"] == "UPDATE_FAILED"]
        assert any("ECS Deployment Alarms were triggered" in r for r in reasons)


def test_alarms_are_evaluated_against_the_metrics_published() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create", alarm_template())
        watch = cloudwatch(c)
        alarm = errors_alarm(watch)
        dimensions = alarm["Dimensions"]
        watch.put_metric_data(
            Namespace="AWS/ApplicationELB",
            MetricData=[
                {"MetricName": "HTTPCode_Target_5XX_Count", "Value": 1.0, "Dimensions": dimensions} for _ in range(10)
            ],
        )
        wait_for(lambda: errors_alarm(watch)["StateValue"] == "ALARM", timeout=3)
        # No more errors: after a period the datapoint no longer breaches.
        wait_for(lambda: errors_alarm(watch)["StateValue"] == "OK", timeout=5)

    with local_aws() as c:
        check(c)
    with local_aws(without=("cloudwatch_alarms_evaluate_metrics",)) as c:
        try:
            check(c)
        except AssertionError:
            return
    raise AssertionError("the gap did not show without cloudwatch_alarms_evaluate_metrics")
