"""The pipeline's own timeouts run on the ground's clock: `rollout_timeout` is an AWS duration, scaled by
the same one factor as every AWS duration here (Context.time_scale, from the ground's PIPELINE_TIME_SCALE),
so a rollout that cannot finish in time is TIMED_OUT here as on AWS, at the scaled rollout_timeout."""

from __future__ import annotations

import os
import time
import tomllib
from typing import Any
from unittest import mock

from pipeline import config
from pipeline.clock import WallClock
from pipeline.steps.context import Context
from pipeline.steps.roll import RolloutOutcome
from tests.local_ground.tasks.task_env import ROOT, SCALE, Env, wait_for


def settings_with_least_rollout_timeout() -> config.Settings:
    """The repository's settings with staging's rollout_timeout at the least the settings accept."""
    raw: dict[str, Any] = tomllib.loads((ROOT / "pipeline.toml").read_text())
    floor = config.parse(raw, root=ROOT).environment("staging").rollout_floor_seconds
    raw["environments"]["staging"]["rollout_timeout"] = floor
    return config.parse(raw, root=ROOT)


def test_a_rollout_that_cannot_finish_times_out_at_the_scaled_rollout_timeout(env: Env, images: dict[str, str]) -> None:
    env.create_registry_stack()
    outputs = env.create_service_stack(env.push(images["v1"], "1.0.0"))
    wait_for(lambda: env.service()["deployments"][0]["rolloutState"] == "COMPLETED")
    # A model still loading: no health check answers, so ECS waits out the grace period (warm-up runs in
    # real time here, as on Fargate) and the deployment stays IN_PROGRESS far beyond rollout_timeout.
    env.update_image(env.push(images["silent"], "2.0.0"), "2.0.0")
    new_definition = wait_for(
        lambda: env.service()["taskDefinition"].endswith(":2") and env.service()["taskDefinition"]
    )

    settings = settings_with_least_rollout_timeout()
    timeout = settings.environment("staging").service.rollout_timeout
    lines: list[str] = []
    ctx = Context(settings, WallClock(), lines.append, poll=0.05, time_scale=SCALE)
    with mock.patch.dict(os.environ, env.aws.environ()):  # the pipeline finds this ground as boto3 would
        started = time.monotonic()
        result = ctx.watcher("staging").wait(outputs["ClusterName"], outputs["ServiceName"], new_definition)
        wall = time.monotonic() - started

    assert (result.outcome, result.cause) == (RolloutOutcome.TIMED_OUT, f"not stable after {timeout}s")
    assert timeout * SCALE <= wall < timeout * SCALE + 3  # the scaled timeout, not AWS's 255 s
    assert env.service()["deployments"][0]["rolloutState"] == "IN_PROGRESS"  # it timed out; ECS did not decide
