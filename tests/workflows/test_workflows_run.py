"""The workflows, run: each job's `run:` steps in `needs` order, with bash and the environment GitHub
gives them, against the local ground (AWS running real tasks, the registry behind ECR, local GitHub).

- release.yml on a pushed tag: staging then production run the version, GitHub has the successful
  deployments and the release, and the job summary shows version, digest, URL and the gantt chart;
- release.yml failing after the push, then re-run ("Re-run failed jobs", "Re-run all jobs") to success,
  with no rebuild; a cancelled release whose rollout is stopped and recorded;
- rollback.yml dispatched with inputs: the environment runs the earlier version again, deployed from
  that version's tag (its own settings and templates);
- lint.yml on a pull request: passes on the project and comments the template changes; fails at
  `synth --check` when a template is stale and at `lint` when a template is broken.

Identity as on GitHub and AWS: the runner machine has no AWS credentials, only the way to the local
AWS (AWS_ENDPOINT_URL). configure-aws-credentials runs as the real action does: the job's ID token
(its event, ref and environment) from ACTIONS_ID_TOKEN_REQUEST_URL, AssumeRoleWithWebIdentity on the
local STS (which checks the token and the role's trust policy), and only that session for the later
steps; `vars.AWS_DEPLOY_ROLE_ARN` is each GitHub environment's own deploy role. A tag-push job
without `environment:` is refused at that step.

Other `uses:` steps are not run (actions/checkout's effect is the workspace this test prepares, a git
repository whose tags are the released versions; a checkout with `path` clones its `ref` from there).
Three `run:` texts are not run either, each checked to be exactly the documented command (see
SUBSTITUTED below).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from actions_runner import (
    BUILTIN_ACTIONS,
    Contexts,
    Event,
    Runner,
    WorkflowError,
    clean_environ,
    condition,
    dispatch_inputs,
    is_triggered,
    load,
)
from botocore.exceptions import ClientError

from tests.projects import STORY_BAKES, STORY_TIME_SCALE
from tests.workflows.workflow_env import (
    REPOSITORY,
    ROOT,
    WORKFLOWS,
    checkout_action,
    copy_committed,
    machine_env,
    pipeline_cli,
)

pytestmark = [pytest.mark.slow, pytest.mark.story]

APP = "iris-classifier"

# `run:` texts this runner checks and does not execute, and why.
#  - `make setup` installs Debian packages, the venv and checkov: this test suite runs from exactly
#    that setup, and the workspace links its .venv and .tools, as the step would have produced them.
#  - `make test` runs the test suite: this test is part of it (running it here would recurse).
#  - the locked install (requirements/runtime.lock with --require-hashes, then the package with
#    --no-deps) needs the package index; its product, `pipeline` (and `python`) on PATH, is the
#    project's .venv/bin, which `make setup` installed from the same locks (tests/test_locks.py).
SUBSTITUTED_LINT = {
    "make setup": "covered by the test suite itself: it runs from the setup `make setup` made; the workspace links .venv and .tools",
    "make test": "covered by the test suite itself: this test is part of `make test`",
}
SUBSTITUTED_INSTALL = {
    "python -m pip install --require-hashes --no-deps -r requirements/runtime.lock -r requirements/build.lock\n"
    "python -m pip install --no-deps --no-build-isolation .": "offline here: `pipeline` on PATH is the project's .venv/bin, installed from the same locks",
}


def aws_client(ground: Any, service: str) -> Any:
    return ground.aws.client(service)


def running_version(ground: Any, environment: str) -> str:
    stack = aws_client(ground, "cloudformation").describe_stacks(StackName=f"{APP}-service-{environment}")["Stacks"][0]
    return {p["ParameterKey"]: p.get("ParameterValue") for p in stack["Parameters"]}["Version"]


def toml_dump(table: dict[str, Any], prefix: str = "") -> str:
    """Enough TOML for pipeline.toml: strings, numbers, booleans, lists of those, nested tables."""

    def scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, str):
            return json.dumps(value)
        if isinstance(value, list):
            return "[" + ", ".join(scalar(v) for v in value) + "]"
        raise TypeError(f"cannot write {value!r} as TOML")

    lines = [f"{json.dumps(k)} = {scalar(v)}" for k, v in table.items() if not isinstance(v, dict)]
    out = ("\n".join(lines) + "\n") if lines else ""
    for key, value in table.items():
        if isinstance(value, dict):
            name = f"{prefix}.{key}" if prefix else key
            out += f"\n[{name}]\n" + toml_dump(value, name)
    return out


# --- the ground and the runner -------------------------------------------------------------------


@pytest.fixture(scope="module")
def ground(buildah_root: Path) -> Iterator[Any]:
    from local_ground.ground import LocalGround

    with LocalGround(github_repository=REPOSITORY, time_scale=STORY_TIME_SCALE) as local:
        yield local


def make_runner(
    ground: Any,
    buildah_root: Path,
    workspace: Path,
    temp: Path,
    substitutions: dict[str, str],
    vars_: dict[str, str],
    environment_vars: dict[str, dict[str, str]] | None = None,
) -> Runner:
    machine = machine_env(ground, buildah_root)
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} & set(machine)
    temp.mkdir(parents=True, exist_ok=True)
    return Runner(
        workspace=workspace,
        temp=temp,
        repository=REPOSITORY,
        api_url=ground.github.base_url,
        token=ground.github.token,
        machine_env=machine,
        vars=vars_,
        environment_vars=environment_vars or {},
        substitutions=substitutions,
        id_token_request=ground.github.id_token_request,
        actions={**BUILTIN_ACTIONS, "actions/checkout": checkout_action(workspace)},
        job_token=ground.github.add_token,  # each job's GITHUB_TOKEN holds only its `permissions:`
    )


# --- release and rollback ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def release_runner(ground: Any, buildah_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """The checkout of a project configured like tests/steps' one (a 2 MB busybox model, HTTP only),
    with its settings file and templates committed, and the account bootstrapped once."""
    workspace = tmp_path_factory.mktemp("release-workspace")
    copy_committed(workspace)
    raw: dict[str, Any] = tomllib.loads((ROOT / "pipeline.toml").read_text())
    raw["image"].update(context="images/model", builder="buildah", dockerfile="Containerfile")
    raw["smoke"].update(path="/cgi-bin/predict", timeout=30)
    raw["environments"]["production"].pop("certificate_arn", None)  # the local load balancer speaks HTTP
    raw["environments"]["production"].update(STORY_BAKES)
    raw["gate"]["path"] = "/cgi-bin/predict"  # production's canary gate, on the stand-in's golden set
    (workspace / raw["gate"]["golden_set"]).write_text(
        '{"request": {"instances": [[5.1, 3.5, 1.4, 0.2]]}, "expected": ["setosa"]}\n' * 4, encoding="utf-8"
    )
    (workspace / "pipeline.toml").write_text(toml_dump(raw), encoding="utf-8")
    shutil.copytree(ROOT / "tests" / "images" / "model", workspace / "images" / "model")
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", workspace / "images" / "model" / "busybox")

    operator = {**machine_env(ground, buildah_root), **ground.environ()}
    pipeline_cli(["synth"], workspace, operator)
    # A repository: release_tag tags its commit, and rollback.yml checks the restored version's tag out.
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "main")
    pipeline_cli(["bootstrap"], workspace, operator)  # once per account, by an operator (README)
    # The variables the README asks for: AWS_REGION for the repository, and each GitHub environment's
    # own deploy role as that environment's AWS_DEPLOY_ROLE_ARN.
    environment_vars = {env: {"AWS_DEPLOY_ROLE_ARN": deploy_role_arn(ground, env)} for env in ("staging", "production")}
    return make_runner(
        ground,
        buildah_root,
        workspace,
        workspace.parent / f"{workspace.name}-runner",
        SUBSTITUTED_INSTALL,
        {"AWS_REGION": "us-east-1"},
        environment_vars,
    )


def deploy_role_arn(ground: Any, environment: str) -> str:
    """DeployRoleArnStaging / DeployRoleArnProduction, outputs of the ci-access stack bootstrap made."""
    outputs = aws_client(ground, "cloudformation").describe_stacks(StackName=f"{APP}-ci-access")["Stacks"][0]["Outputs"]
    key = f"DeployRoleArn{environment.capitalize()}"
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == key)


def credentials_step(job: Any) -> Any:
    return next(s for s in job.steps if s.name.startswith("aws-actions/configure-aws-credentials"))


def release_tag(ground: Any, runner: Runner, tag: str) -> Any:
    git(runner.workspace, "tag", tag)
    ground.github.create_tag(tag)  # the push
    result = runner.run(WORKFLOWS / "release.yml", Event.tag_push(tag, REPOSITORY))
    assert result.succeeded, result.log()
    return result


@dataclass(frozen=True)
class Released:
    result: Any  # the release.yml run of v1.2.0
    running: dict[str, str]  # environment -> version, read right after that run
    github: dict[str, Any]  # the local GitHub's state right after that run (later runs mark deployments inactive)
    id_tokens: list[dict[str, Any]]  # the claims of the ID tokens the v1.2.0 run's jobs requested


@pytest.fixture(scope="module")
def released(ground: Any, release_runner: Runner) -> Released:
    """Tags v1.1.0 then v1.2.0 pushed and released through release.yml, once for the module."""
    release_tag(ground, release_runner, "v1.1.0")
    earlier = len(ground.github.issued_id_tokens())  # tokens other tests' runs asked for before
    result = release_tag(ground, release_runner, "v1.2.0")
    running = {env: running_version(ground, env) for env in ("staging", "production")}
    return Released(result, running, ground.github.state(), ground.github.issued_id_tokens()[earlier:])


def test_a_pushed_tag_releases_to_staging_then_production(ground: Any, released: Released) -> None:
    result = released.result
    assert [j.job_id for j in result.jobs.values()] == ["staging", "production"]
    assert (result.jobs["staging"].environment, result.jobs["production"].environment) == ("staging", "production")
    for job in result.jobs.values():
        statuses = [s.status for s in job.steps]
        install = statuses.index("substituted")
        credentials = job.steps.index(credentials_step(job))
        assert install < credentials, "the lock is installed before the AWS role is assumed"
        assert statuses[credentials] == "success", job.steps[credentials]
        assert statuses[-1] == "success", job.steps  # the release itself
        others = statuses[:install] + statuses[install + 1 : credentials] + statuses[credentials + 1 : -1]
        assert set(others) == {"skipped"}  # the other uses: steps
        # Each job ran with its own environment's deploy role, and only with it.
        role = f"{APP}-ci-deploy-{job.environment}"
        assert f"assumed-role/{role}/GitHubActions" in job.steps[credentials].output, job.steps[credentials]
    assert released.running == {"staging": "1.2.0", "production": "1.2.0"}
    # The ID tokens the jobs asked for: GitHub's claims for a tag push in each environment.
    tokens = [t for t in released.id_tokens if t["ref"] == "refs/tags/v1.2.0"]
    assert [(t["sub"], t["aud"], t.get("environment")) for t in tokens] == [
        (f"repo:{REPOSITORY}:environment:staging", "sts.amazonaws.com", "staging"),
        (f"repo:{REPOSITORY}:environment:production", "sts.amazonaws.com", "production"),
    ]
    assert {(t["event_name"], t["job_workflow_ref"]) for t in tokens} == {
        ("push", f"{REPOSITORY}/.github/workflows/release.yml@refs/tags/v1.2.0")
    }

    github = released.github
    for environment in ("staging", "production"):
        ours = [
            d
            for d in github["deployments"]
            if d["environment"] == environment and d["payload"].get("version") == "1.2.0"
        ]
        assert len(ours) == 1 and ours[0]["ref"] == "v1.2.0", ours
        assert ours[0]["statuses"][-1]["state"] == "success", ours[0]["statuses"]
    releases = {r["tag_name"]: r for r in github["releases"]}
    assert set(releases) == {"v1.1.0", "v1.2.0"}, "the production job creates the GitHub release"
    staging_digest = next(
        d["payload"]["digest"]
        for d in github["deployments"]
        if d["environment"] == "staging" and d["payload"].get("version") == "1.2.0"
    )
    assert staging_digest in releases["v1.2.0"]["body"]

    for job in result.jobs.values():
        summary = job.summary
        assert "`1.2.0`" in summary, summary
        assert f"`{staging_digest}`" in summary, "production promotes the digest staging verified"
        assert "| url | http://" in summary, summary
        assert "```mermaid\ngantt\n" in summary, summary
        assert summary.count("```") == 2, summary
        # environment.url comes from the url `pipeline release` wrote to $GITHUB_OUTPUT: the service's URL.
        assert job.environment_url.startswith("http://127."), job.environment_url
        assert f"| url | {job.environment_url} |" in summary, summary


def test_a_tag_that_is_not_a_version_does_not_trigger_a_release() -> None:
    workflow = load(WORKFLOWS / "release.yml")
    assert is_triggered(workflow, Event.tag_push("v1.2.0", REPOSITORY))
    assert not is_triggered(workflow, Event.tag_push("latest", REPOSITORY))
    assert not is_triggered(workflow, Event("push", "refs/heads/main", {}))


def test_rollback_dispatched_with_previous_and_with_a_version(
    ground: Any, release_runner: Runner, released: Released
) -> None:
    rollback = WORKFLOWS / "rollback.yml"
    for environment in ("staging", "production"):  # what this test starts from, whatever ran before it
        if running_version(ground, environment) != "1.2.0":
            result = release_runner.run(
                rollback, Event.dispatch({"environment": environment, "version": "1.2.0"}, REPOSITORY)
            )
            assert result.succeeded, result.log()
    result = release_runner.run(rollback, Event.dispatch({"environment": "staging", "version": "previous"}, REPOSITORY))
    assert result.succeeded, result.log()
    assert result.jobs["rollback"].environment == "staging"
    assert f"assumed-role/{APP}-ci-deploy-staging/GitHubActions" in credentials_step(result.jobs["rollback"]).output
    token = ground.github.issued_id_tokens()[-1]
    assert (token["sub"], token["event_name"], token["ref"]) == (
        f"repo:{REPOSITORY}:environment:staging",
        "workflow_dispatch",
        "refs/heads/main",
    )
    assert running_version(ground, "staging") == "1.1.0"
    assert running_version(ground, "production") == "1.2.0", "the other environment is left alone"
    assert "`1.1.0`" in result.jobs["rollback"].summary and "```mermaid\ngantt\n" in result.jobs["rollback"].summary
    url = result.jobs["rollback"].environment_url  # from `pipeline rollback`'s $GITHUB_OUTPUT
    assert url.startswith("http://127.") and f"| url | {url} |" in result.jobs["rollback"].summary

    result = release_runner.run(rollback, Event.dispatch({"environment": "production", "version": "1.1.0"}, REPOSITORY))
    assert result.succeeded, result.log()
    assert running_version(ground, "production") == "1.1.0"
    newest = max(
        (d for d in ground.github.state()["deployments"] if d["environment"] == "production"), key=lambda d: d["id"]
    )
    assert (newest["payload"]["version"], newest["statuses"][-1]["state"]) == ("1.1.0", "success")

    # A version that was never released has no tag to check out: the job stops there, before any role.
    result = release_runner.run(rollback, Event.dispatch({"environment": "staging", "version": "7.7.7"}, REPOSITORY))
    failed = result.jobs["rollback"].failed_step
    assert failed is not None and failed.name.startswith("actions/checkout@"), result.log()
    assert failed.output == "Error: A branch or tag with the name 'v7.7.7' could not be found"
    assert credentials_step(result.jobs["rollback"]).status == "skipped"
    assert running_version(ground, "staging") == "1.1.0"
    # Not a version at all: the resolve step refuses it with the pipeline's one-line cause.
    result = release_runner.run(rollback, Event.dispatch({"environment": "staging", "version": "v1;x"}, REPOSITORY))
    failed = result.jobs["rollback"].failed_step
    assert failed is not None and failed.name.startswith("Resolve the version to restore"), result.log()
    assert "is not a release version" in failed.output


def ecr_digest(ground: Any, version: str) -> str:
    found = aws_client(ground, "ecr").describe_images(repositoryName=APP, imageIds=[{"imageTag": version}])
    return str(found["imageDetails"][0]["imageDigest"])


def records(ground: Any, environment: str, version: str) -> list[dict[str, Any]]:
    """The local GitHub's deployments of `version` to `environment`, oldest first."""
    return [
        d
        for d in ground.github.state()["deployments"]
        if d["environment"] == environment and d["payload"].get("version") == version
    ]


def release_output(job: Any) -> str:
    return str(job.steps[-1].output)


def test_a_release_that_failed_after_the_push_is_re_run_to_success(
    ground: Any, release_runner: Runner, released: Released
) -> None:
    """Staging fails after the push (GitHub answers 500 when the deployment is recorded): the image is in
    ECR and nothing was deployed. "Re-run failed jobs" deploys that digest, no build, then production."""
    workflow, event = WORKFLOWS / "release.yml", Event.tag_push("v1.4.0", REPOSITORY)
    git(release_runner.workspace, "tag", "v1.4.0")
    ground.github.create_tag("v1.4.0")
    ground.github.fail_next(500, "POST")  # the staging job's first write: recording its deployment
    first = release_runner.run(workflow, event)
    staging = first.jobs["staging"]
    assert (staging.status, first.jobs["production"].status) == ("failure", "skipped"), first.log()
    assert "GitHub answered 500 while creating a deployment of 1.4.0" in release_output(staging)
    digest = ecr_digest(ground, "1.4.0")
    assert f"pushed {APP}:1.4.0 as {digest}" in release_output(staging)

    second = release_runner.rerun(workflow, event, first, failed_only=True)
    assert second.succeeded, second.log()
    assert (second.run_id, second.attempt) == (first.run_id, 2)
    output = release_output(second.jobs["staging"])
    assert f"1.4.0 is already in ECR as {digest} (manifest checked)" in output
    assert "==> build" not in output and "==> push" not in output
    assert {env: running_version(ground, env) for env in ("staging", "production")} == {
        "staging": "1.4.0",
        "production": "1.4.0",
    }
    for environment in ("staging", "production"):
        [record] = records(ground, environment, "1.4.0")
        assert (record["payload"]["digest"], record["statuses"][-1]["state"]) == (digest, "success")


def test_re_run_all_jobs_after_production_failed_skips_what_staging_released(
    ground: Any, release_runner: Runner, released: Released
) -> None:
    """Production fails (GitHub answers 500 when its deployment is recorded). "Re-run all jobs" runs the
    staging job again: the version is live there from this run's first attempt, so nothing to do."""
    workflow, event = WORKFLOWS / "release.yml", Event.tag_push("v1.5.0", REPOSITORY)
    git(release_runner.workspace, "tag", "v1.5.0")
    ground.github.create_tag("v1.5.0")

    def fail_production(job_id: str) -> None:
        if job_id == "production":
            ground.github.fail_next(500, "POST")

    release_runner.before_job = fail_production
    try:
        first = release_runner.run(workflow, event)
    finally:
        release_runner.before_job = None
    assert (first.jobs["staging"].status, first.jobs["production"].status) == ("success", "failure"), first.log()

    second = release_runner.rerun(workflow, event, first, failed_only=False)
    assert second.succeeded, second.log()
    [staging] = records(ground, "staging", "1.5.0")
    assert "was released to staging by an earlier attempt of this run" in release_output(second.jobs["staging"])
    assert f"(GitHub deployment #{staging['id']}): nothing to do" in release_output(second.jobs["staging"])
    [production] = records(ground, "production", "1.5.0")
    assert production["statuses"][-1]["state"] == "success"
    assert "v1.5.0" in {r["tag_name"] for r in ground.github.state()["releases"]}

    # Another run of the same tag (not a re-run) is refused: the version released to staging before.
    third = release_runner.run(workflow, event)
    refused = third.jobs["staging"]
    assert refused.status == "failure" and third.jobs["production"].status == "skipped"
    assert f"was released to staging (GitHub deployment #{staging['id']}); tags are immutable" in (
        release_output(refused)
    )
    assert len(records(ground, "staging", "1.5.0")) == 1


def committed_on_branch(ground: Any, workspace: Path, operator: dict[str, str], tag: str, change: Any) -> None:
    """Commit `change` to the settings (templates synthesized) on a branch of its own, tag it; main stays."""
    git(workspace, "checkout", "-q", "-b", f"for-{tag}")
    raw: dict[str, Any] = tomllib.loads((workspace / "pipeline.toml").read_text())
    change(raw)
    (workspace / "pipeline.toml").write_text(toml_dump(raw), encoding="utf-8")
    pipeline_cli(["synth"], workspace, operator)
    git(workspace, "commit", "-q", "-am", f"settings of {tag}")
    git(workspace, "tag", tag)
    ground.github.create_tag(tag)


def deployed_template(ground: Any, environment: str) -> Any:
    return aws_client(ground, "cloudformation").get_template(StackName=f"{APP}-service-{environment}")["TemplateBody"]


def test_rollback_deploys_the_restored_versions_templates(
    ground: Any, buildah_root: Path, release_runner: Runner, released: Released
) -> None:
    """v1.6.0 was tagged on a commit whose staging scales to 4 tasks (main: 3). Dispatched from main,
    the rollback to 1.6.0 deploys v1.6.0's templates, not main's."""
    workspace = release_runner.workspace
    operator = {**machine_env(ground, buildah_root), **ground.environ()}
    main_template = (workspace / "cloudformation" / "service-staging.yaml").read_text()

    def scale_to_4(raw: dict[str, Any]) -> None:
        raw["environments"]["staging"]["max_count"] = 4

    try:
        committed_on_branch(ground, workspace, operator, "v1.6.0", scale_to_4)
        tagged_template = (workspace / "cloudformation" / "service-staging.yaml").read_text()
        pipeline_cli(["release", "v1.6.0", "--env", "staging"], workspace, operator)
    finally:
        git(workspace, "checkout", "-q", "main")
    assert tagged_template != main_template and "MaxCapacity: 4" in tagged_template

    rollback = WORKFLOWS / "rollback.yml"
    result = release_runner.run(rollback, Event.dispatch({"environment": "staging", "version": "1.2.0"}, REPOSITORY))
    assert result.succeeded, result.log()
    assert deployed_template(ground, "staging") == main_template, "v1.2.0 was tagged on main"

    result = release_runner.run(rollback, Event.dispatch({"environment": "staging", "version": "1.6.0"}, REPOSITORY))
    assert result.succeeded, result.log()
    job = result.jobs["rollback"]
    assert job.step("Resolve the version to restore (the pipeline validates both inputs)").output.strip() == "1.6.0"
    checkouts = [s for s in job.steps if s.name.startswith("actions/checkout@")]
    assert [(s.status, s.output) for s in checkouts] == [
        ("skipped", ""),
        ("success", "checked out v1.6.0 into restored"),
    ]
    assert running_version(ground, "staging") == "1.6.0"
    assert deployed_template(ground, "staging") == tagged_template


def rolling_out(job_id: str, output: str) -> bool:
    """The staging job's stack update reached the ECS service: its deployment rolls out."""
    return job_id == "staging" and any(
        "UPDATE_IN_PROGRESS" in line and "Service [AWS::ECS::Service]" in line for line in output.splitlines()
    )


def test_a_cancelled_release_stops_its_rollout_and_records_it(
    ground: Any, buildah_root: Path, release_runner: Runner, released: Released
) -> None:
    """Cancel while staging's rollout is in flight (v1.7.0's tasks start 5 s late): the runner sends
    SIGINT, the pipeline stops the ECS deployment with a rollback, records `error`, exits 130, and
    CloudFormation brings back what ran before."""
    workspace = release_runner.workspace
    operator = {**machine_env(ground, buildah_root), **ground.environ()}
    before = running_version(ground, "staging")

    def start_late(raw: dict[str, Any]) -> None:
        raw["environments"]["staging"]["variables"]["START_DELAY"] = "5"

    release_runner.cancel = rolling_out
    try:
        committed_on_branch(ground, workspace, operator, "v1.7.0", start_late)
        result = release_runner.run(WORKFLOWS / "release.yml", Event.tag_push("v1.7.0", REPOSITORY))
    finally:
        release_runner.cancel = None
        git(workspace, "checkout", "-q", "main")
    staging = result.jobs["staging"]
    assert (staging.status, result.jobs["production"].status) == ("cancelled", "skipped"), result.log()
    step = staging.steps[-1]
    assert (step.status, step.exit_code) == ("cancelled", 130), step.output
    assert "with a rollback to the revision that ran before" in step.output, step.output
    [record] = records(ground, "staging", "1.7.0")
    assert record["statuses"][-1]["state"] == "error"
    assert "stopped ECS deployment" in record["statuses"][-1]["description"]

    stack = aws_client(ground, "cloudformation")
    deadline = time.monotonic() + 120
    while (status := stack.describe_stacks(StackName=f"{APP}-service-staging")["Stacks"][0]["StackStatus"]).endswith(
        "_IN_PROGRESS"
    ):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status == "UPDATE_ROLLBACK_COMPLETE"
    assert running_version(ground, "staging") == before


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_a_tag_push_job_without_environment_is_refused_a_deploy_role(
    ground: Any, release_runner: Runner, tmp_path: Path, environment: str
) -> None:
    """What anyone with push access could commit: release.yml's staging job without `environment:`
    (so without the environment's protection rules), naming a deploy role outright. Its token's
    subject is the tag's ref, which no deploy role trusts: STS refuses and the job stops there."""
    if ground.identity is None:
        pytest.skip("identity enforcement is off (LOCAL_GROUND_IDENTITY=off): moto's STS checks no token")
    workflow = load(WORKFLOWS / "release.yml")
    job = workflow["jobs"]["staging"]
    del job["environment"]
    workflow["jobs"] = {"staging": job}
    step = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@"))
    step["with"]["role-to-assume"] = deploy_role_arn(ground, environment)
    path = tmp_path / "release.yml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False), encoding="utf-8")

    ground.github.create_tag("v1.2.0")
    result = release_runner.run(path, Event.tag_push("v1.2.0", REPOSITORY))
    staging = result.jobs["staging"]
    assert staging.status == "failure" and staging.environment == ""
    failed = staging.failed_step
    assert failed is not None and failed is credentials_step(staging), result.log()
    assert failed.output == (
        "Error: Could not assume role with OIDC: Not authorized to perform sts:AssumeRoleWithWebIdentity (AccessDenied)"
    )
    assert staging.step("Release to staging").status == "skipped"
    token = ground.github.issued_id_tokens()[-1]
    assert token["sub"] == f"repo:{REPOSITORY}:ref:refs/tags/v1.2.0" and "environment" not in token
    assert token["aud"] == "sts.amazonaws.com"


def test_dispatch_inputs_are_checked_as_github_does() -> None:
    workflow = load(WORKFLOWS / "rollback.yml")
    assert dispatch_inputs(workflow, {"environment": "staging"}) == {"environment": "staging", "version": "previous"}
    with pytest.raises(WorkflowError, match="not one of"):
        dispatch_inputs(workflow, {"environment": "qa", "version": "previous"})
    with pytest.raises(WorkflowError, match="required"):
        dispatch_inputs(workflow, {"version": "1.0.0"})


# --- pull requests ---------------------------------------------------------------------------------


def git(workspace: Path, *args: str) -> str:
    env = {
        **clean_environ(),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(["git", *args], cwd=workspace, env=env, check=True, capture_output=True, text=True).stdout


def pull_request_workspace(root: Path, change: Any) -> Path:
    """A checkout of a pull request: main is the committed project (also as origin/main, as
    fetch-depth: 0 gives it), the PR branch has `change` applied and committed. The .venv and .tools
    that `make setup` would make are links to this checkout's."""
    workspace = root / "checkout"
    workspace.mkdir()
    copy_committed(workspace)
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "main")
    git(workspace, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(workspace, "checkout", "-q", "-b", "feature")
    change(workspace)
    git(workspace, "commit", "-q", "-am", "the change")
    (workspace / ".venv").symlink_to(ROOT / ".venv")
    if (ROOT / ".tools").exists():
        (workspace / ".tools").symlink_to(ROOT / ".tools")
    return workspace


def edit_settings(old: str, new: str) -> Any:
    def change(workspace: Path) -> None:
        settings = workspace / "pipeline.toml"
        text = settings.read_text()
        assert old in text
        settings.write_text(text.replace(old, new, 1))
        pipeline_cli(["synth"], workspace, clean_environ())  # the PR commits its templates

    return change


def pull_request_role_arn(ground: Any) -> str:
    """PullRequestRoleArn, an output of the ci-access stack bootstrap made: the repository variable
    AWS_PULL_REQUEST_ROLE_ARN (README)."""
    outputs = aws_client(ground, "cloudformation").describe_stacks(StackName=f"{APP}-ci-access")["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "PullRequestRoleArn")


def run_lint(ground: Any, buildah_root: Path, tmp_path: Path, change: Any) -> tuple[Any, Path, int]:
    """lint.yml on a pull request of this repository; the account is bootstrapped (release_runner)."""
    workspace = pull_request_workspace(tmp_path, change)
    number = ground.github.open_pull_request(title="Change the service", head="feature", base="main")
    variables = {"AWS_REGION": "us-east-1", "AWS_PULL_REQUEST_ROLE_ARN": pull_request_role_arn(ground)}
    runner = make_runner(ground, buildah_root, workspace, tmp_path / "runner", SUBSTITUTED_LINT, variables)
    result = runner.run(WORKFLOWS / "lint.yml", Event.pull_request(number, REPOSITORY))
    return result, workspace, number


def comments_on(ground: Any, number: int) -> list[str]:
    return [c["body"] for c in ground.github.state()["comments"] if c["issue_url"].endswith(f"/issues/{number}")]


def test_lint_passes_on_a_pull_request_and_comments_its_template_changes(
    ground: Any, release_runner: Runner, buildah_root: Path, tmp_path: Path
) -> None:
    staging_max = "desired_count = 1\nmin_count = 1\nmax_count = 3\n"
    result, workspace, number = run_lint(
        ground, buildah_root, tmp_path, edit_settings(staging_max, staging_max.replace("3", "4"))
    )
    assert result.succeeded, result.log()
    templates = result.jobs["templates"]
    assert [(s.name, s.status) for s in templates.steps if s.status != "skipped"] == [
        ("Install the pipeline and its linters", "substituted"),
        ("Templates match the code", "success"),
        ("Lint templates (cfn-lint, checkov) and workflows (zizmor)", "success"),
        ("Comment the template changes", "success"),
    ]
    assert [(s.name, s.status) for s in result.jobs["tests"].steps if s.status != "skipped"] == [
        ("Test suite", "substituted")
    ]
    makefile = (ROOT / "Makefile").read_text()
    assert "\nsetup: " in makefile and "\ntest: " in makefile, "the substituted commands are the Makefile's targets"
    lint_output = templates.step("Lint templates (cfn-lint, checkov) and workflows (zizmor)").output
    assert "cfn-lint: 4 template(s), no findings" in lint_output
    assert "workflows: 4 file(s)" in lint_output
    assert json.loads((workspace / "cfn-lint.sarif").read_text())["runs"], "the SARIF the upload step sends"
    comments = comments_on(ground, number)
    assert len(comments) == 1 and "service-staging.yaml" in comments[0], comments
    assert "origin/main" in comments[0]


def test_lint_fails_at_synth_check_when_a_template_is_stale(
    ground: Any, release_runner: Runner, buildah_root: Path, tmp_path: Path
) -> None:
    def hand_edit(workspace: Path) -> None:
        template = workspace / "cloudformation" / "service-staging.yaml"
        text = template.read_text()
        assert "MaxCapacity: 3" in text
        template.write_text(text.replace("MaxCapacity: 3", "MaxCapacity: 5", 1))

    result, _, number = run_lint(ground, buildah_root, tmp_path, hand_edit)
    templates = result.jobs["templates"]
    assert templates.status == "failure"
    failed = templates.failed_step
    assert failed is not None and failed.name == "Templates match the code", result.log()
    assert failed.exit_code != 0 and "stale templates" in failed.output and "service-staging.yaml" in failed.output
    assert templates.step("Lint templates (cfn-lint, checkov) and workflows (zizmor)").status == "skipped"
    assert templates.step("Comment the template changes").status == "skipped"
    assert comments_on(ground, number) == []
    assert result.jobs["tests"].status == "success", "the other job runs on its own"


def test_lint_fails_at_lint_when_a_template_is_broken(
    ground: Any, release_runner: Runner, buildah_root: Path, tmp_path: Path
) -> None:
    # Settings validation lets a health check path of any length through; the ALB allows 1024 characters.
    too_long = "/" + "h" * 1100
    result, workspace, number = run_lint(
        ground,
        buildah_root,
        tmp_path,
        edit_settings('health_check_path = "/health"', f'health_check_path = "{too_long}"'),
    )
    templates = result.jobs["templates"]
    assert templates.step("Templates match the code").status == "success"
    failed = templates.failed_step
    assert failed is not None and failed.name == "Lint templates (cfn-lint, checkov) and workflows (zizmor)", (
        result.log()
    )
    assert "E3033" in failed.output and "cfn-lint found problems" in failed.output
    assert "E3033" in (workspace / "cfn-lint.sarif").read_text(), "the findings reach the always() upload step"
    assert templates.step("Comment the template changes").status == "skipped"
    assert comments_on(ground, number) == []


PREVIEWS = ["Preview the change set (staging)", "Preview the change set (production)"]


def test_a_pull_request_previews_each_environments_change_set_with_the_pull_request_role(
    ground: Any, released: Released, buildah_root: Path, tmp_path: Path
) -> None:
    """The preview job assumes the pull-request role as configure-aws-credentials does (a pull_request
    ID token), and `pipeline diff` creates, describes and deletes a change set per deployed environment
    with it. The same role is refused ExecuteChangeSet, in AWS's AccessDenied shape."""
    # To 5: no version this module deploys has it (v1.6.0 runs staging with 4), so there is a change to show.
    staging_max = "desired_count = 1\nmin_count = 1\nmax_count = 3\n"
    result, _, _ = run_lint(ground, buildah_root, tmp_path, edit_settings(staging_max, staging_max.replace("3", "5")))
    preview = result.jobs["preview"]
    assert preview.status == "success", result.log()
    assert preview.step("Pull requests from forks get no AWS role").status == "skipped"
    credentials = credentials_step(preview)
    assert f"assumed-role/{APP}-ci-pull-request/GitHubActions" in credentials.output, credentials
    staging, production = (preview.step(name) for name in PREVIEWS)
    assert staging.status == production.status == "success", result.log()
    assert f"{APP}-service-staging" in staging.output and "Modify" in staging.output, staging.output
    token = ground.github.issued_id_tokens()[-1]
    assert (token["sub"], token["event_name"]) == (f"repo:{REPOSITORY}:pull_request", "pull_request")
    cf = aws_client(ground, "cloudformation")
    for stack in (f"{APP}-service-staging", f"{APP}-service-production"):
        left = [
            c
            for c in cf.list_change_sets(StackName=stack)["Summaries"]
            if c.get("StackName") == stack and c.get("ExecutionStatus") == "AVAILABLE"
        ]
        assert left == [], "the preview leaves no change set behind"

    # The pull-request role itself, as the job held it: a change set it creates, it cannot execute.
    session = pull_request_session(ground)
    pr_cf = session.client("cloudformation", endpoint_url=ground.environ()["AWS_ENDPOINT_URL"])
    stack = f"{APP}-service-staging"
    deployed = cf.describe_stacks(StackName=stack)["Stacks"][0]
    body = cf.get_template(StackName=stack)["TemplateBody"]
    created = pr_cf.create_change_set(
        StackName=stack,
        ChangeSetName="pr-preview",
        TemplateBody=body if isinstance(body, str) else json.dumps(body),
        Parameters=[
            {"ParameterKey": p["ParameterKey"], "ParameterValue": p["ParameterValue"]} for p in deployed["Parameters"]
        ],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        RoleARN=execution_role_arn(ground, "staging"),
    )
    if ground.identity is None:
        return  # LOCAL_GROUND_IDENTITY=off: nothing refuses the role; the preview itself is what ran above
    with pytest.raises(ClientError) as caught:
        pr_cf.execute_change_set(ChangeSetName=created["Id"])
    error = caught.value.response["Error"]
    assert (error["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert re.fullmatch(
        f"User: arn:aws:sts::123456789012:assumed-role/{APP}-ci-pull-request/pr-preview is not authorized to "
        f"perform: cloudformation:ExecuteChangeSet on resource: arn:aws:cloudformation:us-east-1:123456789012:"
        f"stack/{stack}/[0-9a-f-]+ because no identity-based policy allows the cloudformation:ExecuteChangeSet action",
        error["Message"],
    ), error["Message"]
    pr_cf.delete_change_set(ChangeSetName=created["Id"])


def pull_request_session(ground: Any) -> boto3.session.Session:
    token = ground.github.id_token(event_name="pull_request", ref="refs/pull/1/merge", environment=None)
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=ground.environ()["AWS_ENDPOINT_URL"])
    creds = sts.assume_role_with_web_identity(
        RoleArn=pull_request_role_arn(ground), RoleSessionName="pr-preview", WebIdentityToken=token
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name="us-east-1",
    )


def execution_role_arn(ground: Any, environment: str) -> str:
    outputs = aws_client(ground, "cloudformation").describe_stacks(StackName=f"{APP}-ci-access")["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == f"ExecutionRoleArn{environment.capitalize()}")


def test_a_pull_request_from_a_fork_gets_a_notice_and_no_role(
    ground: Any, release_runner: Runner, buildah_root: Path, tmp_path: Path
) -> None:
    def touch_readme(workspace: Path) -> None:
        readme = workspace / "README.md"
        readme.write_text(readme.read_text() + "\n")

    workspace = pull_request_workspace(tmp_path, touch_readme)
    variables = {"AWS_REGION": "us-east-1", "AWS_PULL_REQUEST_ROLE_ARN": pull_request_role_arn(ground)}
    runner = make_runner(ground, buildah_root, workspace, tmp_path / "runner", SUBSTITUTED_LINT, variables)
    before = len(ground.github.issued_id_tokens())
    fork = Event.pull_request(7, REPOSITORY, head_repository="someone/iris-classifier")
    preview = runner.run(WORKFLOWS / "lint.yml", fork).jobs["preview"]
    notice = preview.step("Pull requests from forks get no AWS role")
    assert notice.status == "success" and "::notice title=change-set preview::" in notice.output
    assert {s.status for s in preview.steps if s is not notice} == {"skipped"}
    assert len(ground.github.issued_id_tokens()) == before, "no step asked for an ID token"


def test_the_comment_step_is_skipped_for_a_fork_and_unknown_expressions_fail_loudly() -> None:
    step_if = "github.event.pull_request.head.repo.full_name == github.repository"

    def contexts(head_repository: str) -> Contexts:
        event = Event.pull_request(7, REPOSITORY, head_repository=head_repository)
        github = {
            "token": "t",
            "repository": REPOSITORY,
            "base_ref": "main",
            "head_ref": "feature",
            "ref": event.ref,
            "ref_name": event.ref_name,
            "event_name": event.name,
        }
        return Contexts(github, event.payload, {}, {}, {})

    assert condition(step_if, contexts(REPOSITORY), job_failed=False)
    assert condition(step_if, contexts("ACME/Iris-Classifier"), job_failed=False), (
        "GitHub compares strings ignoring case"
    )
    assert not condition(step_if, contexts("someone/iris-classifier"), job_failed=False)
    assert not condition(step_if, contexts(REPOSITORY), job_failed=True)
    assert condition("always()", contexts(REPOSITORY), job_failed=True)
    for unknown in (
        "github.actor",
        "contains(github.ref, 'v')",
        "inputs.x && inputs.y",
        "github.event.sender.login",
        "vars.NOT_SET",
    ):
        with pytest.raises(WorkflowError):
            condition(unknown, contexts(REPOSITORY), job_failed=False)
