"""CloudWatch reads the canary watch makes: a target group's figures since a moment, and alarm states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.aws.clients import aws_call


@dataclass(frozen=True)
class GroupFigures:
    """What one target group served since the watch began (ALB metrics, namespace AWS/ApplicationELB)."""

    requests: int
    errors_5xx: int
    p99_seconds: float | None

    @property
    def error_percent(self) -> float:
        return 100.0 * self.errors_5xx / self.requests if self.requests else 0.0


def group_figures(
    cloudwatch: Any, load_balancer: str, target_group_arn: str, start: datetime, end: datetime
) -> GroupFigures:
    dimensions = [
        {"Name": "LoadBalancer", "Value": load_balancer},
        {"Name": "TargetGroup", "Value": target_group_arn.split(":")[-1]},
    ]
    period = max(1, int((end - start).total_seconds()) + 1)

    def query(ident: str, metric: str, stat: str) -> dict[str, Any]:
        return {
            "Id": ident,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": metric, "Dimensions": dimensions},
                "Period": period,
                "Stat": stat,
            },
        }

    with aws_call("read the new target group's metrics"):
        results = cloudwatch.get_metric_data(
            MetricDataQueries=[
                query("requests", "RequestCount", "Sum"),
                query("errors", "HTTPCode_Target_5XX_Count", "Sum"),
                query("latency", "TargetResponseTime", "p99"),
            ],
            StartTime=start,
            EndTime=end,
        ).get("MetricDataResults", [])
    values = {r["Id"]: [v for v in r.get("Values", []) if v is not None] for r in results}
    latency = values.get("latency") or []
    return GroupFigures(
        requests=int(sum(values.get("requests") or [])),
        errors_5xx=int(sum(values.get("errors") or [])),
        p99_seconds=max(latency) if latency else None,
    )


def alarms_in_alarm(cloudwatch: Any, names: list[str]) -> list[str]:
    if not names:
        return []
    with aws_call("describe the deployment alarms"):
        alarms = cloudwatch.describe_alarms(AlarmNames=names).get("MetricAlarms", [])
    return sorted(a["AlarmName"] for a in alarms if a.get("StateValue") == "ALARM")
