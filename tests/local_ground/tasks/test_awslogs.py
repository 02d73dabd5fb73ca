"""The awslogs driver of the local tasks: a container's output lines become events of its stream
PREFIX/CONTAINER/TASK-ID in CloudWatch Logs, the stream made before the container runs; a group that
does not exist fails the task (unless awslogs-create-group), as on Fargate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_ground.aws import LocalAWS
from local_ground.moto_extensions import all_extensions
from local_ground.tasks.awslogs import AwsLogsShipper, AwsLogsTarget
from pipeline.images.container import ContainerError
from tests.local_ground.tasks.task_env import Env, wait_for

DEFINITION = {
    "name": "model",
    "logConfiguration": {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": "/ecs/app-staging",
            "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "model",
        },
    },
}


@pytest.fixture
def aws() -> Iterator[LocalAWS]:
    with LocalAWS(extensions=all_extensions()) as local:
        yield local


def client(aws: LocalAWS, service: str) -> Any:
    return aws.client(service)


def test_the_target_comes_from_the_container_definition() -> None:
    target = AwsLogsTarget.of(DEFINITION, "0123abcd", "123456789012", "eu-west-1")
    assert target == AwsLogsTarget("123456789012", "us-east-1", "/ecs/app-staging", "model/model/0123abcd", False)
    assert AwsLogsTarget.of({"name": "model"}, "0123abcd", "123456789012", "us-east-1") is None


def test_lines_are_shipped_as_written_and_the_rest_at_stop(aws: LocalAWS, tmp_path: Path) -> None:
    logs = client(aws, "logs")
    logs.create_log_group(logGroupName="/ecs/app-staging")
    output = tmp_path / "task-model.log"
    output.write_bytes(b"")
    shipper = AwsLogsShipper(AwsLogsTarget.of(DEFINITION, "0123abcd", aws.account_id, aws.region), output)  # type: ignore[arg-type]
    shipper.open()
    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/ecs/app-staging")["logStreams"]] == [
        "model/model/0123abcd"
    ]
    shipper.start()

    def messages() -> list[str]:
        events = logs.get_log_events(logGroupName="/ecs/app-staging", logStreamName="model/model/0123abcd")["events"]
        return [e["message"] for e in events]

    with output.open("ab") as out:
        out.write(b"model server 1.0.0 starting\n\nhalf a li")
    wait_for(lambda: messages() == ["model server 1.0.0 starting"], timeout=5)
    with output.open("ab") as out:
        out.write(b"ne, then exit")
    shipper.stop()
    assert messages() == ["model server 1.0.0 starting", "half a line, then exit"]


def test_a_missing_group_fails_the_task_unless_the_driver_may_create_it(aws: LocalAWS, tmp_path: Path) -> None:
    target = AwsLogsTarget.of(DEFINITION, "0123abcd", aws.account_id, aws.region)
    assert target is not None
    with pytest.raises(
        ContainerError,
        match=r"^ResourceInitializationError: failed to validate logger args: .*"
        r"The specified log group does not exist",
    ):
        AwsLogsShipper(target, tmp_path / "out.log").open()
    creating = AwsLogsTarget(target.account_id, target.region, target.group, target.stream, create_group=True)
    AwsLogsShipper(creating, tmp_path / "out.log").open()
    groups = client(aws, "logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/ecs/app-staging"]


def test_a_running_task_writes_to_its_stream(env: Env, images: dict[str, str]) -> None:
    """The service stack's task definition sends the container's output to the stack's log group."""
    from tests.local_ground.tasks.task_env import released

    outputs = released(env, images)
    task_id = env.tasks_of("RUNNING")[0]["taskArn"].rsplit("/", 1)[-1]
    logs = env.client("logs")

    def lines() -> list[str]:
        found = logs.filter_log_events(logGroupName=outputs["LogGroupName"], logStreamNamePrefix="model/model/")
        return [f"{e['logStreamName']} {e['message']}" for e in found["events"]]

    # busybox httpd -v prints a line per response: the target group's health checks make some.
    assert wait_for(lambda: [line for line in lines() if line.endswith("response:200")], timeout=30)
    assert all(line.startswith(f"model/model/{task_id} ") for line in lines())
