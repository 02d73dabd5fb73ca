"""The release engine end to end, against the local AWS (real tasks, health checks, load balancer),
the local registry behind ECR and the local GitHub. The tests in this file build on each other:
they run in order, as a team's releases do."""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest

from pipeline.aws.clients import Clients
from pipeline.clock import WallClock
from pipeline.config import Settings
from pipeline.errors import CredentialsError, InputError, PushError, StackBusyError
from pipeline.github import GitHubRecorder
from pipeline.steps.build import BuildahBuilder
from pipeline.steps.context import Context
from pipeline.steps.deploy import Deployer
from pipeline.steps.history import history, status
from pipeline.steps.release import ReleaseFailed, ReleaseOutcome, release, rollback
from pipeline.templates import stack_specs

pytestmark = pytest.mark.slow


def context(settings: Settings, lines: list[str] | None = None, github: bool = True) -> Context:
    out = lines if lines is not None else []
    recorder = GitHubRecorder.from_environ(os.environ) if github else None
    return Context(
        settings, Clients("us-east-1"), WallClock(), out.append, github=recorder, builder=BuildahBuilder, poll=0.05
    )


def aws(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1")


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
    for tag in ("v1.0.0", "v1.1.0", "v1.2.0", "v3.0.0"):
        ground.github.create_tag(tag)
    deployer = Deployer(aws("cloudformation"), WallClock(), lambda _line: None, poll=0.05)
    for spec in stack_specs(project.settings):
        if spec.environment is None:
            deployer.deploy(spec.stack_name, (project.root / "cloudformation" / spec.file_name).read_text(), {})
    return project


def test_first_release_to_staging_then_production(bootstrapped: Any) -> None:
    lines: list[str] = []
    first = release(context(bootstrapped.settings, lines), "staging", "v1.0.0")
    assert first.outcome is ReleaseOutcome.RELEASED
    assert [p.name for p in first.phases] == ["build", "check", "push", "deploy", "roll", "smoke"]
    promoted = release(context(bootstrapped.settings, lines), "production", "v1.0.0")
    assert promoted.outcome is ReleaseOutcome.RELEASED
    assert promoted.digest == first.digest, "production runs the digest staging verified"
    assert [p.name for p in promoted.phases] == ["deploy", "roll", "smoke", "record"]


def test_second_release_runs_by_digest(bootstrapped: Any) -> None:
    report = release(context(bootstrapped.settings), "staging", "v1.1.0")
    release(context(bootstrapped.settings), "production", "v1.1.0")
    now = status(context(bootstrapped.settings), "production")
    assert (now.version, now.digest) == ("1.1.0", report.digest)
    assert now.running == now.desired == bootstrapped.settings.environment("production").service.desired_count
    task_definition = aws("ecs").describe_task_definition(
        taskDefinition=f"{bootstrapped.settings.app.name}-production"
    )["taskDefinition"]
    assert task_definition["containerDefinitions"][0]["image"].endswith("@" + report.digest)

    github = GitHubRecorder.from_environ(os.environ)
    assert github is not None
    production = github.deployments("production", 10)
    assert [(d.version, d.succeeded) for d in production] == [("1.1.0", True), ("1.0.0", True)]
    from github import Auth, Github

    repo = Github(base_url=os.environ["GITHUB_API_URL"], auth=Auth.Token(os.environ["GITHUB_TOKEN"])).get_repo(
        os.environ["GITHUB_REPOSITORY"]
    )
    for tag in ("v1.0.0", "v1.1.0"):
        assert repo.get_release(tag).body.startswith("Image digest: `sha256:")


def test_rollback_previous_brings_the_old_version_back_without_a_build(bootstrapped: Any) -> None:
    lines: list[str] = []
    report = rollback(context(bootstrapped.settings, lines), "production", None, previous=True)
    assert report.outcome is ReleaseOutcome.RELEASED and report.version == "1.0.0"
    assert "build" not in [p.name for p in report.phases]
    assert status(context(bootstrapped.settings), "production").version == "1.0.0"
    entries = history(context(bootstrapped.settings), "production")
    assert [e.version for e in entries[:3]] == ["1.0.0", "1.1.0", "1.0.0"]


def test_a_release_whose_tasks_fail_health_checks_is_rolled_back(bootstrapped: Any) -> None:
    broken = bootstrapped.with_image("model-broken")
    lines: list[str] = []
    with pytest.raises(ReleaseFailed) as failed:
        release(context(broken, lines), "staging", "v1.2.0")
    report = failed.value.report
    assert report.outcome is ReleaseOutcome.ROLLED_BACK and report.restored_version == "1.1.0"
    assert "Circuit Breaker was triggered" in str(failed.value)
    assert "task stopped: Task failed ELB health checks" in str(failed.value)
    assert status(context(bootstrapped.settings), "staging").version == "1.1.0"
    github = GitHubRecorder.from_environ(os.environ)
    assert github is not None
    newest = github.deployments("staging", 1)[0]
    assert (newest.version, newest.state) == ("1.2.0", "failure")


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda s: release(context(s), "staging", "latest"), InputError, "is not a release version"),
        (lambda s: release(context(s), "qa", "v9.9.9"), Exception, "unknown environment 'qa'"),
        (lambda s: rollback(context(s), "staging", "7.7.7"), PushError, "version 7.7.7 is not in ECR"),
        (lambda s: release(context(s), "staging", "v1.0.0"), InputError, "already in ECR"),
    ],
    ids=["not-a-version", "unknown-environment", "version-missing-in-ecr", "version-already-released"],
)
def test_bad_input_changes_nothing(bootstrapped: Any, action: Any, error: type[Exception], message: str) -> None:
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


def test_a_stack_in_progress_is_refused(bootstrapped: Any) -> None:
    """A real update in flight (the broken 1.2.0 image, which ECS is still trying) is not stacked on."""
    import time

    settings = bootstrapped.settings
    cf = aws("cloudformation")
    stack = f"{settings.app.name}-service-staging"
    broken = aws("ecr").describe_images(repositoryName=settings.app.name, imageIds=[{"imageTag": "1.2.0"}])[
        "imageDetails"
    ][0]
    repository = aws("ecr").describe_repositories(repositoryNames=[settings.app.name])["repositories"][0][
        "repositoryUri"
    ]
    made = cf.create_change_set(
        StackName=stack,
        ChangeSetName="someone-else",
        TemplateBody=(bootstrapped.root / "cloudformation" / "service-staging.yaml").read_text(),
        Parameters=[
            {"ParameterKey": "ImageUri", "ParameterValue": f"{repository}@{broken['imageDigest']}"},
            {"ParameterKey": "Version", "ParameterValue": "1.2.0"},
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
    deadline = time.monotonic() + 60
    while (
        cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"].endswith("_IN_PROGRESS")
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"


def test_throttling_in_deploy_and_roll_does_not_fail_a_release(bootstrapped: Any, ground: Any) -> None:
    ground.aws.inject_throttling("cloudformation", "DescribeStacks", 3)
    ground.aws.inject_throttling("cloudformation", "DescribeChangeSet", 2)
    ground.aws.inject_throttling("ecs", "DescribeServices", 3)
    report = rollback(context(bootstrapped.settings), "staging", "1.0.0")
    assert report.outcome is ReleaseOutcome.RELEASED
