"""CloudWatch alarms: created from templates, and evaluated against the metrics published here.

- cloudwatch_alarms_from_templates: ``AWS::CloudWatch::Alarm`` in a template is a metric alarm in
  CloudWatch (describe_alarms); its Ref is the alarm name, Fn::GetAtt Arn its ARN; a name is made
  from the stack and logical id when AlarmName is absent. AWS: CloudFormation resource reference
  AWS::CloudWatch::Alarm ("Ref returns the alarm name"). moto 5.2.5 has no model for the type, skips
  it, and every Ref to it is None (so a service's deployment alarm names were [None, None]).
- cloudwatch_alarms_evaluate_metrics: metric alarms move between OK and ALARM by evaluating their
  metric's datapoints: each Period one datapoint of the Statistic (or ExtendedStatistic pNN), the
  alarm in ALARM when DatapointsToAlarm of the last EvaluationPeriods datapoints breach the
  Threshold; missing data per TreatMissingData (missing/notBreaching: not breaching, breaching:
  breaching). AWS: "Using Amazon CloudWatch alarms" / "Alarm evaluation" in the CloudWatch User
  Guide (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html).
  Periods are scaled by the local time factor. moto 5.2.5 never evaluates (an alarm stays as
  created or as SetAlarmState left it); SetAlarmState still works, as on AWS, until the next
  evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudformation import parsing
from moto.cloudwatch.models import (
    Alarm,
    CloudWatchBackend,
    Dimension,
    Metric,
    MetricDataQuery,
    MetricStat,
    cloudwatch_backends,
)

from . import metric_math
from ._base import Extension, Patch, PeriodicExtension, as_int
from .timescale import scaled

ALARM = "AWS::CloudWatch::Alarm"
EVALUATION_TICK = 0.05  # seconds between evaluations here (AWS evaluates each minute)


def _backend(account_id: str, region_name: str) -> CloudWatchBackend:
    return cloudwatch_backends[account_id][region_name]


class AlarmResource:
    """The stack's view of one metric alarm; Ref is the alarm name, as on AWS."""

    def __init__(self, alarm: Alarm) -> None:
        self.alarm = alarm

    @property
    def physical_resource_id(self) -> str:
        return str(self.alarm.name)

    @staticmethod
    def cloudformation_type() -> str:
        return ALARM

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attr: str) -> str:
        return str(self.alarm.alarm_arn)

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> AlarmResource:
        p = cloudformation_json["Properties"]
        threshold = p.get("Threshold")
        alarm = _backend(account_id, region_name).put_metric_alarm(
            name=p.get("AlarmName", resource_name),
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=as_int(p.get("Period")),  # type: ignore[arg-type]
            threshold=None if threshold is None else float(threshold),  # type: ignore[arg-type]
            statistic=p.get("Statistic"),
            description=p.get("AlarmDescription"),
            dimensions=list(p.get("Dimensions") or []),
            alarm_actions=list(p.get("AlarmActions") or []),
            datapoints_to_alarm=as_int(p.get("DatapointsToAlarm")),
            extended_statistic=p.get("ExtendedStatistic"),
            ok_actions=list(p.get("OKActions") or []),
            insufficient_data_actions=list(p.get("InsufficientDataActions") or []),
            unit=p.get("Unit"),
            actions_enabled=p.get("ActionsEnabled", True) in (True, "true", "True"),
            treat_missing_data=p.get("TreatMissingData"),
            metric_data_queries=[_query(q) for q in p.get("Metrics") or []],
        )
        return cls(alarm)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> AlarmResource:
        name = cloudformation_json["Properties"].get("AlarmName", original_resource.alarm.name)
        if name != original_resource.alarm.name:
            original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError  # instances delete themselves (ResourceMap tries .delete first)

    def delete(self, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_alarms([self.alarm.name])


def _query(q: dict[str, Any]) -> MetricDataQuery:
    """One entry of an alarm's Metrics (metric math), as moto's API model holds it."""
    stat = q.get("MetricStat")
    metric_stat = None
    if stat:
        m = stat["Metric"]
        dimensions = [Dimension(d["Name"], d["Value"]) for d in m.get("Dimensions") or []]
        metric = Metric(m["MetricName"], m["Namespace"], dimensions)
        metric_stat = MetricStat(metric, str(stat["Period"]), stat["Stat"], stat.get("Unit", ""))
    return MetricDataQuery(
        q["Id"],
        q.get("Label", ""),
        None if q.get("Period") is None else str(q["Period"]),  # type: ignore[arg-type]  # "" fails DescribeAlarms
        str(q.get("ReturnData", True)),
        q.get("Expression"),
        metric_stat,
    )


class CloudWatchAlarmsFromTemplates(Extension):
    name = "cloudwatch_alarms_from_templates"

    def patches(self) -> Iterable[Patch]:
        model_map: Callable[[], dict[str, Any]] = parsing.get_model_map
        name_map: Callable[[], dict[str, str]] = parsing.get_name_type_map

        def get_model_map() -> dict[str, Any]:
            return {**model_map(), ALARM: AlarmResource}

        def get_name_type_map() -> dict[str, str]:
            return {**name_map(), ALARM: AlarmResource.cloudformation_name_type()}

        yield parsing, "get_model_map", get_model_map
        yield parsing, "get_name_type_map", get_name_type_map


# --- evaluation --------------------------------------------------------------------------


def _statistic(values: list[float], alarm: Alarm) -> float:
    extended = alarm.extended_statistic
    if extended:
        ordered = sorted(values)
        rank = max(0, math.ceil(float(extended[1:]) / 100 * len(ordered)) - 1)
        return ordered[rank]
    return {
        "Sum": sum,
        "Average": lambda v: sum(v) / len(v),
        "Maximum": max,
        "Minimum": min,
        "SampleCount": len,
    }[alarm.statistic or "Average"](values)


def _breaches(value: float, alarm: Alarm) -> bool:
    threshold = float(alarm.threshold)
    return {
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "GreaterThanThreshold": value > threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }.get(alarm.comparison_operator, False)


def _datapoints(backend: CloudWatchBackend, alarm: Alarm) -> list[list[float]]:
    """The values of the last EvaluationPeriods periods (oldest first), periods scaled."""
    return _windows(
        backend, alarm.namespace, alarm.metric_name, alarm.dimensions, alarm.period, alarm.evaluation_periods
    )


def _windows(
    backend: CloudWatchBackend, namespace: str, metric_name: str, dimensions: Any, period_s: Any, count: Any
) -> list[list[float]]:
    period = timedelta(seconds=scaled(float(period_s or 60)))
    now = datetime.now(UTC)
    wanted = {(d.name, d.value) for d in dimensions}
    windows: list[list[float]] = [[] for _ in range(int(count))]
    start = now - period * len(windows)
    for datum in list(backend.metric_data):
        if datum.namespace != namespace or datum.name != metric_name:
            continue
        if {(d.name, d.value) for d in datum.dimensions} != wanted or not hasattr(datum, "value"):
            continue
        stamp = datum.timestamp if datum.timestamp.tzinfo else datum.timestamp.replace(tzinfo=UTC)
        if start <= stamp < now:
            windows[min(len(windows) - 1, int((stamp - start) / period))].append(float(datum.value))
    return windows


_STATS: dict[str, Callable[[list[float]], float]] = {
    "Sum": sum,
    "Average": lambda v: sum(v) / len(v),
    "Maximum": max,
    "Minimum": min,
    "SampleCount": lambda v: float(len(v)),
}


def _math_values(backend: CloudWatchBackend, alarm: Alarm) -> list[float | None]:
    """A metric math alarm's expression value per period (oldest first); None where it has no datapoint."""
    periods = int(alarm.evaluation_periods)
    series: dict[str, list[list[float]]] = {}
    for q in alarm.metric_data_queries:
        if q.metric_stat is not None:
            m = q.metric_stat.metric
            series[q.id] = _windows(backend, m.namespace, m.metric_name, m.dimensions, q.metric_stat.period, periods)
    stats = {q.id: q.metric_stat.stat for q in alarm.metric_data_queries if q.metric_stat is not None}
    out: list[float | None] = []
    for index in range(periods):

        def per_query(q: Any, index: int = index) -> float | None:
            window = series[q.id][index]
            return _STATS[stats[q.id]](window) if window else None

        expression, values = metric_math.query_values(alarm.metric_data_queries, per_query)
        out.append(metric_math.evaluate(expression, values))
    return out


def evaluate(backend: CloudWatchBackend, alarm: Alarm) -> str:
    """OK or ALARM, from the metric data, as CloudWatch evaluates a metric (or metric math) alarm."""
    missing_breaches = alarm.treat_missing_data == "breaching"
    breaching = 0
    if alarm.metric_data_queries:
        for value in _math_values(backend, alarm):
            breaching += _breaches(value, alarm) if value is not None else missing_breaches
        needed = int(alarm.datapoints_to_alarm or alarm.evaluation_periods)
        return "ALARM" if breaching >= needed else "OK"
    for values in _datapoints(backend, alarm):
        breaching += _breaches(_statistic(values, alarm), alarm) if values else missing_breaches
    needed = int(alarm.datapoints_to_alarm or alarm.evaluation_periods)
    return "ALARM" if breaching >= needed else "OK"


class CloudWatchAlarmsEvaluateMetrics(PeriodicExtension):
    name = "cloudwatch_alarms_evaluate_metrics"
    thread_name = "cloudwatch-alarm-evaluation"
    tick_seconds = EVALUATION_TICK

    def tick(self) -> None:
        for account in list(cloudwatch_backends.keys()):
            for backend in list(cloudwatch_backends[account].values()):
                for alarm in list(backend.alarms.values()):
                    # metric alarms with data to evaluate, and metric math alarms
                    if (alarm.metric_name and alarm.period) or alarm.metric_data_queries:
                        self._update(backend, alarm)

    @staticmethod
    def _update(backend: CloudWatchBackend, alarm: Alarm) -> None:
        names = {alarm.metric_name} | {
            q.metric_stat.metric.metric_name for q in alarm.metric_data_queries if q.metric_stat is not None
        }
        if not any(d.name in names for d in list(backend.metric_data)):
            return  # no data ever published: the state stays as created or as SetAlarmState set it
        state = evaluate(backend, alarm)
        if state != alarm.state_value:
            reason = (
                f"Threshold Crossed: {alarm.evaluation_periods} datapoint(s) were evaluated "
                f"against the threshold {alarm.threshold} ({alarm.comparison_operator})."
            )
            alarm.update_state(reason, "{}", state)
