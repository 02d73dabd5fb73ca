"""Target groups as an ALB sees them: registered targets, their health from real HTTP probes, draining.

AWS behaviour reproduced:
- a registered target starts `initial` and "must pass one health check to be considered healthy";
  after that it becomes `unhealthy` after UnhealthyThresholdCount consecutive failing checks and
  `healthy` again after HealthyThresholdCount passing ones, one check per interval, each with the
  group's timeout, path and matcher ("Health checks for Application Load Balancer target groups");
- fail-open: when every registered target of a group is unhealthy, the load balancer routes
  requests to all of them (same page: "the load balancer fails open");
- a deregistered target is `draining`: no new requests; deregistration completes when its in-flight
  requests are done or after the deregistration delay, whichever comes first (ALB docs);
- describe_target_health reports those states with AWS's reason codes (moto says `healthy` always).
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

from .timescale import TimeScale


class TargetState(StrEnum):
    INITIAL = "initial"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"


_REASONS: dict[TargetState, tuple[str, str]] = {
    TargetState.INITIAL: ("Elb.RegistrationInProgress", "Target registration is in progress"),
    TargetState.DRAINING: ("Target.DeregistrationInProgress", "Target deregistration is in progress"),
}


def matches(matcher: str, status: int) -> bool:
    """ALB's HttpCode matcher: "200", "200,202" or "200-299"."""
    for part in matcher.split(","):
        low, _, high = part.strip().partition("-")
        if int(low) <= status <= int(high or low):
            return True
    return False


@dataclass(frozen=True)
class HealthCheck:
    """A target group's health check settings, its waits already scaled (the probe timeout is not)."""

    path: str
    interval: float
    timeout: float
    healthy_threshold: int
    unhealthy_threshold: int
    matcher: str
    deregistration_delay: float

    @classmethod
    def of(cls, group: FakeTargetGroup, scale: TimeScale) -> HealthCheck:
        return cls(
            path=group.health_check_path or "/",
            interval=scale.seconds(float(group.health_check_interval_seconds)),
            # Not scaled: the timeout bounds the application's own answer, which takes real time here as
            # on AWS (a scaled 5 s would fail a healthy target whenever the machine is busy).
            timeout=float(group.health_check_timeout_seconds),
            healthy_threshold=int(group.healthy_threshold_count),
            unhealthy_threshold=int(group.unhealthy_threshold_count),
            matcher=str((getattr(group, "matcher", None) or {}).get("HttpCode", "200")),
            deregistration_delay=scale.seconds(
                float(group.attributes.get("deregistration_delay.timeout_seconds", 300))
            ),
        )


@dataclass
class Target:
    """One registered target: its ALB identity (task IP, container port) and where it really listens."""

    group_arn: str
    id: str
    port: int
    host_port: int
    state: TargetState = TargetState.INITIAL
    reason: str | None = "Elb.RegistrationInProgress"
    description: str | None = "Target registration is in progress"
    in_flight: int = 0
    first_answer: float | None = None  # monotonic time of the first HTTP answer to a health check
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def set_state(self, state: TargetState, reason: str | None = None, description: str | None = None) -> None:
        with self._changed:
            self.state = state
            self.reason, self.description = _REASONS.get(state, (reason, description))
            self._changed.notify_all()

    def begin_request(self, fail_open: bool = False) -> bool:
        """Count a request in flight; False when the target no longer takes new ones."""
        with self._changed:
            allowed = (TargetState.HEALTHY, TargetState.UNHEALTHY) if fail_open else (TargetState.HEALTHY,)
            if self.state not in allowed:
                return False
            self.in_flight += 1
            return True

    def end_request(self) -> None:
        with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def drain(self, delay: float) -> None:
        """Stop new requests; return when in-flight ones are done or after `delay`."""
        with self._changed:
            self.set_state(TargetState.DRAINING)
            self._changed.wait_for(lambda: self.in_flight == 0, timeout=delay)


class TargetGroups:
    """All targets of all target groups this local AWS routes to, keyed by group ARN and target id."""

    def __init__(self) -> None:
        self._targets: dict[str, dict[str, Target]] = {}
        self._turns: dict[str, Iterator[int]] = {}
        self._lock = threading.Lock()

    def add(self, target: Target) -> None:
        with self._lock:
            self._targets.setdefault(target.group_arn, {})[target.id] = target

    def remove(self, target: Target) -> None:
        with self._lock:
            group = self._targets.get(target.group_arn, {})
            if group.get(target.id) is target:
                del group[target.id]

    def get(self, group_arn: str, target_id: str) -> Target | None:
        with self._lock:
            return self._targets.get(group_arn, {}).get(target_id)

    def healthy(self, group_arn: str) -> list[Target]:
        with self._lock:
            return [t for t in self._targets.get(group_arn, {}).values() if t.state is TargetState.HEALTHY]

    def fail_open(self, group_arn: str) -> list[Target]:
        """Every registered (not draining) target, when all of them are unhealthy; else none."""
        with self._lock:
            registered = [t for t in self._targets.get(group_arn, {}).values() if t.state is not TargetState.DRAINING]
        if registered and all(t.state is TargetState.UNHEALTHY for t in registered):
            return registered
        return []

    def pick(self, group_arn: str) -> Target | None:
        """Round robin over the healthy targets (all of them when every one is unhealthy: fail-open);
        the request is counted in flight on the one returned."""
        for _ in range(3):  # a target may stop taking requests between listing and counting
            candidates, fail_open = self.healthy(group_arn), False
            if not candidates:
                candidates, fail_open = self.fail_open(group_arn), True
            if not candidates:
                return None
            with self._lock:
                turn = next(self._turns.setdefault(group_arn, itertools.count()))
            target = candidates[turn % len(candidates)]
            if target.begin_request(fail_open):
                return target
        return None

    def clear(self) -> None:
        with self._lock:
            self._targets.clear()
            self._turns.clear()

    def health_for(self, group: FakeTargetGroup, target: dict[str, Any]) -> FakeHealthStatus | None:
        """describe_target_health's answer for a target we run, or None to let moto answer."""
        ours = self.get(group.arn, target["Id"])
        if ours is None:
            return None
        return FakeHealthStatus(
            ours.id, str(ours.port), group.health_check_port, ours.state.value, ours.reason, ours.description
        )


def probe(target: Target, check: HealthCheck) -> tuple[bool, str, str]:
    """One health check request; (passed, reason code, description) as ALB words a failure."""
    connection = http.client.HTTPConnection("127.0.0.1", target.host_port, timeout=check.timeout)
    try:
        connection.request("GET", check.path, headers={"User-Agent": "ELB-HealthChecker/2.0"})
        response = connection.getresponse()
        response.read()
    except TimeoutError:
        return False, "Target.Timeout", "Request timed out"
    except OSError:
        return False, "Target.FailedHealthChecks", "Health checks failed"
    finally:
        connection.close()
    if matches(check.matcher, response.status):
        return True, "", ""
    return False, "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{response.status}]"


class HealthChecker:
    """Probes one target every interval until stopped or draining, moving it between states."""

    def __init__(self, target: Target, check: HealthCheck) -> None:
        self.target, self.check = target, check
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"health-{target.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the prober to end (it finishes the probe in flight, bounded by the timeout)."""
        self._stop.set()

    def join(self) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.check.timeout + 1)

    def _run(self) -> None:
        passes = fails = 0
        while not self._stop.wait(self.check.interval):
            if self.target.state is TargetState.DRAINING:
                return
            passed, reason, description = probe(self.target, self.check)
            if self._stop.is_set() or self.target.state is TargetState.DRAINING:
                return
            if self.target.first_answer is None and (passed or reason == "Target.ResponseCodeMismatch"):
                self.target.first_answer = time.monotonic()
            passes, fails = (passes + 1, 0) if passed else (0, fails + 1)
            needed = 1 if self.target.state is TargetState.INITIAL else self.check.healthy_threshold
            if passed and passes >= needed:
                if self.target.state is not TargetState.HEALTHY:
                    self.target.set_state(TargetState.HEALTHY)
            elif not passed and fails >= self.check.unhealthy_threshold:
                self.target.set_state(TargetState.UNHEALTHY, reason, description)
