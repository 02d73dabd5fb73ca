"""The local ALB routes as the listener and the load balancer's attributes say: weighted forwards,
rules by priority, 504 after the (scaled) idle timeout, invalid header fields dropped when enabled.

Targets here are plain HTTP servers on loopback registered as healthy, so no image is built."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from local_ground.aws import LocalAWS
from local_ground.moto_extensions import all_extensions
from local_ground.tasks import EcsTasksRunForReal
from local_ground.tasks.targets import Target, TargetState

SCALE = 0.02
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _Backend(BaseHTTPRequestHandler):
    name = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(3)
        body = json.dumps({"name": self.name, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Ground:
    elbv2: Any
    balancer: str
    listener: str
    groups: dict[str, str]
    url: str


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the proxy hangs up on /slow after its idle timeout: expected


def _server(name: str) -> ThreadingHTTPServer:
    server = _QuietServer(("127.0.0.1", 0), type("Handler", (_Backend,), {"name": name}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture()
def ground() -> Iterator[Ground]:
    tasks = EcsTasksRunForReal(None, time_scale=SCALE)
    servers = {name: _server(name) for name in ("a", "b")}
    with LocalAWS(extensions=[*all_extensions(), tasks]) as aws:
        kw = {"endpoint_url": aws.endpoint_url, "region_name": aws.region}
        kw |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        ec2, elbv2 = boto3.client("ec2", **kw), boto3.client("elbv2", **kw)
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"][
                "SubnetId"
            ]
            for i, z in enumerate("ab")
        ]
        balancer = elbv2.create_load_balancer(Name="alb", Subnets=subnets)["LoadBalancers"][0]
        groups = {}
        for name, server in servers.items():
            arn = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")[
                "TargetGroups"
            ][0]["TargetGroupArn"]
            target = Target(arn, f"10.1.0.{len(groups) + 10}", 8080, server.server_address[1])
            target.set_state(TargetState.HEALTHY)
            tasks.targets.add(target)
            groups[name] = arn
        forward = {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": groups["a"], "Weight": 3},
                    {"TargetGroupArn": groups["b"], "Weight": 1},
                ]
            },
        }
        listener = elbv2.create_listener(
            LoadBalancerArn=balancer["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=[forward]
        )["Listeners"][0]["ListenerArn"]
        yield Ground(elbv2, balancer["LoadBalancerArn"], listener, groups, f"http://{balancer['DNSName']}")
        tasks.uninstall()
    for server in servers.values():
        server.shutdown()
        server.server_close()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _DIRECT.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {}


def _set(g: Ground, key: str, value: str) -> None:
    g.elbv2.modify_load_balancer_attributes(LoadBalancerArn=g.balancer, Attributes=[{"Key": key, "Value": value}])


def test_a_weighted_forward_splits_requests_by_weight(ground: Ground) -> None:
    served = Counter(get(ground.url + "/")[1]["name"] for _ in range(200))
    assert set(served) == {"a", "b"}
    assert 115 <= served["a"] <= 185  # 3:1 expects 150 of 200


def test_listener_rules_route_before_the_default_action(ground: Ground) -> None:
    ground.elbv2.create_rule(
        ListenerArn=ground.listener,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/b/*"]}}],
        Actions=[{"Type": "forward", "TargetGroupArn": ground.groups["b"]}],
    )
    ground.elbv2.create_rule(
        ListenerArn=ground.listener,
        Priority=20,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/gone"]}}],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "410", "ContentType": "text/plain"}}],
    )
    assert {get(ground.url + "/b/x")[1]["name"] for _ in range(20)} == {"b"}
    assert get(ground.url + "/gone")[0] == 410


def test_a_target_slower_than_the_idle_timeout_gets_a_504(ground: Ground) -> None:
    _set(ground, "idle_timeout.timeout_seconds", "50")  # 1 s here
    started = time.monotonic()
    status, _ = get(ground.url + "/slow")
    assert status == 504
    assert time.monotonic() - started < 2.5  # before the target's 3 s answer
    assert get(ground.url + "/")[0] == 200


def test_invalid_header_fields_are_dropped_when_the_attribute_is_enabled(ground: Ground) -> None:
    sent = {"X-Good": "1", "X_Bad": "2"}
    assert {"X-Good", "X_Bad"} <= set(get(ground.url + "/", sent)[1]["headers"])
    _set(ground, "routing.http.drop_invalid_header_fields.enabled", "true")
    seen = set(get(ground.url + "/", sent)[1]["headers"])
    assert "X-Good" in seen and "X_Bad" not in seen
