"""The failure paths the peers' suites test (ECS deploy action, ecspresso, ecs-deploy, Copilot), on the
local ground: real tasks, health checks, load balancer, registry, GitHub, identity enforcement.

The fixtures chain what each test builds on (production is never deployed here), so the tests pass in
any order. A first release that fails is in test_first_release.py, on a ground of its own.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from typing import Any

import boto3
import pytest

from pipeline.aws.clients import Clients
from pipeline.config import Settings
from pipeline.errors import AwsError, DeployError, GitHubError, Interrupted, ReleaseFailed
from pipeline.github import GitHubRecorder
from pipeline.report import ReleaseOutcome, ReleaseReport
from pipeline.steps.history import status
from pipeline.steps.release import release, rollback
from tests.steps.story import aws, bootstrap, context

pytestmark = [pytest.mark.slow, pytest.mark.story]  # the failures build on one account's history

STACK = "iris-classifier-service-staging"
TAGS = ("v1.0.0", "v1.1.0", "v1.2.0", "v1.4.0", "v1.5.0", "v1.6.0", "v2.0.0")

# Healthy to the load balancer, but where the environment pins the feature order (staging does) the
# prediction is an error object: the smoke test fails after the health checks passed.
WRONG_ANSWERS_CGI = """#!/bin/busybox sh
[ -n "$CONTENT_LENGTH" ] && /bin/busybox head -c "$CONTENT_LENGTH" >/dev/null
printf 'Content-Type: application/json\\r\\n\\r\\n'
if [ -n "$MODEL_EXPECTED_FEATURES" ]; then printf '{"error": "features out of order"}'
else printf '{"predictions": ["setosa"], "version": "%s"}' "$MODEL_VERSION"; fi
"""


def quick_smoke(settings: Settings) -> Settings:
    """A smoke test that gives up after 3 s instead of 30 (it retries until its deadline)."""
    return replace(settings, smoke=replace(settings.smoke, timeout=3))


def newest_deployment(environment: str) -> tuple[str, str | None]:
    github = GitHubRecorder.from_environ(os.environ)
    assert github is not None
    newest = github.deployments(environment, 1)[0]
    return newest.version, newest.state


def production_deployments() -> list[Any]:
    github = GitHubRecorder.from_environ(os.environ)
    assert github is not None
    return github.deployments("production", 50)


def stacks() -> dict[str, str]:
    return {s["StackName"]: s["StackStatus"] for s in aws("cloudformation").describe_stacks()["Stacks"]}


def service_of(settings: Settings, environment: str = "staging") -> dict[str, Any]:
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in aws("cloudformation").describe_stacks(StackName=f"{settings.app.name}-service-{environment}")[
            "Stacks"
        ][0]["Outputs"]
    }
    return aws("ecs").describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]])["services"][
        0
    ]


def runs(settings: Settings, version: str) -> None:
    """Establish that staging runs `version` (already in ECR)."""
    if status(context(settings, github=False), "staging").version != version:
        rollback(context(settings), "staging", version)
    assert status(context(settings, github=False), "staging").version == version


@pytest.fixture(scope="module")
def bootstrapped(ground: Any, project: Any) -> Any:
    wrong = project.root / "images" / "model-wrong-answers"
    shutil.copytree(project.root / "images" / "model", wrong)
    (wrong / "www" / "cgi-bin" / "predict").write_text(WRONG_ANSWERS_CGI)
    bootstrap(ground, project.settings, TAGS)
    return project


@pytest.fixture(scope="module")
def recreated(bootstrapped: Any) -> tuple[ReleaseReport, list[str]]:
    lines: list[str] = []
    return release(context(bootstrapped.settings, lines), "staging", "v1.0.0"), lines


@pytest.fixture(scope="module")
def two_releases(bootstrapped: Any, recreated: Any) -> Any:
    """1.0.0 and then 1.1.0 released to staging."""
    release(context(bootstrapped.settings), "staging", "v1.1.0")
    return bootstrapped


def test_a_first_release_creates_the_stack(bootstrapped: Any, recreated: tuple[ReleaseReport, list[str]]) -> None:
    report, lines = recreated
    assert report.outcome is ReleaseOutcome.RELEASED
    assert f"{STACK}: executing create" in lines
    assert status(context(bootstrapped.settings, github=False), "staging").version == "1.0.0"


def test_a_smoke_failure_after_healthy_tasks_is_rolled_back_by_the_pipeline(two_releases: Any) -> None:
    """Health checks pass, so ECS and CloudFormation see success: only the pipeline's own rollback
    brings the previous digest back."""
    settings = two_releases.settings
    runs(settings, "1.1.0")
    before = status(context(settings, github=False), "staging")
    lines: list[str] = []
    with pytest.raises(ReleaseFailed, match="lacks predictions") as failed:
        release(context(quick_smoke(two_releases.with_image("model-wrong-answers")), lines), "staging", "v1.2.0")
    report = failed.value.report
    assert (report.outcome, report.restored_version) == (ReleaseOutcome.ROLLED_BACK, "1.1.0")
    # The pipeline's rollback is a phase of its own, around the previous digest's deploy, roll and smoke.
    assert [(p.name, p.ok) for p in report.phases] == [
        ("build", True),
        ("check", True),
        ("push", True),
        ("deploy", True),
        ("roll", True),
        ("smoke", False),
        ("deploy", True),
        ("roll", True),
        ("smoke", True),
        ("rollback", True),
    ]
    assert f"rolling staging back to 1.1.0 ({before.digest})" in lines
    after = status(context(settings, github=False), "staging")
    assert (after.version, after.digest) == ("1.1.0", before.digest)
    assert newest_deployment("staging") == ("1.2.0", "failure")


def test_an_automatic_rollback_that_fails_too_names_both_causes(two_releases: Any) -> None:
    """The smoke contract changed (a key neither version answers): the new digest fails its smoke test,
    and so does the previous one the pipeline puts back."""
    settings = two_releases.settings
    runs(settings, "1.1.0")
    stricter = quick_smoke(replace(settings, smoke=replace(settings.smoke, expect_keys=("predictions", "labels"))))
    with pytest.raises(ReleaseFailed) as failed:
        rollback(context(stricter), "staging", "1.0.0")
    report = failed.value.report
    assert report.outcome is ReleaseOutcome.FAILED and report.restored_version == ""
    first, _, second = report.cause.partition("; the automatic rollback failed too: ")
    assert "smoke test failed" in first and "lacks labels" in first
    assert "smoke test failed" in second and "lacks labels" in second
    assert "failed: smoke test failed" in str(failed.value)
    assert newest_deployment("staging") == ("1.0.0", "failure")


def test_a_release_keeps_the_desired_count_autoscaling_raised(two_releases: Any) -> None:
    settings = two_releases.settings
    runs(settings, "1.0.0")
    service = service_of(settings)
    assert service["desiredCount"] == settings.environment("staging").service.desired_count == 1
    # What Application Auto Scaling does on a scale-out: UpdateService with a new desired count.
    aws("ecs").update_service(cluster=service["clusterArn"], service=service["serviceName"], desiredCount=2)
    report = rollback(context(settings), "staging", "1.1.0")
    assert report.outcome is ReleaseOutcome.RELEASED
    after = service_of(settings)
    assert (after["desiredCount"], after["runningCount"]) == (2, 2)
    parameters = aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["Parameters"]
    assert {"ParameterKey": "DesiredCount", "ParameterValue": "2"} in parameters


def test_rollback_previous_without_github_finds_the_version_before(two_releases: Any) -> None:
    """CloudFormation deregisters the task definition an update replaced: the earlier one is INACTIVE."""
    settings = two_releases.settings
    runs(settings, "1.0.0")
    rollback(context(settings), "staging", "1.1.0")
    ecs = aws("ecs")
    family = f"{settings.app.name}-staging"
    assert len(ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]) == 1
    lines: list[str] = []
    report = rollback(context(settings, lines, github=False), "staging", None, previous=True)
    assert (report.outcome, report.version) == (ReleaseOutcome.RELEASED, "1.0.0")
    assert any(line.startswith("previous version from the stack's task definitions: 1.0.0") for line in lines)
    assert status(context(settings, github=False), "staging").version == "1.0.0"


def test_a_stale_template_is_refused_before_build_and_push(two_releases: Any) -> None:
    settings = two_releases.settings
    template = two_releases.root / "cloudformation" / "service-staging.yaml"
    committed = template.read_text()
    images_before = aws("ecr").describe_images(repositoryName=settings.app.name)["imageDetails"]
    deployments_before = newest_deployment("staging")
    template.write_text(committed.replace("Type: AWS::ECS::Service", "Type: AWS::ECS::Service\n  # edited", 1))
    try:
        lines: list[str] = []
        with pytest.raises(DeployError, match="cloudformation/service-staging.yaml is stale"):
            release(context(settings, lines), "staging", "v2.0.0")
    finally:
        template.write_text(committed)
    assert not any(line.startswith("==> build") for line in lines)
    assert aws("ecr").describe_images(repositoryName=settings.app.name)["imageDetails"] == images_before
    assert newest_deployment("staging") == deployments_before


def deploy_identity_without_execute() -> boto3.session.Session:
    """An IAM user allowed everything but cloudformation:ExecuteChangeSet (a role missing one action)."""
    iam = aws("iam")
    name = "deploy-without-execute"
    if name not in {u["UserName"] for u in iam.list_users()["Users"]}:
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name,
            PolicyName="all-but-execute",
            PolicyDocument=(
                '{"Version": "2012-10-17", "Statement": ['
                '{"Effect": "Allow", "Action": "*", "Resource": "*"},'
                '{"Effect": "Deny", "Action": "cloudformation:ExecuteChangeSet", "Resource": "*"}]}'
            ),
        )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.session.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name="us-east-1"
    )


@pytest.mark.parametrize(
    ("tag", "github_fails"), [("v1.4.0", False), ("v1.6.0", True)], ids=["recorded", "github-500-too"]
)
def test_access_denied_on_execute_change_set_is_reported_and_recorded(
    ground: Any, two_releases: Any, tag: str, github_fails: bool
) -> None:
    if ground.identity is None:
        pytest.skip("identity enforcement is switched off (LOCAL_GROUND_IDENTITY=off)")
    settings = two_releases.settings
    runs(settings, "1.1.0")
    session = deploy_identity_without_execute()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if github_fails and line == "==> deploy":
            ground.github.fail_next(500, "POST")  # the next write is the deployment's final status

    ctx = context(settings, make_clients=lambda region: Clients(region, session))
    ctx.echo = echo
    with pytest.raises(AwsError) as denied:
        release(ctx, "staging", tag)
    message = str(denied.value)
    assert "AccessDenied" in message and "cloudformation:ExecuteChangeSet" in message
    version = tag[1:]
    if github_fails:
        assert "; recording it on GitHub failed too: GitHub answered 500" in message
        assert newest_deployment("staging") == (version, "in_progress")
    else:
        assert newest_deployment("staging") == (version, "failure")
    assert status(context(settings, github=False), "staging").version == "1.1.0"
    assert stacks()[STACK] == "UPDATE_COMPLETE"


def test_github_answering_500_when_recording_a_success_fails_the_run(ground: Any, two_releases: Any) -> None:
    settings = two_releases.settings
    runs(settings, "1.1.0")
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith("<== smoke done"):
            ground.github.fail_next(500, "POST")  # the next write is the deployment's final status

    ctx = context(settings)
    ctx.echo = echo
    with pytest.raises(GitHubError) as failed:
        release(ctx, "staging", "v1.5.0")
    assert str(failed.value).startswith("1.5.0 is live, but GitHub could not record it: GitHub answered 500")
    assert "stays in_progress" in str(failed.value)
    assert newest_deployment("staging") == ("1.5.0", "in_progress")
    assert status(context(settings, github=False), "staging").version == "1.5.0"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("status", "--env", "production"),
            "error: production is not deployed: stack iris-classifier-service-production",
        ),
        (("rollback", "--env", "production", "--previous"), "error: production is not deployed: there is no current"),
        (("diff", "--env", "production"), "error: production is not deployed yet. Pass --version"),
        (("roll", "--env", "production"), "error: production is not deployed. Run `pipeline release VERSION"),
        (("smoke", "--env", "production"), "error: production is not deployed. Run `pipeline release VERSION"),
    ],
    ids=["status", "rollback-previous", "diff", "roll", "smoke"],
)
def test_an_environment_never_deployed_is_one_line_and_creates_nothing(
    two_releases: Any,
    args: tuple[str, ...],
    line: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pipeline import cli

    monkeypatch.setattr(cli, "_settings", lambda _path: two_releases.settings)
    before = (stacks(), production_deployments())
    with pytest.raises(SystemExit) as exited:
        cli.run(cli.cli, list(args))
    err = capsys.readouterr().err
    assert exited.value.code == 2  # bad input, the same exit code from every command
    assert [e for e in err.splitlines() if not e.startswith("notice:")] == [err.splitlines()[-1]]
    assert err.splitlines()[-1].startswith(line), err
    assert "Traceback" not in err
    after = (stacks(), production_deployments())
    assert after == before


@pytest.mark.parametrize(
    ("at", "says"),
    [
        ("<== deploy done", f"of rollback {{version}} to staging ({STACK} is UPDATE_COMPLETE; service: PRIMARY "),
        ("  rollout ", "interrupted while watching the rollout of iris-classifier-service-staging-Service"),
        (
            "  smoke test passed",
            f"during smoke of rollback {{version}} to staging ({STACK} is UPDATE_COMPLETE; service: ",
        ),
    ],
    ids=["between-deploy-and-roll", "while-watching", "during-smoke"],
)
def test_ctrl_c_anywhere_says_the_state_exits_130_and_finishes_the_github_deployment(
    two_releases: Any, at: str, says: str
) -> None:
    settings = two_releases.settings
    runs(settings, "1.1.0")
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith(at):
            raise KeyboardInterrupt

    ctx = context(settings)
    ctx.echo = echo
    with pytest.raises(Interrupted) as stopped:
        rollback(ctx, "staging", "1.0.0")
    assert stopped.value.exit_code == 130
    assert says.format(version="1.0.0") in str(stopped.value), str(stopped.value)
    report = stopped.value.report
    assert report is not None and report.outcome is ReleaseOutcome.INTERRUPTED
    assert newest_deployment("staging") == ("1.0.0", "error")
