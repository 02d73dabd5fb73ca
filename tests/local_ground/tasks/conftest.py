"""Fixtures for real-task tests: a registry behind the ECR bridge, LocalAWS running tasks for real,
busybox images pushed through the bridge, and the service stack from cloudformation/ (the helpers
they use are in task_env.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_ground.aws import LocalAWS
from local_ground.ecr_bridge import EcrRegistryBridge
from local_ground.moto_extensions import all_extensions
from local_ground.registry import LocalRegistry
from local_ground.tasks import EcsTasksRunForReal
from tests.local_ground.tasks.task_env import SCALE, Env, build_variant


@pytest.fixture(scope="session")
def images(buildah_store: Path) -> dict[str, str]:
    """Local tags of the images the tests release: two healthy versions, unhealthy, crashing, silent."""
    return {
        "v1": build_variant("healthy", "localhost/task-test:v1", "v1\n"),
        "v2": build_variant("healthy", "localhost/task-test:v2", "v2\n"),
        "unhealthy": build_variant("unhealthy", "localhost/task-test:unhealthy", "bad\n"),
        "crashing": build_variant("crashing", "localhost/task-test:crashing", ""),
        "silent": build_variant("silent", "localhost/task-test:silent", ""),
    }


@pytest.fixture(scope="session")
def registry(buildah_store: Path) -> Iterator[LocalRegistry]:
    with LocalRegistry() as local:
        yield local


@pytest.fixture()
def env(registry: LocalRegistry) -> Iterator[Env]:
    bridge = EcrRegistryBridge(registry)
    tasks = EcsTasksRunForReal(bridge, time_scale=SCALE)
    with LocalAWS(extensions=[*all_extensions(), bridge, tasks]) as aws:
        yield Env(aws, bridge, tasks)
        # End the tasks first: LocalAWS.stop joins every thread started since start() for up to
        # 1 s each, and the task runner's threads (scheduler, probes, proxy) live until uninstall.
        tasks.uninstall()
    assert tasks.live_task_pids() == []
