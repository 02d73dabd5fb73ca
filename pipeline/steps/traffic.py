"""blue_green, canary and linear: ECS shifts the traffic, the pipeline answers its PAUSE hooks.

CloudFormation's update of the service waits for the ECS service deployment, and that deployment waits
at its PAUSE hooks, so the strategy acts between the polls of the stack update (`during_update`):
- POST_TEST_TRAFFIC_SHIFT (the new revision takes only the test listener's traffic): the model gate
  (pipeline/gate.py) sends the golden set to the test listener; pass -> CONTINUE, fail -> ROLLBACK;
- PRODUCTION_TRAFFIC_SHIFT before the first production shift: CONTINUE (the canary step starts), and
  the watch of the new target group begins;
- PRODUCTION_TRAFFIC_SHIFT before a later shift: the decision on what the new revision served since
  (its 5xx rate and p99 latency from CloudWatch, and the deployment alarms) -> CONTINUE or ROLLBACK.
ECS rolls back by moving the rules back to the old target group (the old tasks still run), the update
fails, CloudFormation restores the previous template; the release then fails with the verdict (metric,
threshold, value). Ctrl-C while the deployment is in flight stops it (StopServiceDeployment, rollback).
Each decision goes to `decided` (the terminal, the report's summary, the GitHub deployment status).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from pipeline.aws import cloudwatch as cw_api
from pipeline.aws import ecs as ecs_api
from pipeline.config import Environment
from pipeline.errors import PipelineError
from pipeline.gate import load_golden_set, run_gate
from pipeline.report import Phase
from pipeline.steps.roll import RolloutOutcome, RolloutResult
from pipeline.steps.strategy import Rollout, RolloutStrategy, register

if TYPE_CHECKING:
    from pipeline.steps.context import Context

GATE_STAGE = "POST_TEST_TRAFFIC_SHIFT"
SHIFT_STAGE = "PRODUCTION_TRAFFIC_SHIFT"  # ECS reports PRE_PRODUCTION_TRAFFIC_SHIFT hooks at this stage
TRAFFIC_BACK_TIMEOUT = 60.0  # seconds to wait for the production rule to point at the old revision again


def test_listener_url(service_url: str, env: Environment) -> str:
    """The test listener: the production URL's host, the test listener's own port on the same ALB."""
    host = urlsplit(service_url).hostname or ""
    return f"{'https' if env.https else 'http'}://{host}:{env.traffic.test_listener_port}"


@register("blue_green")
@register("canary")
@register("linear")
class TrafficShiftStrategy(RolloutStrategy):
    follows_update: ClassVar[bool] = True

    def __init__(self, ctx: Context, env: Environment) -> None:
        super().__init__(ctx, env)
        self.clients = self.ctx.clients_for(env.name)
        self.outputs: dict[str, str] = {}
        self.version = ""
        self.earlier: str | None = None  # the service deployment before this update (not ours)
        self.deployment: ecs_api.ServiceDeployment | None = None
        self.answered: set[str] = set()
        self.failure = ""
        self.green: str | None = None  # the target group of the new revision
        self.watch_since: datetime | None = None
        self.decision_at: float | None = None  # clock time of a ROLLBACK decision
        self.exposed_requests = 0
        self._stage_seen: tuple[str, float] | None = None  # (lifecycle stage, clock time first seen)

    # --- the release flow's hooks -----------------------------------------------------------------

    def begin(self, outputs: dict[str, str], version: str) -> None:
        """Before the stack update: remember the stack's wiring and the deployment that is not ours."""
        self.outputs, self.version = dict(outputs), version
        earlier = ecs_api.latest_service_deployment(self.clients.ecs, outputs["ClusterName"], outputs["ServiceName"])
        self.earlier = earlier.arn if earlier else None

    def during_update(self) -> None:
        if not self.outputs:
            return
        d = ecs_api.latest_service_deployment(
            self.clients.ecs, self.outputs["ClusterName"], self.outputs["ServiceName"]
        )
        if d is None or d.arn == self.earlier:
            return
        first_sight = self.deployment is None
        self.deployment = d
        self._saw(d)
        if first_sight:
            self.decided(f"service deployment {d.arn.rsplit('/', 1)[-1]} ({self.env.delivery.strategy}) started")
        if d.ended:
            self._ended(d)
            return
        if d.awaiting_hook and d.awaiting_hook not in self.answered:
            if d.stage == GATE_STAGE:
                self._gate(d)
            elif d.production_weight == 0:
                self._answer(d, "CONTINUE")
                self.watch_since = datetime.now(UTC)
                self.decided(f"test traffic passed: shifting production traffic to {self.version}")
            else:
                self._decide(d)

    def verdict(self) -> str:
        """Why the deployment rolled back: the pipeline's own decision, else what ECS says (the update may
        have ended before the last poll saw the deployment end)."""
        if not self.failure and self.deployment is not None:
            d = ecs_api.latest_service_deployment(
                self.clients.ecs, self.outputs["ClusterName"], self.outputs["ServiceName"]
            )
            if d is not None and d.arn == self.deployment.arn and d.ended:
                self._saw(d)
                self._ended(d)
        return self.failure

    def interrupted(self) -> str:
        """Ctrl-C: a deployment in flight is stopped and rolled back; says so (and how fast)."""
        if self.deployment is None:
            return ""
        d = ecs_api.latest_service_deployment(
            self.clients.ecs, self.outputs["ClusterName"], self.outputs["ServiceName"]
        )
        if d is None or d.ended:
            return ""
        if self.green is None:
            self.green = self._group_taking("TestListenerRuleArn")
        during = "the canary bake" if 0 < d.production_weight < 100 else f"{d.stage}"
        try:
            ecs_api.stop_deployment(self.clients.ecs, d.arn)
        except PipelineError as err:
            return f"Ctrl-C during {during}: stopping the service deployment failed ({err.message})"
        self.decision_at = self.ctx.clock.now()
        back = self._wait_traffic_back()
        said = f"Ctrl-C during {during}: stopped the service deployment (StopServiceDeployment, rollback)"
        return said + (f"; production traffic back on the previous version in {back:.2f}s" if back is not None else "")

    def watch(self, rollout: Rollout) -> RolloutResult:
        """After the update: the service deployment SUCCESSFUL is the rollout's success."""
        if self.deployment is None:  # a first deployment (a new service) shifts nothing: it rolls
            return self.ctx.watcher(self.env.name).wait(
                rollout.cluster, rollout.service, rollout.task_definition, rollout.target_group_arn
            )
        d = ecs_api.latest_service_deployment(self.clients.ecs, rollout.cluster, rollout.service) or self.deployment
        self._saw(d)
        if d.status == "SUCCESSFUL":
            self._ended(d)  # said once: the update may have completed before a poll saw the deployment end
            return RolloutResult(RolloutOutcome.COMPLETED, 0.0)
        return RolloutResult(RolloutOutcome.ROLLED_BACK, 0.0, self.failure or d.rollback_reason or d.status)

    def stop(self, rollout: Rollout) -> str:
        d = self.deployment
        if d is None:
            return ""
        now = ecs_api.latest_service_deployment(self.clients.ecs, rollout.cluster, rollout.service)
        if now is None or now.ended:
            return ""
        ecs_api.stop_deployment(self.clients.ecs, now.arn)
        return "stopped the service deployment (StopServiceDeployment, rollback)"

    # --- the decisions ----------------------------------------------------------------------------

    def _gate(self, d: ecs_api.ServiceDeployment) -> None:
        settings = self.ctx.settings
        self.green = self._group_taking("TestListenerRuleArn")
        if settings.gate is None:
            self.decided("no [gate] in the settings: continuing without a model gate")
            self._answer(d, "CONTINUE")
            return
        url = test_listener_url(self.outputs.get("ServiceUrl", ""), self.env)
        result = run_gate(
            url,
            settings.gate,
            load_golden_set(settings),
            self.version,
            clock=self.ctx.clock,
            compare_url=self.outputs.get("ServiceUrl") if settings.gate.min_agreement > 0 else None,
        )
        if result.passed:
            self.decided(
                f"model gate passed at the test listener ({result.requests} golden requests): {result.summary}"
            )
            self._answer(d, "CONTINUE")
            return
        self.failure = f"model gate failed at the test listener: {result.summary}"
        self.decided(f"{self.failure} -> ROLLBACK (no production request reached {self.version})")
        self._answer(d, "ROLLBACK")

    def _decide(self, d: ecs_api.ServiceDeployment) -> None:
        """Before the next production shift: judge what the new revision served since the first shift."""
        service = self.env.service
        problems: list[str] = []
        line = f"canary at {d.production_weight:g}%"
        if self.green is not None and self.watch_since is not None:
            balancer = ecs_api.load_balancer_of(self.clients.elbv2, self.green)
            figures = cw_api.group_figures(
                self.clients.cloudwatch,
                balancer,
                self.green,
                self.watch_since - timedelta(seconds=1),
                datetime.now(UTC),
            )
            self.exposed_requests = figures.requests
            p99 = f"{figures.p99_seconds * 1000:.0f} ms" if figures.p99_seconds is not None else "n/a"
            line += (
                f": {figures.requests} requests, 5xx {figures.error_percent:.1f}% (max {service.alarm_5xx_percent:g}%),"
                f" p99 {p99} (max {service.alarm_latency_p99 * 1000:.0f} ms)"
            )
            if figures.requests and figures.error_percent > service.alarm_5xx_percent:
                problems.append(
                    f"5xx rate {figures.error_percent:.1f}% > {service.alarm_5xx_percent:g}% "
                    f"({figures.errors_5xx} of {figures.requests} requests to {self.version})"
                )
            if figures.p99_seconds is not None and figures.p99_seconds > service.alarm_latency_p99:
                problems.append(
                    f"p99 latency {figures.p99_seconds * 1000:.0f} ms > {service.alarm_latency_p99 * 1000:.0f} ms"
                )
        firing = cw_api.alarms_in_alarm(self.clients.cloudwatch, list(d.alarm_names))
        line += f", alarms in ALARM: {', '.join(firing) or 'none'}"
        if firing:
            problems.append(f"alarm(s) in ALARM: {', '.join(firing)}")
        if problems:
            self.failure = f"canary failed at {d.production_weight:g}% of production traffic: {'; '.join(problems)}"
            self.decided(f"{line} -> ROLLBACK")
            self._answer(d, "ROLLBACK")
            return
        self.decided(f"{line} -> CONTINUE")
        self._answer(d, "CONTINUE")

    def _answer(self, d: ecs_api.ServiceDeployment, action: str) -> None:
        assert d.awaiting_hook is not None  # nosec B101 # only called for a hook awaiting action
        self.answered.add(d.awaiting_hook)
        try:
            ecs_api.continue_service_deployment(self.clients.ecs, d.arn, d.awaiting_hook, action)
        except PipelineError as err:
            # The hook is no longer waiting: its timeout answered first (ECS rolls back by itself).
            minutes = self.env.traffic.hook_timeout_minutes
            late = f"; the decision came too late: {self.failure}" if self.failure else ""
            self.failure = (
                f"the lifecycle hook at {d.stage} timed out ({minutes} min) before the pipeline decided, "
                f"and ECS rolled the deployment back{late}"
            )
            self.decided(f"{self.failure} ({err.message})")
            return
        if action == "ROLLBACK":
            self.decision_at = self.ctx.clock.now()
            back = self._wait_traffic_back()
            if back is not None:
                self.decided(f"production traffic back on the previous version {back:.2f}s after the decision")

    def _saw(self, d: ecs_api.ServiceDeployment) -> None:
        """Note the deployment's lifecycle stage for the report's gantt: a stage lasts from the poll that
        first saw it to the one that saw the next (or the deployment end); a stage that ends while the
        deployment rolls back or stops is marked failed."""
        now = self.ctx.clock.now()
        current = self._stage_seen
        rolling_back = d.status.startswith("ROLLBACK") or d.status in ("STOP_REQUESTED", "STOPPED")
        if current is not None and (current[0] != d.stage or d.ended):
            name, start = current
            self.stages.append(Phase(name, start, now - start, not rolling_back))
            self._stage_seen = None
        if not d.ended and d.stage and self._stage_seen is None:
            self._stage_seen = (d.stage, now)

    def _ended(self, d: ecs_api.ServiceDeployment) -> None:
        if d.status == "SUCCESSFUL":
            if "successful" not in self.answered:
                self.answered.add("successful")
                self.decided(f"service deployment SUCCESSFUL: all production traffic on {self.version}")
            return
        if not self.failure:
            reason = d.rollback_reason or d.status_reason or d.status
            if "timed out" in reason:
                minutes = self.env.traffic.hook_timeout_minutes
                self.failure = f"the lifecycle hook timed out ({minutes} min) before the pipeline decided: {reason}"
            else:
                self.failure = f"ECS rolled the service deployment back: {reason}"
            self.decided(self.failure)

    # --- where traffic goes -----------------------------------------------------------------------

    def _group_taking(self, rule_output: str) -> str | None:
        """The target group a rule sends (most of) its traffic to."""
        rule = self.outputs.get(rule_output)
        if not rule:
            return None
        weights = ecs_api.forward_weights(self.clients.elbv2, rule)
        return max(weights, key=lambda g: weights[g]) if weights else None

    def _wait_traffic_back(self) -> float | None:
        """Seconds from the decision until the production rule sends nothing to the new revision."""
        rule = self.outputs.get("ProductionListenerRuleArn")
        if not rule or self.green is None or self.decision_at is None:
            return None
        clock = self.ctx.clock
        while clock.now() - self.decision_at < TRAFFIC_BACK_TIMEOUT:
            if ecs_api.forward_weights(self.clients.elbv2, rule).get(self.green, 0) == 0:
                self.back_seconds = clock.now() - self.decision_at
                return self.back_seconds
            clock.sleep(min(self.ctx.poll, 0.05))
        return None
