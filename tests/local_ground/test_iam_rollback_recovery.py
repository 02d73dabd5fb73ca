"""UPDATE_ROLLBACK_FAILED and the release engine's recovery, with identity enforced: a stack update whose
rollback cannot restore the service ends UPDATE_ROLLBACK_FAILED, and the next deploy, acting only with the
staging deploy role GitHub Actions assumes, continues the rollback and then updates. Its own ground (the
fixtures of test_iam_identity, one instance per module), so the staging stack is this module's alone."""

from __future__ import annotations

import time
from typing import Any

import boto3

from pipeline import config
from pipeline.templates import names
from tests.client_loop import BackgroundLoop
from tests.local_ground import test_iam_identity as identity
from tests.local_ground.test_iam_identity import MANIFEST, REGION, assume, job, pipeline_cli

# The identity ground's module-scoped fixtures, instantiated once more for this module.
ground = identity.ground
settings = identity.settings
bootstrapped = identity.bootstrapped


class EcsOutcomes(BackgroundLoop):
    """Stands in for ECS on a ground without real tasks: each time the stack is in the next status of `script`
    and the service has a new PRIMARY deployment in progress, that deployment gets the outcome (the circuit
    breaker's FAILED, or steady)."""

    def __init__(self, ground: Any, stack: str, script: list[tuple[str, str]]) -> None:
        super().__init__()
        self.ground, self.stack, self.script = ground, stack, list(script)
        self.done: list[tuple[str, str]] = []
        self.seen: list[str] = []  # the stack statuses seen, for the failure message
        self.acted: set[str] = set()  # deployment ids given an outcome
        self.error: BaseException | None = None

    def _run(self) -> None:
        cf = boto3.client("cloudformation", region_name=REGION)
        ecs = boto3.client("ecs", region_name=REGION)
        try:
            while self.script and not self._stop.is_set():
                status, outcome = self.script[0]
                stack = cf.describe_stacks(StackName=self.stack)["Stacks"][0]
                if not self.seen or self.seen[-1] != stack["StackStatus"]:
                    self.seen.append(stack["StackStatus"])
                if stack["StackStatus"] != status:
                    time.sleep(0.02)
                    continue
                outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
                cluster, service = outputs["ClusterName"], outputs["ServiceName"]
                described = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
                primary = next(d for d in described["deployments"] if d["status"] == "PRIMARY")
                if primary["rolloutState"] != "IN_PROGRESS" or primary["id"] in self.acted:
                    time.sleep(0.02)  # the update has not started its deployment yet
                    continue
                self.acted.add(primary["id"])
                if outcome == "fail":
                    self.ground.aws.fail_deployment(cluster, service)
                else:
                    self.ground.aws.complete_deployment(cluster, service)
                self.done.append(self.script.pop(0))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error


def test_a_rollback_that_cannot_restore_the_service_is_continued_by_the_next_deploy(
    bootstrapped: Any, settings: config.Settings
) -> None:
    """The restoring deployment fails too: UPDATE_ROLLBACK_FAILED. The next deploy, with only the staging
    deploy role's credentials, continues the rollback (cloudformation:ContinueUpdateRollback, CloudFormation
    acting as the execution role), waits for it, then updates the stack."""
    ecr = boto3.client("ecr", region_name=REGION)
    for number, tag in enumerate(("8.0.0", "8.1.0", "8.2.0")):
        ecr.put_image(
            repositoryName=settings.app.name, imageManifest=MANIFEST.replace("2,", f"{10 + number},"), imageTag=tag
        )
    stack = names.service_stack(settings, "staging")
    cf = boto3.client("cloudformation", region_name=REGION)
    session = assume(bootstrapped, names.deploy_role_arn(settings, "staging"), **job("staging"))
    first = pipeline_cli(["deploy", "staging", "8.0.0"], session)
    assert first.returncode == 0, first.stderr + first.stdout

    # 8.1.0's deployment fails (circuit breaker), and so does the deployment restoring 8.0.0.
    with EcsOutcomes(
        bootstrapped, stack, [("UPDATE_IN_PROGRESS", "fail"), ("UPDATE_ROLLBACK_IN_PROGRESS", "fail")]
    ) as ecs:
        failed = pipeline_cli(["deploy", "staging", "8.1.0"], session)
    assert ecs.error is None and not ecs.script, (ecs.seen, failed.stdout, failed.stderr)
    assert failed.returncode != 0
    assert "update failed, stack is UPDATE_ROLLBACK_FAILED" in failed.stderr, failed.stderr
    assert cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_FAILED"

    # The engine's recovery path: continue the rollback (it completes once 8.0.0 is steady), then update.
    script = [("UPDATE_ROLLBACK_IN_PROGRESS", "complete"), ("UPDATE_IN_PROGRESS", "complete")]
    with EcsOutcomes(bootstrapped, stack, script) as ecs:
        recovered = pipeline_cli(["deploy", "staging", "8.2.0"], session)
    assert ecs.error is None and not ecs.script, ecs.done
    assert recovered.returncode == 0, recovered.stderr + recovered.stdout
    assert f"{stack}: UPDATE_ROLLBACK_FAILED; continuing the rollback first" in recovered.stdout
    assert f"{stack}: runs 8.2.0" in recovered.stdout
    described = cf.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "UPDATE_COMPLETE"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}["Version"] == "8.2.0"
    trail = [
        e["ResourceStatus"]
        for e in reversed(cf.describe_stack_events(StackName=stack)["StackEvents"])
        if e["LogicalResourceId"] == stack
    ]
    assert "UPDATE_ROLLBACK_FAILED" in trail and trail[-1] == "UPDATE_COMPLETE"
    after_failed = trail[trail.index("UPDATE_ROLLBACK_FAILED") + 1 :]
    continued = after_failed[: after_failed.index("UPDATE_IN_PROGRESS")]  # before the recovering deploy's update
    assert continued[0] == "UPDATE_ROLLBACK_IN_PROGRESS" and continued[-1] == "UPDATE_ROLLBACK_COMPLETE"
