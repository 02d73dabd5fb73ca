"""ecs_deployment_alarms: with DeploymentConfiguration.Alarms enabled, ECS watches the named
CloudWatch alarms through the deployment and a bake time after it reaches steady state; the
deployment is COMPLETED only after the bake, and an alarm in ALARM fails it (and, with rollback,
rolls the service back to the last completed deployment).

AWS: "How CloudWatch alarms detect Amazon ECS deployment failures"
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html):
"Amazon ECS sets the deployment to failed when it detects that a specified CloudWatch alarm has gone
into the ALARM state"; "The bake time is a period of time after a new service version has scaled
out and the old service version has scaled in, during which Amazon ECS continues to monitor the
alarm ... Amazon ECS computes this time period based on the alarm configuration". The formula is
not published: here the bake lasts the longest Period x EvaluationPeriods of the named alarms (the
time one of them needs to see a full evaluation), scaled by the local time factor. The
rolloutStateReason wording below is this ground's, not copied from ECS.

moto 5.2.5 (and the deployments model without this extension) COMPLETES a deployment as soon as
it is steady and never looks at alarms.

Alarms already in ALARM when a deployment starts are ignored for it until they leave ALARM
(Copilot's documentation of ECS alarm-based rollbacks: the setting "is ignored if associated
alarms are already in alarm state"); this also keeps the rollback deployment a firing alarm
started from being failed by the same alarm.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends

from ._base import Extension, Patch
from .deployments import Deployment, RolloutState, ServiceDeployments
from .timescale import scaled
from .traffic_deployments import shifts_traffic

TICK = 0.02


def alarm_configuration(model: ServiceDeployments) -> dict[str, Any] | None:
    config = (getattr(model.service, "deployment_configuration", None) or {}).get("alarms") or {}
    names = [n for n in config.get("alarmNames") or [] if n]
    if not config.get("enable") or not names:
        return None
    return {**config, "alarmNames": names}


def _alarms(model: ServiceDeployments, names: list[str]) -> list[Any]:
    service = model.service
    backend = cloudwatch_backends[service._backend.account_id][service.region_name]
    return [backend.alarms[n] for n in names if n in backend.alarms]


def bake_seconds(model: ServiceDeployments, names: list[str]) -> float:
    periods = [float(a.period or 60) * int(a.evaluation_periods or 1) for a in _alarms(model, names)]
    return scaled(max(periods, default=0.0))


class _Watch:
    """One deployment's alarm watch: from its start to COMPLETED (after the bake) or FAILED."""

    def __init__(self, model: ServiceDeployments, deployment: Deployment, complete: Any) -> None:
        self.model, self.deployment, self._complete = model, deployment, complete
        self.steady_since: float | None = None
        # Alarms already in ALARM when the deployment starts do not fail it (so the rollback
        # deployment a firing alarm started is not failed by the same alarm).
        config = alarm_configuration(model) or {"alarmNames": []}
        self.ignored = {a.name for a in _alarms(model, config["alarmNames"]) if a.state_value == "ALARM"}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ecs-alarms-{deployment.id[-6:]}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(TICK):
            if self.deployment.rollout_state is not RolloutState.IN_PROGRESS:
                return
            config = alarm_configuration(self.model)
            if config is None:  # alarms turned off meanwhile: behave as without them
                if self.steady_since is not None:
                    self._complete(self.model, self.deployment.id)
                return
            states = {a.name: a.state_value for a in _alarms(self.model, config["alarmNames"])}
            self.ignored &= {name for name, state in states.items() if state == "ALARM"}  # back to OK: watched again
            firing = [name for name, state in states.items() if state == "ALARM" and name not in self.ignored]
            if firing:
                self.model.mark_failed(
                    f"alarm(s) detected in ALARM state: {', '.join(firing)}.",
                    self.deployment.id,
                    source="alarms",
                    rollback=bool(config.get("rollback")),
                )
                return
            if self.steady_since is not None:
                if time.monotonic() - self.steady_since >= bake_seconds(self.model, config["alarmNames"]):
                    self._complete(self.model, self.deployment.id)
                    return


class EcsDeploymentAlarms(Extension):
    name = "ecs_deployment_alarms"

    def __init__(self) -> None:
        super().__init__()
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()

    def patches(self) -> Iterable[Patch]:
        start = ServiceDeployments.start_deployment
        complete = ServiceDeployments.mark_completed
        watches, lock = self._watches, self._lock

        def start_deployment(model: ServiceDeployments, task_definition: str) -> Deployment:
            deployment = start(model, task_definition)
            if alarm_configuration(model) is not None and not shifts_traffic(model.service):
                with lock:
                    watches[deployment.id] = _Watch(model, deployment, complete)
            return deployment

        def mark_completed(model: ServiceDeployments, deployment_id: str | None = None) -> Deployment:
            deployment = model.get(deployment_id)
            config = alarm_configuration(model)
            if (
                config is None
                or shifts_traffic(model.service)  # traffic_deployments watches those alarms itself
                or deployment.rollout_state is not RolloutState.IN_PROGRESS
                or bake_seconds(model, config["alarmNames"]) == 0  # no alarm to watch: nothing to bake
            ):
                return complete(model, deployment_id)
            with lock:
                watch = watches.get(deployment.id)
                if watch is None:  # a service created with its alarms: watched from steady state on
                    watch = watches[deployment.id] = _Watch(model, deployment, complete)
            if watch.steady_since is None:  # steady: the bake starts, the deployment stays IN_PROGRESS
                watch.steady_since = time.monotonic()
                model.add_event(f"(service {model.service.name}) (deployment {deployment.id}) is in the bake time.")
            return deployment

        yield ServiceDeployments, "start_deployment", start_deployment
        yield ServiceDeployments, "mark_completed", mark_completed

    def reset(self) -> None:
        with self._lock:
            watches = list(self._watches.values())
            self._watches.clear()
        for watch in watches:
            watch.stop()
