"""GetMetricData answers percentile statistics (moto 5.2.5 fails the call: HTTP 500)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from local_ground.aws import LocalAWS
from local_ground.moto_extensions import all_extensions


def p99(without: tuple[str, ...] = ()) -> list[float]:
    with LocalAWS(extensions=all_extensions(without=without)) as aws:
        cloudwatch = boto3.client(
            "cloudwatch",
            endpoint_url=aws.endpoint_url,
            region_name=aws.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        metric = {"Namespace": "AWS/ApplicationELB", "MetricName": "TargetResponseTime"}
        cloudwatch.put_metric_data(
            Namespace=metric["Namespace"],
            MetricData=[{"MetricName": metric["MetricName"], "Value": v / 100} for v in range(1, 101)],
        )
        now = datetime.now(UTC)
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "p", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "p99"}}],
            StartTime=now - timedelta(minutes=1),
            EndTime=now + timedelta(minutes=1),
        )
        return list(answer["MetricDataResults"][0]["Values"])


def test_percentiles_are_the_nearest_rank_of_the_period() -> None:
    assert p99() == [0.99]


def test_without_the_extension_moto_fails_the_call() -> None:
    with pytest.raises(ClientError, match="500"):
        p99(without=("cloudwatch_percentile_statistics",))
