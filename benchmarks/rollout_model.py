"""The modeled AWS rollout time of each environment, read from the committed, synthesized templates
(cloudformation/service-*.yaml), next to the same figure with AWS's defaults. Goal: at most 90 s.

    rollout = health check grace period          (the service's HealthCheckGracePeriodSeconds)
            + interval x healthy threshold        (the target group: a new task passes the health check)
            + deregistration delay                (the target group: the old task drains)

AWS's defaults: interval 30 s, threshold 5, delay 300 s, grace 0 s -> 450 s. This is the floor of one
rolling replacement on AWS (image pull and container start come on top); the local ground runs the same
sequence scaled down. Prints a table; asserts nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cfn_flip import to_json

ROOT = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 90
AWS_DEFAULTS = {"interval": 30, "threshold": 5, "delay": 300, "grace": 0}


def resources_of(template: Path, kind: str) -> list[dict[str, Any]]:
    body = json.loads(to_json(template.read_text(encoding="utf-8")))
    return [r.get("Properties", {}) for r in body["Resources"].values() if r["Type"] == kind]


def knobs(template: Path) -> dict[str, int]:
    body = json.loads(to_json(template.read_text(encoding="utf-8")))
    services = [r["Properties"] for r in body["Resources"].values() if r["Type"] == "AWS::ECS::Service"]
    if len(services) != 1:
        raise SystemExit(f"{template.name}: expected one ECS service, found {len(services)}")
    service = services[0]
    # The service's own target group (blue_green, canary and linear add an identical alternate one).
    group = body["Resources"][service["LoadBalancers"][0]["TargetGroupArn"]["Ref"]]["Properties"]
    attributes = {a["Key"]: a["Value"] for a in group.get("TargetGroupAttributes", [])}
    return {
        # An absent property means AWS's default applies.
        "interval": int(group.get("HealthCheckIntervalSeconds", AWS_DEFAULTS["interval"])),
        "threshold": int(group.get("HealthyThresholdCount", AWS_DEFAULTS["threshold"])),
        "delay": int(attributes.get("deregistration_delay.timeout_seconds", AWS_DEFAULTS["delay"])),
        "grace": int(service.get("HealthCheckGracePeriodSeconds", AWS_DEFAULTS["grace"])),
    }


def rollout_seconds(k: dict[str, int]) -> int:
    return k["grace"] + k["interval"] * k["threshold"] + k["delay"]


def configured_seconds(environment: str) -> int | None:
    """The same figure from pipeline.toml (ServiceSettings.modeled_rollout_seconds), as a cross-check."""
    try:
        from pipeline import config

        return config.load(ROOT / "pipeline.toml").environment(environment).service.modeled_rollout_seconds
    except Exception:  # noqa: BLE001 - a benchmark prints what it can
        return None


def main() -> None:
    templates = sorted((ROOT / "cloudformation").glob("service-*.yaml"))
    if not templates:
        print("no cloudformation/service-*.yaml: run `pipeline synth`", file=sys.stderr)
        return
    header = f"{'environment':<14} {'grace':>6} {'interval':>9} {'threshold':>10} {'drain':>6} {'rollout':>8} {'pipeline.toml':>14} {'speedup':>8}"
    print(header)
    print("-" * len(header))
    default = rollout_seconds(AWS_DEFAULTS)
    worst = 0
    for template in templates:
        env = template.stem.removeprefix("service-")
        k = knobs(template)
        total = rollout_seconds(k)
        worst = max(worst, total)
        configured = configured_seconds(env)
        configured_cell = f"{configured}s" if configured is not None else "-"
        mark = "" if configured in (None, total) else "  (template differs from pipeline.toml: stale?)"
        print(
            f"{env:<14} {k['grace']:>5}s {k['interval']:>8}s {k['threshold']:>10} {k['delay']:>5}s {total:>7}s "
            f"{configured_cell:>14} {default / total:>7.1f}x{mark}"
        )
    d = AWS_DEFAULTS
    print(
        f"{'AWS defaults':<14} {d['grace']:>5}s {d['interval']:>8}s {d['threshold']:>10} {d['delay']:>5}s {default:>7}s {'-':>14} {1:>7.1f}x"
    )
    print("rollout = grace + interval x threshold + drain (one rolling replacement on AWS, pull and start excluded)")
    verdict = "met" if worst <= GOAL_SECONDS else "MISSED"
    print(f"goal: modeled rollout at most {GOAL_SECONDS} s in every environment: {verdict} (slowest {worst} s)")


if __name__ == "__main__":
    main()
