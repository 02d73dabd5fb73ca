"""Chaos: `pipeline release` killed with SIGKILL after the push, mid-deploy and mid-rollout, then run again
(as "Re-run failed jobs" does); and stopped with SIGTERM mid-rollout (a cancelled or timed-out job).

Each time the environment ends on exactly one known version: the stack's Version, the one ECS deployment
(COMPLETED, running that version's digest), no service deployment still rolling, and GitHub's records
agree (nothing left in_progress, the newest success is what runs, one digest per version, never rebuilt).

The pipeline runs as a subprocess (as on a runner) against the local ground in this process. Staging's
tasks start 4 s late (`START_DELAY`, an environment variable of the test image), so a rollout is in
flight long enough to be caught there."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline import config
from pipeline.github import GitHubRecorder
from tests.projects import Project, make_git_project

pytestmark = pytest.mark.slow

PIPELINE = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "pipeline")
ENV = "staging"


def aws(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1")


def pipeline(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PIPELINE, *args], cwd=root, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def project(ground: Any, tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("chaos")
    make_git_project(root)
    settings = root / "pipeline.toml"
    text = settings.read_text()
    for old, new in (
        ("[environments.staging.variables]\n", '[environments.staging.variables]\nSTART_DELAY = "4"\n'),
        # Its own stacks and repository: moto's backends are process-wide, and a module that ran before
        # in this worker on a plain moto server may have left stacks under the project's usual name.
        ('name = "iris-classifier"', 'name = "chaos-model"'),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    settings.write_text(text)
    for step in (("synth",), ("bootstrap",)):
        done = pipeline(root, *step)
        assert done.returncode == 0, done.stdout + done.stderr
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    for version in ("1.0.0", "2.0.0", "2.1.0", "2.2.0", "3.0.0"):  # tagged in git and pushed, at the checkout
        subprocess.run(["git", "-C", str(root), "tag", f"v{version}"], check=True)
        ground.github.create_tag(f"v{version}", head.stdout.strip())
    done = pipeline(root, "release", "v1.0.0", "--env", ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    return Project(root, config.load(settings))


def started_and_stopped(
    root: Path, version: str, marker: Callable[[str], bool], how: signal.Signals
) -> tuple[int, str]:
    """Run `pipeline release vVERSION`; send `how` the moment it prints a line `marker` accepts."""
    process = subprocess.Popen(
        [PIPELINE, "release", f"v{version}", "--env", ENV],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        if marker(line):
            process.send_signal(how)
            break
    seen.extend(process.stdout)
    process.wait(timeout=120)
    assert any(marker(line) for line in seen), "".join(seen)
    return process.returncode, "".join(seen)


def pushed(line: str) -> bool:
    return line.startswith("pushed ")


def deploying(line: str) -> bool:
    return "executing update" in line


def rolling_out(line: str) -> bool:  # CloudFormation updated the service: its ECS deployment rolls
    return "UPDATE_IN_PROGRESS" in line and "Service [AWS::ECS::Service]" in line


def settled(project: Project) -> str:
    """The stack's status once CloudFormation finished what it was doing (it carries on by itself)."""
    deadline = time.monotonic() + 180
    while True:
        stack = aws("cloudformation").describe_stacks(StackName=f"{project.settings.app.name}-service-{ENV}")
        status = str(stack["Stacks"][0]["StackStatus"])
        if not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def ecr_digest(project: Project, version: str) -> str:
    found = aws("ecr").describe_images(repositoryName=project.settings.app.name, imageIds=[{"imageTag": version}])
    return str(found["imageDetails"][0]["imageDigest"])


def runs_exactly(project: Project, version: str) -> None:
    """The environment ends on `version` alone, and GitHub's records agree."""
    stack = aws("cloudformation").describe_stacks(StackName=f"{project.settings.app.name}-service-{ENV}")["Stacks"][0]
    assert stack["StackStatus"] in ("UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"), stack["StackStatus"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    digest = ecr_digest(project, version)
    assert parameters["Version"] == version and parameters["ImageUri"].endswith(f"@{digest}")
    ecs = aws("ecs")
    service = ecs.describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]])["services"][0]
    [deployment] = service["deployments"]
    assert (deployment["status"], deployment["rolloutState"]) == ("PRIMARY", "COMPLETED"), service["deployments"]
    definition = ecs.describe_task_definition(taskDefinition=deployment["taskDefinition"])["taskDefinition"]
    assert definition["containerDefinitions"][0]["image"].endswith(f"@{digest}")
    assert deployment["runningCount"] == deployment["desiredCount"] > 0
    rolling = ecs.list_service_deployments(
        cluster=outputs["ClusterName"],
        service=outputs["ServiceName"],
        status=["PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"],
    )["serviceDeployments"]
    assert rolling == []

    github = GitHubRecorder.from_environ(os.environ)
    assert github is not None
    records = github.deployments(ENV, 100)
    assert [r for r in records if r.state in ("pending", "queued", "in_progress", None)] == []
    newest_success = next(r for r in records if r.state == "success")
    assert (newest_success.version, newest_success.digest) == (version, digest)
    for record in records:
        assert record.digest == ecr_digest(project, record.version), "one digest per version: never rebuilt"


@pytest.mark.parametrize(
    ("version", "marker"),
    [("2.0.0", pushed), ("2.1.0", deploying), ("2.2.0", rolling_out)],
    ids=["after-the-push", "mid-deploy", "mid-rollout"],
)
def test_a_killed_release_run_again_ends_on_one_known_version(
    project: Project, version: str, marker: Callable[[str], bool]
) -> None:
    code, output = started_and_stopped(project.root, version, marker, signal.SIGKILL)
    assert code == -signal.SIGKILL, output
    digest = ecr_digest(project, version)  # the kill came after the push: the image is there

    again = pipeline(project.root, "release", f"v{version}", "--env", ENV)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{version} is already in ECR as {digest} (manifest checked)" in again.stdout
    assert "==> build" not in again.stdout, "never rebuilt"
    if marker is not pushed:  # the killed run had recorded its deployment: the re-run finishes it
        assert "by a run that ended without finishing it (killed or timed out): marked error" in again.stdout
    runs_exactly(project, version)
    github = GitHubRecorder.from_environ(os.environ)
    assert github is not None
    states = [r.state for r in github.deployments(ENV, 100) if r.version == version]
    assert states[0] == "success" and set(states[1:]) <= {"error"}, states


def test_sigterm_mid_rollout_stops_the_deployment_and_records_it(project: Project) -> None:
    before = aws("cloudformation").describe_stacks(StackName=f"{project.settings.app.name}-service-{ENV}")
    running = {p["ParameterKey"]: p["ParameterValue"] for p in before["Stacks"][0]["Parameters"]}["Version"]
    code, output = started_and_stopped(project.root, "3.0.0", rolling_out, signal.SIGTERM)
    assert code == 143, output
    assert "with a rollback to the revision that ran before" in output, output
    assert "interrupted" in output
    github = GitHubRecorder.from_environ(os.environ)
    assert github is not None
    newest = github.deployments(ENV, 1)[0]
    assert (newest.version, newest.state) == ("3.0.0", "error")
    # ECS rolls back, so the stack update fails and CloudFormation restores what ran before.
    assert settled(project) == "UPDATE_ROLLBACK_COMPLETE"
    runs_exactly(project, running)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in before["Stacks"][0]["Outputs"]}
    stopped = aws("ecs").list_service_deployments(cluster=outputs["ClusterName"], service=outputs["ServiceName"])
    assert stopped["serviceDeployments"][0]["status"] == "ROLLBACK_SUCCESSFUL"

    again = pipeline(project.root, "release", "v3.0.0", "--env", ENV)
    assert again.returncode == 0, again.stdout + again.stderr
    runs_exactly(project, "3.0.0")
