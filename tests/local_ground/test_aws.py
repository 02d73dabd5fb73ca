"""LocalAWS: one context manager that starts moto on loopback and leaves nothing behind."""

from __future__ import annotations

import socket
import threading

import boto3
import pytest
from moto.cloudformation.models import CloudFormationBackend

from local_ground.aws import LocalAWS
from local_ground.moto_extensions import EXTENSION_NAMES, all_extensions


def test_environ_is_plain_boto3_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalAWS(region="eu-west-1") as aws:
        env = aws.environ()
        assert env == {
            "AWS_ENDPOINT_URL": aws.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_REGION": "eu-west-1",
        }
        assert aws.endpoint_url.startswith("http://127.0.0.1:")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        identity = boto3.client("sts").get_caller_identity()  # no endpoint_url passed
        assert identity["Account"] == "123456789012"
        assert boto3.client("ecs").list_clusters()["clusterArns"] == []


def test_stop_leaves_no_thread_or_port() -> None:
    threads_before = set(threading.enumerate())
    with LocalAWS() as aws:
        host, port = aws.endpoint_url.removeprefix("http://").split(":")
        boto3.client("ecs", **_client_config(aws)).list_clusters()
    assert set(threading.enumerate()) <= threads_before
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=1).close()


def test_extensions_are_installed_only_while_running() -> None:
    original = CloudFormationBackend.execute_change_set
    aws = LocalAWS()
    assert all(not extension.installed for extension in aws.extensions)
    with aws:
        assert [e.name for e in aws.extensions] == list(EXTENSION_NAMES)
        assert all(extension.installed for extension in aws.extensions)
        assert CloudFormationBackend.execute_change_set is not original
    assert CloudFormationBackend.execute_change_set is original
    assert all(not extension.installed for extension in aws.extensions)


def test_a_chosen_set_of_extensions() -> None:
    with LocalAWS(extensions=all_extensions(without=("throttling_injection",))) as aws:
        assert "throttling_injection" not in [e.name for e in aws.extensions]
    with pytest.raises(ValueError):
        all_extensions(without=("no_such_behaviour",))


def test_state_is_reset_on_exit() -> None:
    with LocalAWS() as aws:
        boto3.client("ecs", **_client_config(aws)).create_cluster(clusterName="left-behind")
    with LocalAWS() as aws:
        assert boto3.client("ecs", **_client_config(aws)).list_clusters()["clusterArns"] == []


def test_not_reentrant() -> None:
    with LocalAWS() as aws:
        with pytest.raises(RuntimeError):
            aws.start()
    with pytest.raises(RuntimeError):
        _ = aws.endpoint_url


def _client_config(aws: LocalAWS) -> dict[str, str]:
    env = aws.environ()
    return {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "region_name": env["AWS_REGION"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
