"""A release whose tasks pass their health checks but answer 5xx is rolled back by the deployment
alarm during the bake: the ALB proxy reports HTTPCode_Target_5XX_Count, CloudWatch evaluates the
stack's alarm, ECS fails the deployment and CloudFormation rolls the update back."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from pipeline.images import buildah
from tests.client_loop import ClientLoop
from tests.local_ground.tasks.task_env import IMAGES, Env, released, wait_for

FAIL_CGI = (
    '#!/bin/busybox sh\nprintf "Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nboom\\n"\n'
)


@pytest.fixture(scope="session")
def erroring(images: dict[str, str]) -> str:
    """The healthy image plus /cgi-bin/fail, which answers 500: healthy to the ALB, 5xx to clients."""
    from tests.images import build as pipeline_test_images

    tag = "localhost/task-test:erroring"
    with tempfile.TemporaryDirectory(prefix="task-image-") as scratch:
        context = Path(scratch) / "context"
        shutil.copytree(IMAGES / "healthy", context)
        script = context / "www" / "cgi-bin" / "fail"
        script.parent.mkdir()
        script.write_text(FAIL_CGI)
        script.chmod(0o755)
        shutil.copy2(pipeline_test_images.static_busybox(), context / "busybox")
        buildah.build(context, context / "Containerfile", tag)
    return tag


def test_a_release_answering_5xx_during_the_bake_is_rolled_back_by_its_alarm(
    env: Env, images: dict[str, str], erroring: str
) -> None:
    outputs = released(env, images)
    bad = env.push(erroring, "2.0.0")
    with ClientLoop(outputs["ServiceUrl"] + "/cgi-bin/fail") as client:
        env.update_image(bad, "2.0.0")
        wait_for(lambda: not env.stack_status().endswith("_IN_PROGRESS"), timeout=60)
    assert env.stack_status() == "UPDATE_ROLLBACK_COMPLETE"
    assert any(status == 500 for _, status, _ in client.answers)  # the new tasks did serve, with errors
    service = env.service()
    assert service["taskDefinition"].endswith(":1")
    messages = [e["message"] for e in service["events"]]
    assert any("deployment failed: alarm(s) detected in ALARM state: " in m for m in messages)
    events = env.client("cloudformation").describe_stack_events(StackName="iris-classifier-staging")["StackEvents"]
    reasons = [e.get("ResourceStatusReason", "") for e in events if e["ResourceStatus"] == "UPDATE_FAILED"]
    assert any("ECS Deployment Alarms were triggered" in r for r in reasons)
