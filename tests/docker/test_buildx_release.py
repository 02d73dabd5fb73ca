"""The Buildx path end to end on the local ground: build in the Docker engine, log in to ECR (the local
registry behind the ECR bridge), push, and the digest the engine reports is the one ECR records; then a
whole release with `builder = "auto"`, which picks Buildx because the engine answers."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest

from pipeline.aws import ecr as ecr_api
from pipeline.clock import WallClock
from pipeline.github import GitHubRecorder
from pipeline.steps.build import BuildxBuilder
from pipeline.steps.context import Context
from pipeline.steps.deploy import Deployer
from pipeline.steps.history import status
from pipeline.steps.push import push_image
from pipeline.steps.release import ReleaseOutcome, release
from pipeline.templates import stack_specs
from tests.projects import Project, make_project
from tests.steps.test_secrets_off_command_lines import CommandLineWatch

pytestmark = pytest.mark.slow


def aws(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    made = make_project(tmp_path_factory.mktemp("project"))
    return replace(made, settings=replace(made.settings, image=replace(made.settings.image, builder="auto")))


@pytest.fixture(scope="module")
def bootstrapped(ground: Any, project: Project) -> Project:
    ground.github.create_tag("v1.0.0")
    deployer = Deployer(aws("cloudformation"), WallClock(), lambda _line: None, poll=0.05)
    for spec in stack_specs(project.settings):
        if spec.environment is None:
            deployer.deploy(spec.stack_name, (project.root / "cloudformation" / spec.file_name).read_text(), {})
    return project


def test_buildx_push_by_digest_lands_in_ecr_with_the_engines_digest(bootstrapped: Project) -> None:
    context = bootstrapped.root / "images" / "model"
    builder = BuildxBuilder()
    local = builder.build(context, context / "Containerfile", "localhost/pushed:0.9.0", {}, lambda _l: None)
    ecr = aws("ecr")
    repository = bootstrapped.settings.app.name
    lines: list[str] = []
    pushed = push_image(ecr, builder, local, repository, "0.9.0", lines.append)

    registry = ecr_api.login(ecr)
    host = registry.host
    engine_digests = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", local],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    assert engine_digests == [f"{host}/{repository}@{pushed.digest}"]
    in_ecr = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": "0.9.0"}])["imageDetails"][0]
    assert in_ecr["imageDigest"] == pushed.digest
    # The digest is what deploys use: it pulls by digest into an engine that no longer has the image.
    subprocess.run(["docker", "image", "rm", local, f"{host}/{repository}:0.9.0"], capture_output=True, check=True)
    # The push logged in to a private DOCKER_CONFIG it removed afterwards; a puller logs in on its own.
    login = ["docker", "login", "--username", registry.username, "--password-stdin", host]
    subprocess.run(login, input=registry.password, capture_output=True, text=True, check=True)
    pulled = subprocess.run(["docker", "pull", f"{host}/{repository}@{pushed.digest}"], capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr
    assert f"Digest: {pushed.digest}" in pulled.stdout


@dataclass
class BuildxRelease:
    report: Any
    lines: list[str]
    leaks: list[tuple[str, str]]
    logged_in: bool


@pytest.fixture(scope="module")
def buildx_release(ground: Any, bootstrapped: Project) -> BuildxRelease:
    """One release of v1.0.0 through Buildx, watched for secrets; the tests below read what it did."""
    lines: list[str] = []
    ctx = Context(
        bootstrapped.settings,
        WallClock(),
        lines.append,
        github=GitHubRecorder.from_environ(os.environ),
        poll=0.05,
    )
    ecr = boto3.client("ecr", region_name="us-east-1")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    secrets = {
        "ECR token": token,
        "registry password": base64.b64decode(token).decode().split(":", 1)[1],
        "GitHub token": os.environ["GITHUB_TOKEN"],
    }
    # What any local user reads in /proc/PID/cmdline; every ECR token issued meanwhile is looked for too.
    with CommandLineWatch(secrets, ground.bridge.issued_passwords) as watch:
        report = release(ctx, "staging", "v1.0.0")
    logged_in = any(seen[0] == "docker" and "login" in seen for seen in watch.seen)
    return BuildxRelease(report, lines, watch.leaks, logged_in)


def test_a_release_through_buildx_on_the_local_ground(bootstrapped: Project, buildx_release: BuildxRelease) -> None:
    report, lines = buildx_release.report, buildx_release.lines
    assert not buildx_release.leaks, f"secrets on command lines: {buildx_release.leaks}"
    assert buildx_release.logged_in, "the watch saw docker login"
    assert report.outcome is ReleaseOutcome.RELEASED
    assert [p.name for p in report.phases] == ["build", "check", "push", "deploy", "roll", "smoke"]
    assert any(line.startswith("building localhost/iris-classifier:1.0.0 with buildx") for line in lines), lines
    assert any(line.startswith("checked localhost/iris-classifier:1.0.0: healthy after") for line in lines)
    now = status(Context(bootstrapped.settings, WallClock(), lines.append), "staging")
    assert (now.version, now.digest) == ("1.0.0", report.digest)
    assert now.running == now.desired > 0, "the tasks run the image Buildx built, pulled from the registry"


def test_the_engine_holds_no_container_after_the_release(buildx_release: BuildxRelease) -> None:
    listed = subprocess.run(["docker", "ps", "--all", "--quiet"], capture_output=True, text=True, check=True)
    assert listed.stdout == ""


def test_tasks_pulled_the_pushed_digest(bootstrapped: Project, buildx_release: BuildxRelease) -> None:
    definition = aws("ecs").describe_task_definition(taskDefinition=f"{bootstrapped.settings.app.name}-staging")
    image = definition["taskDefinition"]["containerDefinitions"][0]["image"]
    tagged = aws("ecr").describe_images(repositoryName=bootstrapped.settings.app.name, imageIds=[{"imageTag": "1.0.0"}])
    assert image.endswith("@" + tagged["imageDetails"][0]["imageDigest"])
