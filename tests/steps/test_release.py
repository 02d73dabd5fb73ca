"""The release engine end to end, against the local AWS (real tasks, health checks, load balancer),
the local registry behind ECR and the local GitHub. The ground is shared by the module (it is slow to
start); each test establishes what it needs (the releases it builds on, what each environment runs)
through the fixtures, `runs()` and `switch()`, so the tests pass in any order."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any

import boto3
import pytest

from pipeline.aws.clients import Clients
from pipeline.config import Settings
from pipeline.errors import CredentialsError, InputError, Interrupted, ReleaseFailed, StackBusyError
from pipeline.github import GitHubRecorder
from pipeline.report import ReleaseOutcome, ReleaseReport, markdown_summary
from pipeline.steps import strategy
from pipeline.steps.build import BuildahBuilder, build_image
from pipeline.steps.history import history, status
from pipeline.steps.push import PushedImage, push_image
from pipeline.steps.release import release, rollback
from pipeline.steps.roll import RolloutOutcome, RolloutResult
from tests.botocore_time import scaled_retry_waits
from tests.projects import STORY_TIME_SCALE
from tests.steps.story import aws, bootstrap, context

pytestmark = [pytest.mark.slow, pytest.mark.story]


def snapshot(project: Any) -> dict[str, Any]:
    """Everything a refused command must leave as it was."""
    cf = aws("cloudformation")
    stacks = {
        s["StackName"]: (
            s["StackStatus"],
            tuple(sorted((p["ParameterKey"], p.get("ParameterValue")) for p in s.get("Parameters", []))),
        )
        for s in cf.describe_stacks()["Stacks"]
    }
    images = sorted(
        (i["imageDigest"], tuple(i.get("imageTags", [])))
        for i in aws("ecr").describe_images(repositoryName=project.settings.app.name)["imageDetails"]
    )
    github = GitHubRecorder.from_environ(os.environ)
    assert github is not None
    deployments = [(d.id, d.state) for env in ("staging", "production") for d in github.deployments(env, 50)]
    return {"stacks": stacks, "images": images, "deployments": deployments}


@pytest.fixture(scope="module")
def bootstrapped(ground: Any, project: Any) -> Any:
    bootstrap(ground, project.settings, ("v1.0.0", "v1.1.0", "v1.2.0", "v3.0.0"))
    return project


@pytest.fixture(scope="module")
def first_releases(bootstrapped: Any) -> tuple[ReleaseReport, ReleaseReport]:
    """v1.0.0 released to staging (which builds it), then promoted to production."""
    first = release(context(bootstrapped.settings), "staging", "v1.0.0")
    promoted = release(context(bootstrapped.settings), "production", "v1.0.0")
    return first, promoted


@pytest.fixture(scope="module")
def second_releases(first_releases: Any, bootstrapped: Any) -> tuple[ReleaseReport, ReleaseReport]:
    """v1.1.0 released to staging and production, after v1.0.0."""
    return (
        release(context(bootstrapped.settings), "staging", "v1.1.0"),
        release(context(bootstrapped.settings), "production", "v1.1.0"),
    )


def runs(settings: Settings, environment: str, version: str) -> None:
    """Establish that `environment` runs `version` (already in ECR): deploy it by digest unless it does."""
    if status(context(settings, github=False), environment).version != version:
        rollback(context(settings), environment, version)
    assert status(context(settings, github=False), environment).version == version


def switch(settings: Settings, environment: str) -> tuple[str, str]:
    """(what `environment` runs, the other released version): a test deploys the other one, so it changes
    something real without first undoing what the test before it left."""
    now = status(context(settings, github=False), environment).version
    if now not in ("1.0.0", "1.1.0"):
        runs(settings, environment, "1.1.0")
        now = "1.1.0"
    return now, "1.0.0" if now == "1.1.0" else "1.1.0"


def settle(stack: str) -> str:
    """Wait for a stack operation started outside the pipeline (CloudFormation runs it in the background)."""
    cf = aws("cloudformation")
    deadline = time.monotonic() + 60
    while (state := cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]).endswith("_IN_PROGRESS"):
        assert time.monotonic() < deadline, f"{stack} still {state}"
        time.sleep(0.1)
    return state


def test_first_release_to_staging_then_production(first_releases: tuple[ReleaseReport, ReleaseReport]) -> None:
    first, promoted = first_releases
    assert first.outcome is ReleaseOutcome.RELEASED
    assert [p.name for p in first.phases] == ["build", "check", "push", "deploy", "roll", "smoke"]
    assert promoted.outcome is ReleaseOutcome.RELEASED
    assert promoted.digest == first.digest, "production runs the digest staging verified"
    assert [p.name for p in promoted.phases] == ["deploy", "roll", "smoke", "record"]


def test_second_release_runs_by_digest(bootstrapped: Any, second_releases: tuple[ReleaseReport, ReleaseReport]) -> None:
    report, promoted = second_releases
    assert promoted.digest == report.digest
    runs(bootstrapped.settings, "production", "1.1.0")
    now = status(context(bootstrapped.settings), "production")
    assert (now.version, now.digest) == ("1.1.0", report.digest)
    assert now.running == now.desired == bootstrapped.settings.environment("production").service.desired_count
    task_definition = aws("ecs").describe_task_definition(
        taskDefinition=f"{bootstrapped.settings.app.name}-production"
    )["taskDefinition"]
    assert task_definition["containerDefinitions"][0]["image"].endswith("@" + report.digest)

    github = GitHubRecorder.from_environ(os.environ)
    assert github is not None
    production = github.deployments("production", 100)
    assert [(d.version, d.succeeded) for d in production][-2:] == [("1.1.0", True), ("1.0.0", True)], (
        "the first two deployments to production, oldest last"
    )
    from github import Auth, Github

    repo = Github(base_url=os.environ["GITHUB_API_URL"], auth=Auth.Token(os.environ["GITHUB_TOKEN"])).get_repo(
        os.environ["GITHUB_REPOSITORY"]
    )
    for tag in ("v1.0.0", "v1.1.0"):
        assert repo.get_release(tag).body.startswith("Image digest: `sha256:")


def test_rollback_previous_brings_the_old_version_back_without_a_build(bootstrapped: Any, second_releases: Any) -> None:
    runs(bootstrapped.settings, "production", "1.1.0")
    report = rollback(context(bootstrapped.settings), "production", None, previous=True)
    assert report.outcome is ReleaseOutcome.RELEASED and report.version == "1.0.0"
    assert "build" not in [p.name for p in report.phases]
    assert status(context(bootstrapped.settings), "production").version == "1.0.0"
    entries = history(context(bootstrapped.settings), "production")
    assert [e.version for e in entries[:2]] == ["1.0.0", "1.1.0"]


def test_a_release_whose_tasks_fail_health_checks_is_rolled_back(bootstrapped: Any, second_releases: Any) -> None:
    before, _ = switch(bootstrapped.settings, "staging")
    broken = bootstrapped.with_image("model-broken")
    with pytest.raises(ReleaseFailed) as failed:
        release(context(broken), "staging", "v1.2.0")
    report = failed.value.report
    assert report.outcome is ReleaseOutcome.ROLLED_BACK and report.restored_version == before
    assert "Circuit Breaker was triggered" in str(failed.value)
    assert "task stopped: Task failed ELB health checks" in str(failed.value)
    assert status(context(bootstrapped.settings), "staging").version == before
    github = GitHubRecorder.from_environ(os.environ)
    assert github is not None
    newest = github.deployments("staging", 1)[0]
    assert (newest.version, newest.state) == ("1.2.0", "failure")


@pytest.mark.parametrize(
    ("image", "tag", "stopped"),
    [
        (
            "model-writes-root",
            "v4.0.0",
            "task stopped: Essential container in task exited (sh: can't create /model-cache: Read-only file system)",
        ),
        (
            "model-oom",
            "v4.1.0",
            "task stopped: OutOfMemoryError: Container killed due to memory usage "
            "(OutOfMemoryError: Container killed due to memory usage)",
        ),
    ],
    ids=["writes-to-a-read-only-root", "exceeds-its-memory"],
)
def test_a_release_the_task_definitions_limits_kill_is_rolled_back_with_ecs_reason(
    ground: Any, bootstrapped: Any, second_releases: Any, image: str, tag: str, stopped: str
) -> None:
    """The template's ReadonlyRootFilesystem and task memory apply to the tasks: a model that writes to its
    root, or loads more than its memory, passes the pre-push check (no limits there) and is stopped by ECS;
    the circuit breaker rolls it back and the release error says why, in ECS's words."""
    ground.github.create_tag(tag)
    before, _ = switch(bootstrapped.settings, "staging")
    with pytest.raises(ReleaseFailed) as failed:
        release(context(bootstrapped.with_image(image)), "staging", tag)
    report = failed.value.report
    assert report.outcome is ReleaseOutcome.ROLLED_BACK and report.restored_version == before
    assert "Circuit Breaker was triggered" in str(failed.value)
    assert stopped in str(failed.value), str(failed.value)
    assert status(context(bootstrapped.settings), "staging").version == before


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda s: release(context(s), "staging", "latest"), InputError, "is not a release version"),
        (lambda s: release(context(s), "qa", "v9.9.9"), Exception, "unknown environment 'qa'"),
        (lambda s: rollback(context(s), "staging", "7.7.7"), InputError, "version 7.7.7 is not in ECR"),
        (lambda s: release(context(s), "staging", "v1.0.0"), InputError, "already in ECR"),
    ],
    ids=["not-a-version", "unknown-environment", "version-missing-in-ecr", "version-already-released"],
)
def test_bad_input_changes_nothing(
    bootstrapped: Any, first_releases: Any, action: Any, error: type[Exception], message: str
) -> None:
    before = snapshot(bootstrapped)
    with pytest.raises(error, match=message):
        action(bootstrapped.settings)
    assert snapshot(bootstrapped) == before


def test_missing_credentials_change_nothing(bootstrapped: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(bootstrapped)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CredentialsError, match="no AWS credentials"):
        release(context(bootstrapped.settings), "staging", "v3.0.0")
    monkeypatch.undo()
    assert snapshot(bootstrapped) == before


@pytest.fixture(scope="module")
def broken_image(bootstrapped: Any) -> PushedImage:
    """A model image whose tasks fail their health checks, in ECR as 1.9.0 (never released)."""
    settings = bootstrapped.with_image("model-broken")
    builder = BuildahBuilder()
    local = build_image(settings, "1.9.0", builder, lambda _line: None)
    return push_image(aws("ecr"), builder, local, settings.app.name, "1.9.0", lambda _line: None)


def test_a_stack_in_progress_is_refused(bootstrapped: Any, second_releases: Any, broken_image: PushedImage) -> None:
    """A real update in flight (a broken image, which ECS is still trying) is not stacked on."""
    settings = bootstrapped.settings
    cf = aws("cloudformation")
    stack = f"{settings.app.name}-service-staging"
    assert not settle(stack).endswith("_FAILED")
    made = cf.create_change_set(
        StackName=stack,
        ChangeSetName="someone-else",
        TemplateBody=(bootstrapped.root / "cloudformation" / "service-staging.yaml").read_text(),
        Parameters=[
            {"ParameterKey": "ImageUri", "ParameterValue": broken_image.image_uri},
            {"ParameterKey": "Version", "ParameterValue": "1.9.0"},
        ],
        Capabilities=["CAPABILITY_IAM"],
        ChangeSetType="UPDATE",
    )
    cf.execute_change_set(ChangeSetName=made["Id"], StackName=stack)
    assert cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_IN_PROGRESS"
    change_sets_before = len(cf.list_change_sets(StackName=stack)["Summaries"])
    deployments_before = snapshot(bootstrapped)["deployments"]
    with pytest.raises(StackBusyError, match="UPDATE_IN_PROGRESS: another operation is running"):
        rollback(context(settings), "staging", "1.0.0")
    assert len(cf.list_change_sets(StackName=stack)["Summaries"]) == change_sets_before
    assert snapshot(bootstrapped)["deployments"] == deployments_before
    assert settle(stack) == "UPDATE_ROLLBACK_COMPLETE"


def test_throttling_in_deploy_and_roll_does_not_fail_a_release(
    bootstrapped: Any, second_releases: Any, ground: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, other = switch(bootstrapped.settings, "staging")
    retried: list[str] = []

    def counting_clients(region: str) -> Clients:
        """The pipeline's own clients, noting each call botocore had to retry."""
        session = boto3.session.Session(region_name=region)

        def note(parsed: dict[str, Any], model: Any, **_: Any) -> None:
            if parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0):
                retried.append(model.name)

        session.events.register("after-call", note)
        return Clients(region, session)

    ground.aws.inject_throttling("cloudformation", "DescribeStacks", 3)
    ground.aws.inject_throttling("cloudformation", "DescribeChangeSet", 2)
    ground.aws.inject_throttling("ecs", "DescribeServices", 3)
    with scaled_retry_waits(monkeypatch, STORY_TIME_SCALE):  # botocore's backoff, on the ground's clock
        report = rollback(context(bootstrapped.settings, make_clients=counting_clients), "staging", other)
    assert report.outcome is ReleaseOutcome.RELEASED
    assert {"DescribeStacks", "DescribeChangeSet", "DescribeServices"} <= set(retried), retried


class InterruptOnce:
    """Wall time, but the first wait after `marker` was echoed raises KeyboardInterrupt (Ctrl-C)."""

    def __init__(self, lines: list[str], marker: str) -> None:
        self.lines, self.marker, self.fired = lines, marker, False

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if not self.fired and any(self.marker in line for line in self.lines):
            self.fired = True
            raise KeyboardInterrupt
        time.sleep(seconds)


def test_ctrl_c_during_a_rollback_says_what_the_stack_does_and_records_an_error(
    bootstrapped: Any, second_releases: Any
) -> None:
    settings = bootstrapped.settings
    _, other = switch(settings, "staging")
    lines: list[str] = []
    ctx = context(settings, lines)
    ctx.clock = InterruptOnce(lines, "executing update")
    with pytest.raises(Interrupted) as stopped:
        rollback(ctx, "staging", other)
    assert stopped.value.exit_code == 130
    stack = f"{settings.app.name}-service-staging"
    assert f"interrupted while waiting for {stack} to deploy ({stack} is UPDATE_" in str(stopped.value)
    assert "CloudFormation carries on" in str(stopped.value)
    report = stopped.value.report
    assert report is not None and report.outcome is ReleaseOutcome.INTERRUPTED
    assert [(p.name, p.ok) for p in report.phases] == [("deploy", False)]
    assert markdown_summary(report).startswith(f"## ⏹️ rollback {other} to staging: interrupted\n")
    github = GitHubRecorder.from_environ(os.environ)
    assert github is not None
    newest = github.deployments("staging", 1)[0]
    assert (newest.version, newest.state) == (other, "error")
    # The ECS deployment in flight, if CloudFormation had started one, was stopped with a rollback, and
    # the stack update fails with it; an update not yet at the service carries on.
    stopped_rollout = "stopped ECS deployment" in str(stopped.value)
    assert stopped_rollout or "no ECS deployment was rolling out" in str(stopped.value), str(stopped.value)
    assert settle(stack) == ("UPDATE_ROLLBACK_COMPLETE" if stopped_rollout else "UPDATE_COMPLETE")


def test_a_rollout_strategy_registered_by_a_test_runs_a_release(
    bootstrapped: Any, second_releases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding a strategy: a subclass, its registration, and settings that choose it; no other file."""
    calls: list[tuple[str, str]] = []

    class NoOpStrategy(strategy.RolloutStrategy):
        def watch(self, rollout: strategy.Rollout) -> RolloutResult:
            calls.append(("watch", rollout.task_definition))
            return RolloutResult(RolloutOutcome.COMPLETED, 0.0)

        def promote(self, rollout: strategy.Rollout) -> str:
            calls.append(("promote", rollout.task_definition))
            return "no-op: nothing to promote"

    monkeypatch.setitem(strategy.REGISTRY, "noop", NoOpStrategy)
    staging = bootstrapped.settings.environment("staging")
    chosen = replace(staging, delivery=replace(staging.delivery, strategy="noop"))
    settings = replace(
        bootstrapped.settings,
        environments=tuple(chosen if e.name == "staging" else e for e in bootstrapped.settings.environments),
    )
    _, other = switch(bootstrapped.settings, "staging")
    lines: list[str] = []
    report = rollback(context(settings, lines), "staging", other)
    assert report.outcome is ReleaseOutcome.RELEASED
    assert [p.name for p in report.phases] == ["deploy", "roll", "smoke"]
    deployed = aws("cloudformation").describe_stacks(StackName=f"{settings.app.name}-service-staging")["Stacks"][0]
    task_definition = next(o["OutputValue"] for o in deployed["Outputs"] if o["OutputKey"] == "TaskDefinitionArn")
    assert calls == [("watch", task_definition), ("promote", task_definition)]
    assert "no-op: nothing to promote" in lines


def test_the_single_step_commands_run_the_engine_steps(
    bootstrapped: Any, second_releases: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pipeline deploy | roll | smoke` are the release's own steps, one at a time."""
    from pipeline import cli

    settings = bootstrapped.settings
    _, other = switch(settings, "staging")
    monkeypatch.setattr(cli, "_settings", lambda _path: settings)  # the project's settings, not ./pipeline.toml

    def pipeline(*args: str) -> str:
        with pytest.raises(SystemExit) as exited:
            cli.run(cli.cli, list(args))
        out = capsys.readouterr()
        assert exited.value.code == 0, out.err
        return out.out

    deployed = pipeline("deploy", other, "--env", "staging")
    assert "==> deploy" in deployed and "<== deploy done" in deployed
    assert f"{settings.app.name}-service-staging: runs {other} (sha256:" in deployed
    assert status(context(settings, github=False), "staging").version == other
    rolled = pipeline("roll", "--env", "staging")
    assert "==> roll" in rolled and "rollout completed in" in rolled
    smoked = pipeline("smoke", "--env", "staging")
    assert "==> smoke" in smoked and "smoke test passed" in smoked


def test_a_strategy_that_fails_the_rollout_is_stopped_before_the_previous_version_returns(
    bootstrapped: Any, second_releases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure path of the strategy hooks: watch fails, stop is asked to act on the deployment in
    flight, then the previous digest is deployed again (watched and promoted by the same strategy)."""
    calls: list[tuple[str, str]] = []

    class RefusesFirstStrategy(strategy.RolloutStrategy):
        def watch(self, rollout: strategy.Rollout) -> RolloutResult:
            calls.append(("watch", rollout.task_definition))
            if len(calls) == 1:
                return RolloutResult(RolloutOutcome.ROLLED_BACK, 0.0, "refused by the test strategy")
            return RolloutResult(RolloutOutcome.COMPLETED, 0.0)

        def stop(self, rollout: strategy.Rollout) -> str:
            calls.append(("stop", rollout.task_definition))
            return "stopped by the test strategy"

        def promote(self, rollout: strategy.Rollout) -> str:
            calls.append(("promote", rollout.task_definition))
            return ""

    monkeypatch.setitem(strategy.REGISTRY, "refuses-first", RefusesFirstStrategy)
    staging = bootstrapped.settings.environment("staging")
    chosen = replace(staging, delivery=replace(staging.delivery, strategy="refuses-first"))
    settings = replace(
        bootstrapped.settings,
        environments=tuple(chosen if e.name == "staging" else e for e in bootstrapped.settings.environments),
    )
    before, other = switch(bootstrapped.settings, "staging")
    lines: list[str] = []
    with pytest.raises(ReleaseFailed, match="refused by the test strategy") as failed:
        rollback(context(settings, lines), "staging", other)
    report = failed.value.report
    assert (report.outcome, report.restored_version) == (ReleaseOutcome.ROLLED_BACK, before)
    assert [name for name, _ in calls] == ["watch", "stop", "watch", "promote"]
    assert calls[0][1] == calls[1][1] != calls[2][1] == calls[3][1], "stopped ours, then watched the old one"
    assert "stopped by the test strategy" in lines
    assert status(context(settings, github=False), "staging").version == before
