"""The small rules the real-task runner applies, checked without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_ground.tasks.containers import ProcessRegistry
from local_ground.tasks.runtime import Runtime
from local_ground.tasks.service import failure_threshold
from local_ground.tasks.targets import TargetGroups, matches
from local_ground.tasks.timescale import TimeScale


class Front:
    host, username, password = "127.0.0.1:5000", "AWS", "secret"


@pytest.mark.parametrize(("desired", "threshold"), [(1, 3), (4, 3), (7, 4), (10, 5), (1000, 200)])
def test_circuit_breaker_threshold_is_half_the_desired_count_between_3_and_200(desired: int, threshold: int) -> None:
    assert failure_threshold(desired) == threshold


@pytest.mark.parametrize(
    ("matcher", "status", "ok"),
    [("200", 200, True), ("200", 404, False), ("200-299", 204, True), ("200,302", 302, True)],
)
def test_health_check_matcher(matcher: str, status: int, ok: bool) -> None:
    assert matches(matcher, status) is ok


def test_time_scale_shrinks_aws_durations() -> None:
    assert TimeScale(0.02).seconds(300) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        TimeScale(0)


def test_ecr_images_are_pulled_through_the_bridge(tmp_path: Path) -> None:
    runtime = Runtime(TimeScale(1), TargetGroups(), ProcessRegistry(), Front(), tmp_path, "123456789012", "us-east-1")
    pull = runtime.pull_of("123456789012.dkr.ecr.us-east-1.amazonaws.com/iris-classifier@sha256:" + "a" * 64)
    assert pull.reference == "127.0.0.1:5000/iris-classifier@sha256:" + "a" * 64
    assert (pull.creds, pull.tls_verify) == ("AWS:secret", False)
    assert runtime.pull_of("localhost/task-test:v1").reference == "localhost/task-test:v1"


@pytest.mark.parametrize(
    "image",
    [
        "210987654321.dkr.ecr.us-east-1.amazonaws.com/iris-classifier@sha256:" + "a" * 64,  # another account
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris-classifier@sha256:" + "a" * 64,  # another region
    ],
)
def test_an_ecr_image_of_another_account_or_region_cannot_be_pulled_here(tmp_path: Path, image: str) -> None:
    runtime = Runtime(TimeScale(1), TargetGroups(), ProcessRegistry(), Front(), tmp_path, "123456789012", "us-east-1")
    pull = runtime.pull_of(image)
    assert pull.error is not None and pull.error.startswith("CannotPullContainerError: ")
    assert "not found" in pull.error
