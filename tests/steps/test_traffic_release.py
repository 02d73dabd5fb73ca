"""Canary releases end to end on the local ground: the engine follows the ECS service deployment, runs the
model gate against the test listener, watches the canary's target group, and answers the PAUSE hooks;
a production client counts which version served each request."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from typing import Any

import boto3
import pytest

from pipeline import config
from pipeline.clock import WallClock
from pipeline.errors import Interrupted, ReleaseFailed
from pipeline.github import GitHubRecorder
from pipeline.report import ReleaseOutcome, ReleaseReport, markdown_summary
from pipeline.steps.history import status
from pipeline.steps.release import release
from pipeline.synth import write_templates
from pipeline.templates import names
from tests.client_loop import ClientLoop
from tests.projects import Project, make_project
from tests.steps.story import bootstrap, context

pytestmark = pytest.mark.slow

CANARY = {
    "strategy": "canary",
    "canary_percent": 10.0,
    "canary_bake_minutes": 5,  # 6 s here
    "bake_minutes": 1,
    "hook_timeout_minutes": 30,
    "test_listener_port": 9000,
}
GOLDEN = [{"request": {"instances": [[5.1, 3.5, 1.4, 0.2]]}, "expected": ["setosa"]}] * 8
PREDICT = "/cgi-bin/predict"
# Variants of tests/images/model (busybox CGI answering {"predictions": ..., "version": ...}).
WRONG = '{"predictions": ["virginica"], "version": "%s"}'  # healthy, answers, wrong
ERRORS_ON_GET = (  # POST (the golden set) answers well; GET (the production client) gets a 500
    '#!/bin/busybox sh\n[ "$REQUEST_METHOD" = GET ] && { printf "Status: 500 Internal Server Error\\r\\n\\r\\n"; exit 0; }\n'
)
SLOW = "#!/bin/busybox sh\n/bin/busybox sleep 2\n"


def variant(project: Project, name: str, head: str = "", answer: str = "") -> None:
    folder = project.root / "images" / name
    if folder.exists():
        return
    shutil.copytree(project.root / "images" / "model", folder)
    script = folder / "www" / "cgi-bin" / "predict"
    text = script.read_text()
    if answer:
        text = text.replace(text.splitlines()[-1], f"printf '{answer}' \"$MODEL_VERSION\"")
    if head:
        text = head + text.split("\n", 1)[1]
    script.write_text(text)


def settings_for(project: Project, image: str = "model", **traffic: Any) -> config.Settings:
    """Staging as a canary with the gate; templates re-synthesized for these settings."""
    gate = config.GateSettings(golden_set="golden.jsonl", path=PREDICT, max_p99_ms=1500.0, request_timeout=5.0)
    staging = project.settings.environment("staging")
    fields = {**CANARY, **traffic}
    staging = replace(
        staging,
        delivery=replace(staging.delivery, strategy=fields.pop("strategy")),
        traffic=replace(staging.traffic, **fields),
    )
    settings = replace(
        project.with_image(image),
        gate=gate,
        environments=tuple(staging if e.name == "staging" else e for e in project.settings.environments),
    )
    write_templates(settings, project.root / "cloudformation")
    return settings


class Sleepy(WallClock):
    """A wall clock whose sleep raises KeyboardInterrupt once armed (Ctrl-C in the middle of a wait)."""

    def __init__(self) -> None:
        self.at: float | None = None

    def sleep(self, seconds: float) -> None:
        if self.at is not None and time.monotonic() >= self.at:
            self.at = None
            raise KeyboardInterrupt
        super().sleep(seconds)


def production_clients(base: str) -> ClientLoop:
    """Production's clients: GETs of the predict path, each answer the version that served it."""
    return ClientLoop(base + PREDICT, read=lambda body: str(json.loads(body)["version"]))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    made = make_project(tmp_path_factory.mktemp("canary"))
    (made.root / "golden.jsonl").write_text("".join(json.dumps(row) + "\n" for row in GOLDEN))
    variant(made, "model-wrong", answer=WRONG)
    variant(made, "model-5xx", head=ERRORS_ON_GET)
    variant(made, "model-slow", head=SLOW)
    return made


@pytest.fixture(scope="module")
def base(ground: Any, project: Project) -> str:
    """v1.0.0 in staging (the stack's first deployment: nothing to shift); returns the service URL."""
    settings = settings_for(project)
    bootstrap(ground, settings, ("v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0", "v1.5.0"))
    report = release(context(settings, []), "staging", "v1.0.0")
    assert report.outcome is ReleaseOutcome.RELEASED
    return report.url


def running(settings: config.Settings) -> str:
    return status(context(settings, []), "staging").version


def settle(settings: config.Settings) -> None:
    cf, stack = boto3.client("cloudformation", region_name="us-east-1"), names.service_stack(settings, "staging")
    deadline = time.monotonic() + 60
    while cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"].endswith("_IN_PROGRESS"):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_canary_release_passes_the_gate_and_completes(base: str, project: Project) -> None:
    settings, lines = settings_for(project), []
    with production_clients(base) as production:
        report = release(context(settings, lines), "staging", "v1.1.0")
    assert report.outcome is ReleaseOutcome.RELEASED
    decisions = "\n".join(report.decisions)
    assert "model gate passed at the test listener (8 golden requests)" in decisions
    assert "canary at 10%" in decisions and "-> CONTINUE" in decisions
    assert "service deployment SUCCESSFUL" in decisions
    assert "### Traffic decisions" in markdown_summary(report)
    # The gantt shows where the service deployment was: the gate, the canary, the bake.
    stages = [stage.name for stage in report.stages]
    assert {"POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME"} <= set(stages), stages
    assert all(stage.ok for stage in report.stages)
    assert "section lifecycle stages" in markdown_summary(report)
    assert running(settings) == "1.1.0"
    assert production.served_by("1.1.0") > 0 and production.answers[-1][2] == "1.1.0"
    assert all(code == 200 for _, code, _ in production.answers)  # no request lost during the shifts
    recorder = GitHubRecorder.from_environ(os.environ)
    assert recorder is not None
    newest = recorder.deployments("staging", 1)[0]
    statuses = [s.description for s in recorder._repo.get_deployment(newest.id).get_statuses()]
    assert any(d.startswith("model gate passed at the test listener") for d in statuses), statuses
    assert any(d.startswith("canary at 10%") for d in statuses), statuses


def test_a_wrong_model_is_stopped_at_the_test_listener_before_any_production_request(
    base: str, project: Project
) -> None:
    settings, lines = settings_for(project, "model-wrong"), []
    before = running(settings)
    with production_clients(base) as production, pytest.raises(ReleaseFailed) as failed:
        release(context(settings, lines), "staging", "v1.2.0")
    report: ReleaseReport = failed.value.report
    assert report.outcome is ReleaseOutcome.ROLLED_BACK
    assert "model gate failed at the test listener: accuracy 0.00 < 0.90" in report.cause
    assert production.served_by("1.2.0") == 0 and len(production.answers) > 20
    assert running(settings) == before
    assert any("production traffic back on the previous version" in d or "ROLLBACK" in d for d in report.decisions)


def test_a_model_failing_under_production_traffic_is_rolled_back_with_the_canary_share_exposed(
    base: str, project: Project
) -> None:
    settings, lines = settings_for(project, "model-5xx"), []
    before = running(settings)
    with production_clients(base) as production, pytest.raises(ReleaseFailed) as failed:
        release(context(settings, lines), "staging", "v1.3.0")
    report: ReleaseReport = failed.value.report
    assert "canary failed at 10% of production traffic: 5xx rate" in report.cause
    assert "model gate passed" in "\n".join(report.decisions)
    errors = sum(1 for _, code, _ in production.answers if code == 500)
    total = len(production.answers)
    # Weighted routing picks per request: at most the canary's 10%, with three standard deviations of slack.
    assert 0 < errors <= total * 0.10 + 3 * (total * 0.09) ** 0.5, (errors, total)
    back = [d for d in report.decisions if "production traffic back on the previous version" in d]
    assert back, report.decisions
    assert running(settings) == before


def test_a_gate_slower_than_its_hook_timeout_rolls_back(base: str, project: Project) -> None:
    settings, lines = settings_for(project, "model-slow", hook_timeout_minutes=1), []  # 1.2 s here
    before = running(settings)
    with pytest.raises(ReleaseFailed) as failed:
        release(context(settings, lines), "staging", "v1.4.0")
    cause = failed.value.report.cause
    assert "the lifecycle hook at POST_TEST_TRAFFIC_SHIFT timed out (1 min) before the pipeline decided" in cause
    assert running(settings_for(project)) == before


def test_ctrl_c_during_the_canary_bake_stops_the_deployment_and_says_so(base: str, project: Project) -> None:
    settings, lines, clock = settings_for(project), [], Sleepy()

    def arm(line: str) -> None:
        lines.append(line)
        if "shifting production traffic" in line:
            clock.at = time.monotonic() + 1.5  # into the 6 s canary bake

    ctx = context(settings, lines, clock=clock)
    ctx.echo = arm
    before = running(settings)
    with production_clients(base) as production, pytest.raises(Interrupted) as stopped:
        release(ctx, "staging", "v1.5.0")
    message = stopped.value.message
    assert "Ctrl-C during the canary bake: stopped the service deployment (StopServiceDeployment, rollback)" in message
    assert "production traffic back on the previous version in" in message
    settle(settings)
    assert running(settings) == before
    time.sleep(0.5)
    assert production.answers[-1][2] == before
