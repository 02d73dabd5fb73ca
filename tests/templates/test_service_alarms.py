"""The 5xx rollback alarm is a rate over a minimum request count: a handful of requests cannot trip it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pipeline import config
from pipeline.errors import ConfigError
from pipeline.templates.service import build_service


def errors_alarm(settings: config.Settings, env: str = "production") -> dict[str, Any]:
    body = build_service(settings, env).to_dict()["Resources"]
    return dict(body["TargetErrorsAlarm"]["Properties"])


def rate(errors: float | None, requests: float, expression: str) -> float:
    """CloudWatch's IF/FILL for one minute's datapoints (None: no 5xx datapoint that minute)."""
    match = re.fullmatch(r"IF\(requests >= (\d+), 100 \* FILL\(errors, 0\) / requests, 0\)", expression)
    assert match, expression
    minimum = int(match[1])
    return 100 * (errors or 0) / requests if requests >= minimum else 0.0


def test_the_5xx_alarm_is_a_rate_of_the_target_groups_requests(settings: config.Settings) -> None:
    alarm = errors_alarm(settings)
    service = settings.environment("production").service

    assert "MetricName" not in alarm and "Threshold" in alarm
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    assert [q["Id"] for q in alarm["Metrics"] if q["ReturnData"]] == ["rate"]
    for query_id, metric_name in (("errors", "HTTPCode_Target_5XX_Count"), ("requests", "RequestCount")):
        stat = queries[query_id]["MetricStat"]
        assert stat["Metric"]["MetricName"] == metric_name and stat["Stat"] == "Sum" and stat["Period"] == 60
        assert {d["Name"] for d in stat["Metric"]["Dimensions"]} == {"LoadBalancer", "TargetGroup"}
    assert alarm["Threshold"] == service.alarm_5xx_percent
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(
    ("errors", "requests", "fires"),
    [
        pytest.param(10, 12, False, id="a-stranger's-handful"),  # the old count alarm fired at 10
        pytest.param(49, 49, False, id="every-request-fails-below-the-minimum"),
        pytest.param(10, 1000, False, id="one-percent-of-real-traffic"),
        pytest.param(50, 1000, True, id="five-percent-of-real-traffic"),
        pytest.param(50, 50, True, id="a-broken-release-at-the-minimum"),
        pytest.param(None, 1000, False, id="no-5xx-datapoint"),
    ],
)
def test_what_trips_the_alarm(settings: config.Settings, errors: float | None, requests: float, fires: bool) -> None:
    alarm = errors_alarm(settings)
    expression = next(q["Expression"] for q in alarm["Metrics"] if q["Id"] == "rate")

    assert (rate(errors, requests, expression) >= alarm["Threshold"]) is fires


def test_rate_and_minimum_come_from_settings(raw_settings: dict[str, Any]) -> None:
    raw_settings["service"].update(alarm_5xx_percent=2.5, alarm_min_requests=200)
    alarm = errors_alarm(config.parse(raw_settings))
    expression = next(q["Expression"] for q in alarm["Metrics"] if q["Id"] == "rate")
    assert alarm["Threshold"] == 2.5 and expression.startswith("IF(requests >= 200,")


@pytest.mark.parametrize(
    ("key", "value"),
    [("alarm_5xx_percent", 0), ("alarm_5xx_percent", 101), ("alarm_min_requests", 0), ("alarm_5xx_count", 10)],
)
def test_bad_alarm_settings_name_the_key(raw_settings: dict[str, Any], key: str, value: Any) -> None:
    raw_settings["service"][key] = value
    with pytest.raises(ConfigError) as refused:
        config.parse(raw_settings)
    assert refused.value.key == f"service.{key}" and refused.value.hint
    if key == "alarm_5xx_count":  # the old count setting points at its replacement
        assert "alarm_5xx_percent" in refused.value.hint
