"""Modeled AWS time to release and to roll back, per rollout strategy, from the synthesized templates.

Every figure comes from a template's own properties (grace period, health check, deregistration delay,
Strategy, CanaryConfiguration / LinearConfiguration, BakeTimeInMinutes, LifecycleHooks) plus three
named assumptions about AWS and the engine that no template holds:

    RULE_CHANGE   ECS rewriting a listener rule's weights (ModifyRule) until the ALB routes by them
    HOOK_NOTICE   the engine noticing a PAUSE hook (its DescribeServiceDeployments poll interval)
    GATE_REQUEST  one golden-set request through the test listener (the gate sends rows/concurrency rounds)

Stages modeled, as ECS runs them (rolling):   new tasks ready (grace + interval x threshold) + drain
(blue_green, canary, linear): ready, test shift, gate hook, then for each production step its
PRE_PRODUCTION_TRAFFIC_SHIFT hook + a rule change (+ the step's bake between steps), then the bake
(old tasks still running) and the old tasks' drain.

Rollback "from the decision" is what happens after the pipeline (or an alarm) decides: rolling has
replaced the old tasks, so it is a whole rollout again; a traffic strategy still runs the old tasks
until the bake ends, so it is one rule change. Table 1 reads the committed cloudformation/service-*.yaml;
table 2 synthesizes production with each strategy. Prints tables; asserts nothing.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cfn_flip import to_json

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import config  # noqa: E402 - the project root goes on the path first
from pipeline.templates import render  # noqa: E402
from pipeline.templates.service import build_service  # noqa: E402

RULE_CHANGE = 5.0  # s, assumed: ModifyRule is a control-plane call; ALB applies rule changes in seconds
HOOK_NOTICE = 5.0  # s, assumed: the engine's poll of DescribeServiceDeployments
GATE_REQUEST = 0.1  # s, assumed: one inference through the ALB
GOAL_ROLLBACK = 10.0  # s, issue 14: rollback by traffic shift on AWS while the old tasks still run


@dataclass(frozen=True)
class Model:
    strategy: str
    ready: float  # new tasks pass the target group's health check
    drain: float  # old tasks deregister
    steps: tuple[float, ...]  # production share after each shift, percent
    step_bake: float  # s between production shifts
    bake: float  # s after the last shift (old tasks still run)
    hooks: frozenset[str]

    def release(self) -> tuple[float, float]:
        """(to 100% of production traffic, to deployment complete) in seconds."""
        if self.strategy == "ROLLING":
            return self.ready + self.drain, self.ready + self.drain
        t = self.ready + RULE_CHANGE  # scale up, then test traffic
        if "POST_TEST_TRAFFIC_SHIFT" in self.hooks:
            t += HOOK_NOTICE + gate_seconds()
        for i, _ in enumerate(self.steps):
            if "PRE_PRODUCTION_TRAFFIC_SHIFT" in self.hooks:
                t += HOOK_NOTICE
            t += RULE_CHANGE
            if i < len(self.steps) - 1:
                t += self.step_bake
        return t, t + self.bake + self.drain

    def rollback(self) -> float:
        """From the decision to all production traffic on the old version."""
        return self.ready + self.drain if self.strategy == "ROLLING" else RULE_CHANGE

    def exposure(self) -> str:
        """Production share a bad version serves before the last decision point."""
        if self.strategy == "ROLLING":
            return "100% (gradually)"
        if self.strategy == "BLUE_GREEN":
            return "0% at the gate; 100% after it"
        first = "the canary decision" if self.strategy == "CANARY" else "the first step's decision"
        return f"0% at the gate; {self.steps[0]:g}% at {first}"


def settings() -> config.Settings:
    return config.load(ROOT / "pipeline.toml")


def gate_seconds() -> float:
    """The golden set in rounds of `concurrency` requests."""
    gate = settings().gate
    if gate is None:
        return 0.0
    rows = len((settings().root / gate.golden_set).read_text(encoding="utf-8").splitlines())
    return math.ceil(rows / gate.concurrency) * GATE_REQUEST


def model_of(body: dict[str, Any]) -> Model:
    resources = body["Resources"]
    service = next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::ECS::Service")
    group = resources[service["LoadBalancers"][0]["TargetGroupArn"]["Ref"]]["Properties"]
    attributes = {a["Key"]: a["Value"] for a in group.get("TargetGroupAttributes", [])}
    deploy = service["DeploymentConfiguration"]
    strategy = deploy.get("Strategy", "ROLLING")
    steps: tuple[float, ...] = (100.0,)
    step_bake = 0.0
    if strategy == "CANARY":
        canary = deploy["CanaryConfiguration"]
        steps, step_bake = (float(canary["CanaryPercent"]), 100.0), 60.0 * int(canary["CanaryBakeTimeInMinutes"])
    if strategy == "LINEAR":
        linear = deploy["LinearConfiguration"]
        step = float(linear["StepPercent"])
        count = math.ceil(round(100 / step, 6))
        steps = tuple(min(100.0, step * (i + 1)) for i in range(count))
        step_bake = 60.0 * int(linear["StepBakeTimeInMinutes"])
    hooks = frozenset(
        s for h in deploy.get("LifecycleHooks", []) if h.get("TargetType") == "PAUSE" for s in h["LifecycleStages"]
    )
    return Model(
        strategy=strategy,
        ready=int(service.get("HealthCheckGracePeriodSeconds", 0))
        + int(group["HealthCheckIntervalSeconds"]) * int(group["HealthyThresholdCount"]),
        drain=float(attributes.get("deregistration_delay.timeout_seconds", 300)),
        steps=steps,
        step_bake=step_bake,
        bake=60.0 * int(deploy.get("BakeTimeInMinutes", 0)),
        hooks=hooks,
    )


def parse(text: str) -> dict[str, Any]:
    return json.loads(to_json(text))  # type: ignore[no-any-return]


def table(rows: list[tuple[str, Model]]) -> float:
    header = f"{'':<22} {'strategy':<10} {'to 100% prod':>12} {'complete':>9} {'rollback':>9} {'after bake':>10}  exposure of a bad version"
    print(header)
    print("-" * len(header))
    slowest_shift = 0.0
    for name, m in rows:
        full, done = m.release()
        back = m.rollback()
        if m.strategy != "ROLLING":
            slowest_shift = max(slowest_shift, back)
        after_bake = full  # the old tasks are gone: deploy the previous version again, through the same stages
        print(
            f"{name:<22} {m.strategy:<10} {full:>11.0f}s {done:>8.0f}s {back:>8.0f}s {after_bake:>9.0f}s  {m.exposure()}"
        )
    return slowest_shift


def main() -> None:
    templates = sorted((ROOT / "cloudformation").glob("service-*.yaml"))
    print("1. committed templates (cloudformation/service-*.yaml)")
    table([(t.stem.removeprefix("service-"), model_of(parse(t.read_text(encoding="utf-8")))) for t in templates])
    print()
    print("2. production synthesized with each strategy (pipeline.toml's other production settings)")
    base = settings()
    rows = []
    for strategy in config.STRATEGIES:
        envs = tuple(
            replace(e, delivery=replace(e.delivery, strategy=strategy)) if e.name == "production" else e
            for e in base.environments
        )
        rows.append(
            (
                f"production/{strategy}",
                model_of(parse(render(build_service(replace(base, environments=envs), "production")))),
            )
        )
    slowest = table(rows)
    print()
    print(
        f"assumed: rule change {RULE_CHANGE:g} s, hook noticed within {HOOK_NOTICE:g} s, "
        f"golden request {GATE_REQUEST:g} s; 'rollback' is from the decision, while the old tasks still run; "
        "'after bake' is a rollback once they are gone (the previous version deployed again)"
    )
    verdict = "met" if slowest <= GOAL_ROLLBACK else "MISSED"
    print(
        f"goal: rollback by traffic shift at most {GOAL_ROLLBACK:g} s modeled on AWS: {verdict} (slowest {slowest:g} s)"
    )


if __name__ == "__main__":
    main()
