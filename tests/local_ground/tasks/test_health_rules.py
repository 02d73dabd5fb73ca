"""Where the real-task runner must not be stricter than AWS: a new target is healthy after one
passing check, the ALB fails open when every target is unhealthy, and a healthy task resets the
circuit breaker's failure count."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from local_ground.tasks.service import ServiceController
from local_ground.tasks.targets import HealthCheck, HealthChecker, Target, TargetGroups, TargetState
from local_ground.tasks.timescale import TimeScale

GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1"


class _Ok(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture()
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_new_target_is_healthy_after_one_passing_check(port: int) -> None:
    target = Target(GROUP, "10.0.0.1", 8080, port)
    check = HealthCheck(
        "/",
        interval=0.05,
        timeout=1.0,
        healthy_threshold=5,
        unhealthy_threshold=2,
        matcher="200",
        deregistration_delay=0.0,
    )
    checker = HealthChecker(target, check)
    checker.start()
    try:
        deadline = time.monotonic() + 5
        while target.state is not TargetState.HEALTHY and time.monotonic() < deadline:
            time.sleep(0.01)
        elapsed = 5 - (deadline - time.monotonic())
        assert target.state is TargetState.HEALTHY
        assert elapsed < 4 * check.interval + 1  # well before HealthyThresholdCount (5) checks
    finally:
        checker.stop()
        checker.join()


def test_the_load_balancer_fails_open_when_every_target_is_unhealthy() -> None:
    groups = TargetGroups()
    a, b = Target(GROUP, "10.0.0.1", 8080, 1), Target(GROUP, "10.0.0.2", 8080, 2)
    for target in (a, b):
        target.set_state(TargetState.UNHEALTHY, "Target.FailedHealthChecks", "Health checks failed")
        groups.add(target)
    picked = Counter()
    for _ in range(4):
        target = groups.pick(GROUP)
        assert target is not None
        picked[target.id] += 1
        target.end_request()
    assert set(picked) == {"10.0.0.1", "10.0.0.2"}  # routed to all of them
    b.set_state(TargetState.HEALTHY)
    assert {groups.pick(GROUP).id for _ in range(4)} == {"10.0.0.2"}  # type: ignore[union-attr]
    b.set_state(TargetState.DRAINING)
    a.set_state(TargetState.INITIAL)
    assert groups.pick(GROUP) is None  # not all unhealthy: nothing to route to, 503


def _controller(reset: bool | None) -> ServiceController:
    controller = ServiceController.__new__(ServiceController)  # no scheduler thread: the rule alone
    breaker: dict[str, Any] = {"enable": True, "rollback": True}
    if reset is not None:
        breaker["resetOnHealthyTask"] = reset
    service = SimpleNamespace(deployment_configuration={"deploymentCircuitBreaker": breaker})
    controller.model = SimpleNamespace(service=service)  # type: ignore[assignment]
    controller.failures = Counter({"d1": 2})
    controller._seen_healthy = set()
    return controller


@pytest.mark.parametrize(("reset", "left"), [(None, 0), (True, 0), (False, 2)])
def test_a_healthy_task_resets_the_circuit_breaker_failure_count(reset: bool | None, left: int) -> None:
    controller = _controller(reset)
    primary = SimpleNamespace(id="d1")
    controller._reset_failures_on_healthy(primary, [SimpleNamespace(id="t1", healthy=False)])  # type: ignore[arg-type]
    assert controller.failures["d1"] == 2
    controller._reset_failures_on_healthy(primary, [SimpleNamespace(id="t1", healthy=True)])  # type: ignore[arg-type]
    assert controller.failures["d1"] == left


def test_the_grace_period_gives_the_application_its_real_start_up_time() -> None:
    controller = ServiceController.__new__(ServiceController)
    controller.runtime = SimpleNamespace(scale=TimeScale(0.02))  # type: ignore[assignment]
    target = Target(GROUP, "10.0.0.1", 8080, 1)
    task = SimpleNamespace(running_since=100.0, target=target)
    # Not answering yet: the whole 20 s grace period, as on Fargate (the app starts in real time).
    assert controller._grace_ends(task, 20.0) == pytest.approx(120.0)  # type: ignore[arg-type]
    # First answered 1.5 s after start: that much is real, the rest of the 20 s is scaled.
    target.first_answer = 101.5
    assert controller._grace_ends(task, 20.0) == pytest.approx(101.5 + 0.02 * 18.5)  # type: ignore[arg-type]
    # An application that answers at once keeps the scaled grace period.
    target.first_answer = 100.0
    assert controller._grace_ends(task, 20.0) == pytest.approx(100.0 + 0.4)  # type: ignore[arg-type]
