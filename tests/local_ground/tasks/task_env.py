"""What the real-task tests share besides their fixtures: the Env around one LocalAWS running tasks, the
images they release, and bounded polling. A module of its own (not conftest.py), so the tests import
it by its package name whichever other conftest pytest loaded last."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from local_ground.aws import LocalAWS
from local_ground.ecr_bridge import EcrRegistryBridge
from local_ground.tasks import EcsTasksRunForReal
from pipeline.images import buildah

SCALE = 0.02  # AWS durations x 0.02: a 10 s health check interval is 0.2 s
ROOT = Path(__file__).resolve().parents[3]
IMAGES = ROOT / "tests" / "images"
REPOSITORY = "iris-classifier"  # what the registry stack creates (settings.app.name)
SERVICE_STACK = "iris-classifier-staging"


def build_variant(kind: str, tag: str, index: str) -> str:
    """A test image whose / answers `index`, so a client can tell which release served it."""
    from tests.images import build as pipeline_test_images

    with tempfile.TemporaryDirectory(prefix="task-image-") as scratch:
        context = Path(scratch) / "context"
        shutil.copytree(IMAGES / kind, context)
        if (context / "www").is_dir():
            (context / "www" / "index.html").write_text(index)
        shutil.copy2(pipeline_test_images.static_busybox(), context / "busybox")
        buildah.build(context, context / "Containerfile", tag)
    return tag


class Env:
    """One LocalAWS with real tasks, its clients, and helpers to push and deploy."""

    def __init__(self, aws: LocalAWS, bridge: EcrRegistryBridge, tasks: EcsTasksRunForReal) -> None:
        self.aws, self.bridge, self.tasks = aws, bridge, tasks
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """One client per service for the Env's life: waits poll through these many times a second."""
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.aws.endpoint_url,
                region_name=self.aws.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self._clients[service]

    def push(self, local_tag: str, tag: str, repository: str = REPOSITORY) -> str:
        """Push through the bridge; returns the ECR image URI pinned by digest, as the pipeline deploys it."""
        username, password = self.bridge.login()  # a fresh ECR token, as the pipeline gets one per push
        digest = buildah.push(
            local_tag,
            f"{self.bridge.host}/{repository}:{tag}",
            username,
            password,
            tls_verify=False,
            retry_delay_s=0.1,
        )
        uri = self.client("ecr").describe_repositories(repositoryNames=[repository])["repositories"][0]["repositoryUri"]
        return f"{uri}@{digest}"

    # --- stacks -----------------------------------------------------------------------------

    def create_registry_stack(self) -> None:
        self.client("cloudformation").create_stack(
            StackName="iris-classifier-registry", TemplateBody=(ROOT / "cloudformation" / "registry.yaml").read_text()
        )

    def create_service_stack(self, image_uri: str, version: str = "1.0.0") -> dict[str, str]:
        """The staging service stack (desired 1) running `image_uri`."""
        self.client("cloudformation").create_stack(
            StackName=SERVICE_STACK,
            TemplateBody=(ROOT / "cloudformation" / "service-staging.yaml").read_text(),
            Parameters=[
                {"ParameterKey": "ImageUri", "ParameterValue": image_uri},
                {"ParameterKey": "Version", "ParameterValue": version},
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        return self.outputs()

    def outputs(self) -> dict[str, str]:
        stack = self.client("cloudformation").describe_stacks(StackName=SERVICE_STACK)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def update_image(self, image_uri: str, version: str) -> None:
        """Release through a change set, as the deploy step does; returns once it executes."""
        cloudformation = self.client("cloudformation")
        name = f"release-{version.replace('.', '-')}"
        cloudformation.create_change_set(
            StackName=SERVICE_STACK,
            ChangeSetName=name,
            ChangeSetType="UPDATE",
            UsePreviousTemplate=True,
            Parameters=[
                {"ParameterKey": "ImageUri", "ParameterValue": image_uri},
                {"ParameterKey": "Version", "ParameterValue": version},
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        cloudformation.execute_change_set(StackName=SERVICE_STACK, ChangeSetName=name)

    def stack_status(self) -> str:
        return str(self.client("cloudformation").describe_stacks(StackName=SERVICE_STACK)["Stacks"][0]["StackStatus"])

    def service(self) -> dict[str, Any]:
        outputs = self.outputs()
        return dict(
            self.client("ecs").describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]])[
                "services"
            ][0]
        )

    def tasks_of(self, desired_status: str) -> list[dict[str, Any]]:
        outputs, ecs = self.outputs(), self.client("ecs")
        arns = ecs.list_tasks(
            cluster=outputs["ClusterName"], serviceName=outputs["ServiceName"], desiredStatus=desired_status
        )["taskArns"]
        return list(ecs.describe_tasks(cluster=outputs["ClusterName"], tasks=arns)["tasks"]) if arns else []

    def target_states(self) -> list[str]:
        described = self.client("elbv2").describe_target_health(TargetGroupArn=self.outputs()["TargetGroupArn"])
        return [d["TargetHealth"]["State"] for d in described["TargetHealthDescriptions"]]


def released(env: Env, images: dict[str, str], name: str = "v1") -> dict[str, str]:
    """The service stack created with `name` and its first deployment COMPLETED."""
    env.create_registry_stack()
    outputs = env.create_service_stack(env.push(images[name], "1.0.0"))
    wait_for(lambda: env.service()["deployments"][0]["rolloutState"] == "COMPLETED")
    return outputs


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Bounded polling of real processes and servers."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        time.sleep(interval)
