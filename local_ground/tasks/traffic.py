"""The ECS scheduler for a BLUE_GREEN, CANARY or LINEAR service: two target groups, traffic moved by
rewriting listener rule weights, PAUSE hooks, bake times, and rollback by shifting traffic back.

AWS behaviour reproduced ("Amazon ECS blue/green deployments", "... canary deployments", "... linear
deployments", "Pause hooks for Amazon ECS service deployments", "Application Load Balancer resources for
blue/green, linear, and canary deployments"):
- the new revision's tasks start in the *alternate* target group (the group the production rule does
  not send traffic to), while the old tasks keep serving: SCALE_UP ends when all of them are healthy;
- TEST_TRAFFIC_SHIFT points the test listener rule at the new group; production moves in steps by the
  production rule's weights: BLUE_GREEN 100 at once, CANARY canaryPercent then (after
  canaryBakeTimeInMinutes) the rest, LINEAR stepPercent more per step with stepBakeTimeInMinutes between;
- a PAUSE hook at a stage holds the deployment there (AWAITING_ACTION) until ContinueServiceDeployment
  or its timeout; the PRE_PRODUCTION_TRAFFIC_SHIFT hook is met before every production shift (the API
  reports the deployment's lifecycleStage as PRODUCTION_TRAFFIC_SHIFT meanwhile, its enum has no PRE_);
- after the last shift the old tasks keep running for bakeTimeInMinutes (BAKE_TIME), then CLEAN_UP
  stops them and the deployment is SUCCESSFUL; the next deployment uses the other group again;
- a rollback (a ROLLBACK action, a hook timing out, StopServiceDeployment, a deployment alarm in ALARM,
  the circuit breaker) puts every rule back on the old group at once, the old tasks still running,
  then stops the new tasks: ROLLBACK_IN_PROGRESS -> ROLLBACK_SUCCESSFUL;
- a service's first deployment (nothing serving yet) has nothing to shift: it runs as a rolling one.
Durations are scaled by the ground's factor, as everywhere here.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.elbv2.models import elbv2_backends

from local_ground.moto_extensions.deployments import Deployment, DeploymentStatus, RolloutState
from local_ground.moto_extensions.traffic_deployments import (
    Hook,
    ServiceDeploymentRecord,
    expiry,
    hook_timeout,
    new_record,
    shifts_traffic,
)

from .runtime import Runtime
from .service import ServiceController, failure_threshold
from .task import Phase, RunningTask


class _RollBack(Exception):
    def __init__(self, reason: str, source: str) -> None:
        super().__init__(reason)
        self.reason, self.source = reason, source


def production_steps(config: dict[str, Any]) -> list[float]:
    """The production weights (percent of traffic on the new revision) a strategy moves through."""
    strategy = config.get("strategy")
    if strategy == "CANARY":
        percent = float((config.get("canaryConfiguration") or {}).get("canaryPercent", 5.0))
        return [percent, 100.0] if percent < 100 else [100.0]
    if strategy == "LINEAR":
        step = float((config.get("linearConfiguration") or {}).get("stepPercent", 10.0))
        weights, weight = [], 0.0
        while weight + step < 100:
            weight += step
            weights.append(round(weight, 1))
        return [*weights, 100.0]
    return [100.0]


def step_bake_minutes(config: dict[str, Any]) -> float:
    if config.get("strategy") == "CANARY":
        return float((config.get("canaryConfiguration") or {}).get("canaryBakeTimeInMinutes", 10))
    if config.get("strategy") == "LINEAR":
        return float((config.get("linearConfiguration") or {}).get("stepBakeTimeInMinutes", 6))
    return 0.0


class TrafficServiceController(ServiceController):
    """ServiceController for every service; a traffic-shifting one's new deployments run a `Shift`."""

    def __init__(self, runtime: Runtime, model: Any) -> None:
        self.shift: Shift | None = None
        self.live_group: str | None = None  # the target group production traffic goes to now
        super().__init__(runtime, model)

    def _load_balancer(self) -> dict[str, Any] | None:
        balancer = super()._load_balancer()
        if balancer is not None and self.live_group is not None:
            balancer["targetGroupArn"] = self.live_group
        return balancer

    def _tick(self) -> None:
        model = self.model
        if not shifts_traffic(model.service) or getattr(model.service, "status", "ACTIVE") != "ACTIVE":
            super()._tick()
            return
        self.tasks = [t for t in self.tasks if t.phase is not Phase.STOPPED]
        if self.shift is None and model.deployments:
            primary = model.primary
            serving = [t for t in self.tasks if t.deployment_id != primary.id and t.phase is Phase.RUNNING]
            if primary.rollout_state is RolloutState.IN_PROGRESS and serving:
                self.shift = Shift(self, primary, serving)
        if self.shift is not None:
            self.shift.step()
            self._report_counts()
            if self.shift.done:
                self.shift = None
            return
        super()._tick()


class Shift:
    """One traffic-shifting deployment, from PENDING to SUCCESSFUL or ROLLBACK_SUCCESSFUL: a generator
    advanced one scheduler tick at a time."""

    def __init__(
        self, controller: TrafficServiceController, deployment: Deployment, serving: list[RunningTask]
    ) -> None:
        self.controller, self.deployment = controller, deployment
        self.old_tasks = serving
        service = controller.model.service
        self.config: dict[str, Any] = dict(getattr(service, "deployment_configuration", None) or {})
        balancer = (getattr(service, "load_balancers", None) or [{}])[0]
        advanced = balancer.get("advancedConfiguration") or {}
        self.production_rule = advanced.get("productionListenerRule")
        self.test_rule = advanced.get("testListenerRule")
        groups = [balancer.get("targetGroupArn"), advanced.get("alternateTargetGroupArn")]
        live = controller.live_group or self._live_group(groups) or groups[0]
        self.blue, self.green = live, next((g for g in groups if g != live), groups[1])
        self.record: ServiceDeploymentRecord = new_record(
            service, deployment.id, serving[0].task_definition, deployment.task_definition
        )
        self.record.source.requested = len(serving)
        self.record.source.production_weight = self.record.source.test_weight = 100.0
        self.ignored_alarms = {name for name, state in self._alarm_states().items() if state == "ALARM"}
        self.rolling_back = False
        self.done = False
        self.traffic_back_at: float | None = None
        self._steps: Iterator[None] = self._run()

    # --- the scheduler's entry ------------------------------------------------------------------

    def step(self) -> None:
        if not self.rolling_back:
            cause = self._reason_to_stop()
            if cause is not None:
                self._begin_rollback(cause)
        try:
            next(self._steps)
        except _RollBack as rollback:
            self._begin_rollback(rollback)
        except StopIteration:
            self.done = True

    def _begin_rollback(self, cause: _RollBack) -> None:
        self.rolling_back = True
        if cause.source == "abort":
            self._steps = self._abort()
        else:
            self._steps = self._rollback(cause.reason, cause.source)

    def _reason_to_stop(self) -> _RollBack | None:
        record = self.record
        if record.stop_requested == "ROLLBACK":
            return _RollBack("StopServiceDeployment requested a rollback.", "stop")
        if record.stop_requested == "ABORT":
            return _RollBack("StopServiceDeployment aborted the deployment.", "abort")
        alarms = self._alarm_states()
        self.ignored_alarms &= {n for n, s in alarms.items() if s == "ALARM"}
        firing = sorted(n for n, s in alarms.items() if s == "ALARM" and n not in self.ignored_alarms)
        if firing and (self.config.get("alarms") or {}).get("rollback"):
            record.set(triggered_alarms=firing)
            return _RollBack(f"alarm(s) detected in ALARM state: {', '.join(firing)}.", "alarms")
        return None

    # --- forward ------------------------------------------------------------------------------

    def _run(self) -> Iterator[None]:
        record, scale = self.record, self.controller.runtime.scale
        record.set(status="IN_PROGRESS", started_at=datetime.now(UTC))
        yield from self._stage("RECONCILE_SERVICE")
        yield from self._stage("PRE_SCALE_UP")
        record.set(lifecycle_stage="SCALE_UP")
        yield from self._scale_up()
        yield from self._stage("POST_SCALE_UP")
        yield from self._stage("TEST_TRAFFIC_SHIFT")
        self._route(self.test_rule, 100.0)
        record.target.test_weight, record.source.test_weight = 100.0, 0.0
        yield from self._stage("POST_TEST_TRAFFIC_SHIFT")
        for weight in production_steps(self.config):
            yield from self._stage("PRE_PRODUCTION_TRAFFIC_SHIFT", reported="PRODUCTION_TRAFFIC_SHIFT")
            self._route(self.production_rule, weight)
            record.target.production_weight, record.source.production_weight = weight, 100.0 - weight
            self.controller.event(f"(deployment {self.deployment.id}) shifted {weight:g}% of production traffic.")
            if weight < 100:
                yield from self._wait(scale.seconds(60 * step_bake_minutes(self.config)))
        yield from self._stage("POST_PRODUCTION_TRAFFIC_SHIFT")
        record.set(lifecycle_stage="BAKE_TIME")
        yield from self._wait(scale.seconds(60 * float(self.config.get("bakeTimeInMinutes") or 0)))
        record.set(lifecycle_stage="CLEAN_UP")
        for task in self.old_tasks:
            task.stop(f"Scaling activity initiated by (deployment {self.deployment.id})")
        while any(t.phase is not Phase.STOPPED for t in self.old_tasks):
            yield
        self.controller.live_group = self.green
        record.set(status="SUCCESSFUL", finished_at=datetime.now(UTC), status_reason="Service deployment succeeded.")
        self.controller.model.mark_completed(self.deployment.id)

    def _stage(self, stage: str, reported: str | None = None) -> Iterator[None]:
        """Enter a lifecycle stage; with a PAUSE hook there, wait for its action or its timeout."""
        self.record.set(lifecycle_stage=reported or stage)
        pause = hook_timeout(self.config, stage)
        if pause is None:
            return
        minutes, timeout_action = pause
        wait = self.controller.runtime.scale.seconds(60 * minutes)
        hook = Hook(stage, timeout_action, expiry(wait))
        self.record.set(hooks=[*self.record.hooks, hook])
        deadline = time.monotonic() + wait
        while hook.action is None and time.monotonic() < deadline:
            yield
        if hook.action is None:
            hook.status = "TIMED_OUT"
            if timeout_action == "ROLLBACK":
                raise _RollBack(f"The lifecycle hook at {stage} timed out.", "hook timeout")
            return
        hook.status = "SUCCEEDED" if hook.action == "CONTINUE" else "FAILED"
        if hook.action == "ROLLBACK":
            raise _RollBack(f"ContinueServiceDeployment rolled back at {stage}.", "lifecycle hook")

    def _scale_up(self) -> Iterator[None]:
        controller, deployment = self.controller, self.deployment
        balancer = controller._load_balancer()
        if balancer is not None:
            balancer["targetGroupArn"] = self.green
        breaker = (self.config.get("deploymentCircuitBreaker") or {}).get("enable")
        while True:
            controller._stop_failed_tasks()
            failed = controller.failures[deployment.id]
            if failed != deployment.failed_tasks:
                controller.model.set_counts(deployment.id, failed=failed)
            if breaker and failed >= failure_threshold(deployment.desired_count):
                raise _RollBack("tasks failed to start.", "circuit breaker")
            new = [t for t in controller.tasks if t.deployment_id == deployment.id]
            active = [t for t in new if t.phase in (Phase.LAUNCHING, Phase.RUNNING)]
            controller._start(deployment, deployment.desired_count - len(active), balancer)
            self.record.target.requested = deployment.desired_count
            self.record.target.running = sum(1 for t in active if t.phase is Phase.RUNNING)
            if len(active) == deployment.desired_count and all(t.healthy for t in active):
                return
            yield

    def _wait(self, seconds: float) -> Iterator[None]:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            yield

    # --- back -----------------------------------------------------------------------------------

    def _rollback(self, reason: str, source: str) -> Iterator[None]:
        record, controller = self.record, self.controller
        record.set(
            status="ROLLBACK_IN_PROGRESS",
            status_reason=reason,
            rollback={"reason": reason, "startedAt": datetime.now(UTC), "serviceRevisionArn": record.source.arn},
        )
        self._route(self.production_rule, 0.0)  # the old tasks still run: traffic goes back at once
        self._route(self.test_rule, 0.0)
        self.traffic_back_at = time.monotonic()
        record.target.production_weight = record.target.test_weight = 0.0
        record.source.production_weight = record.source.test_weight = 100.0
        controller.event(f"(deployment {self.deployment.id}) rolled production traffic back: {reason}")
        self._fail_in_model(reason, source)
        for task in [t for t in controller.tasks if t.deployment_id == self.deployment.id]:
            task.stop(f"Scaling activity initiated by (deployment {self.deployment.id})")
        while any(t.deployment_id == self.deployment.id for t in controller.tasks):
            controller.tasks = [t for t in controller.tasks if t.phase is not Phase.STOPPED]
            yield
        record.set(status="ROLLBACK_SUCCESSFUL", finished_at=datetime.now(UTC))

    def _abort(self) -> Iterator[None]:
        """ABORT: the deployment stops where it is (no traffic moves back)."""
        self.record.set(status="STOPPED", stopped_at=datetime.now(UTC))
        self.controller.model.mark_failed(
            "StopServiceDeployment aborted the deployment.", self.deployment.id, source="stop", rollback=False
        )
        return
        yield

    def _fail_in_model(self, reason: str, source: str) -> None:
        """describe_services: the old deployment is PRIMARY again (its tasks never stopped), the new one
        FAILED; listeners (a CloudFormation update waiting on it) hear the failure."""
        model, new = self.controller.model, self.deployment
        old = next((d for d in model.deployments if d is not new), None) or model.last_completed
        if old is not None:
            new.status, old.status = DeploymentStatus.ACTIVE, DeploymentStatus.PRIMARY
            model.deployments = [old, new]
        model.mark_failed(reason, new.id, source=source, rollback=False)
        if old is not None:
            model.deployments = [old]
            model._render()

    # --- the load balancer and the alarms ----------------------------------------------------------

    def _route(self, rule_arn: str | None, green_percent: float) -> None:
        """Rewrite a rule's weighted forward: `green_percent` to the new group, the rest to the old."""
        if not rule_arn:
            return
        runtime = self.controller.runtime
        backend = elbv2_backends[runtime.account_id][runtime.region]
        rules = backend.describe_rules(listener_arn=None, rule_arns=[rule_arn])
        if not rules:
            return
        green = int(round(green_percent))
        actions = []
        for action in rules[0].actions:
            data = copy.deepcopy(action.data)
            if data.get("Type") == "forward":
                data.pop("TargetGroupArn", None)
                data["ForwardConfig"] = {
                    **(data.get("ForwardConfig") or {}),
                    "TargetGroups": [
                        {"TargetGroupArn": self.blue, "Weight": 100 - green},
                        {"TargetGroupArn": self.green, "Weight": green},
                    ],
                }
            actions.append(data)
        backend.modify_rule(rule_arn, [], actions)

    def _live_group(self, groups: list[Any]) -> str | None:
        """The group the production rule sends most traffic to (after an earlier shift, the alternate)."""
        if not self.production_rule:
            return None
        runtime = self.controller.runtime
        rules = elbv2_backends[runtime.account_id][runtime.region].describe_rules(
            listener_arn=None, rule_arns=[self.production_rule]
        )
        for action in rules[0].actions if rules else []:
            pairs = (action.data.get("ForwardConfig") or {}).get("TargetGroups") or []
            if pairs:
                best = max(pairs, key=lambda g: int(g.get("Weight", 1)))
                return str(best["TargetGroupArn"]) if best["TargetGroupArn"] in groups else None
        return None

    def _alarm_states(self) -> dict[str, str]:
        names = self.record.alarm_names
        runtime = self.controller.runtime
        alarms = cloudwatch_backends[runtime.account_id][runtime.region].alarms
        return {n: alarms[n].state_value for n in names if n in alarms}
