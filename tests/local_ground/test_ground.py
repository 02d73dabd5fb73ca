"""The three local stand-ins start and stop together, and leave no process, thread or port behind."""

from __future__ import annotations

import os
import socket
import threading
from unittest import mock
from urllib.parse import urlsplit

import boto3
from github import Auth, Github

from local_ground.ground import LocalGround


def port_open(host_port: str) -> bool:
    host, port = host_port.rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, int(port))) == 0


def test_ground_serves_aws_registry_and_github_then_leaves_nothing() -> None:
    threads_before = {t.ident for t in threading.enumerate()}
    with LocalGround(run_tasks=False) as ground:
        env = ground.environ()
        assert ground.registry is not None and ground.bridge is not None and ground.github is not None
        registry_pid = ground.registry.pid
        endpoints = [
            urlsplit(env["AWS_ENDPOINT_URL"]).netloc,
            ground.bridge.host,
            ground.registry.host,
            urlsplit(env["GITHUB_API_URL"]).netloc,
        ]
        assert all(port_open(e) for e in endpoints)
        with mock.patch.dict(os.environ, env):
            login = boto3.client("ecr").get_authorization_token()["authorizationData"][0]
            assert login["proxyEndpoint"] == ground.bridge.url
            repo = Github(base_url=env["GITHUB_API_URL"], auth=Auth.Token(env["GITHUB_TOKEN"])).get_repo(
                env["GITHUB_REPOSITORY"]
            )
            assert repo.full_name == "acme/iris-classifier"
    assert not any(port_open(e) for e in endpoints)
    assert registry_pid is not None
    try:
        os.kill(registry_pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, "the registry process outlived the ground"
    left = [t for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
    assert left == []
