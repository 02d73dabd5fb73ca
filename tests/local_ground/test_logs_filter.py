"""FilterLogEvents with logStreamNamePrefix reads only the streams with that prefix, as CloudWatch Logs
does (moto 5.2.5 ignores the prefix); both a prefix and stream names are refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_ground.aws import LocalAWS
from local_ground.moto_extensions import all_extensions

NAME = "filter_log_events_honours_stream_prefix"
GROUP = "/ecs/app-staging"


def _logs(without: tuple[str, ...]) -> Iterator[Any]:
    with LocalAWS(extensions=all_extensions(without=without)) as aws:
        logs = boto3.client(
            "logs",
            endpoint_url=aws.endpoint_url,
            region_name=aws.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        logs.create_log_group(logGroupName=GROUP)
        for stream, message in (("model/model/task1", "from the model"), ("sidecar/proxy/task1", "from a sidecar")):
            logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
            logs.put_log_events(
                logGroupName=GROUP,
                logStreamName=stream,
                logEvents=[{"timestamp": int(time.time() * 1000), "message": message}],
            )
        yield logs


def _messages(logs: Any, prefix: str) -> list[str]:
    return [e["message"] for e in logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix=prefix)["events"]]


@pytest.fixture
def logs() -> Iterator[Any]:
    yield from _logs(())


def test_the_prefix_selects_streams(logs: Any) -> None:
    assert _messages(logs, "model/") == ["from the model"]
    assert _messages(logs, "nothing/") == []
    assert sorted(e["message"] for e in logs.filter_log_events(logGroupName=GROUP)["events"]) == [
        "from a sidecar",
        "from the model",
    ]


def test_a_prefix_and_stream_names_together_are_refused(logs: Any) -> None:
    with pytest.raises(ClientError) as refused:
        logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="model/", logStreamNames=["model/model/task1"])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


def test_the_gap_without_it() -> None:
    for logs in _logs((NAME,)):
        assert sorted(_messages(logs, "model/")) == ["from a sidecar", "from the model"], "moto ignores the prefix"
