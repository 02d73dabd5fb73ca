"""A throwaway Docker engine (local_ground.docker_engine) for the Buildx path GitHub runners take.

One engine per test module, stopped when the module ends: other tests that count this process's
children (no task or check may outlive its test) never see it. Starting one takes well under a
second. When it cannot start, its tests fail with dockerd's own reason: `make setup` installs what it
needs, so nothing here skips.
The environment points at it only in these tests' modules, so elsewhere `builder = "auto"` still
finds no engine and picks buildah.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from local_ground.docker_engine import DockerEngine
from tests.projects import STORY_TIME_SCALE


@pytest.fixture(scope="module")
def docker_engine() -> Iterator[DockerEngine]:
    with DockerEngine() as engine:
        yield engine
    left = engine.leftovers()
    assert left == [], f"the Docker engine left {left}"


@pytest.fixture(scope="module", autouse=True)
def docker_environ(docker_engine: DockerEngine) -> Iterator[dict[str, str]]:
    values = docker_engine.environ()
    with mock.patch.dict(os.environ, values):
        yield values


@pytest.fixture(scope="module")
def ground(buildah_root: Path, docker_environ: dict[str, str]) -> Iterator[Any]:
    """The local AWS, registry behind ECR and GitHub; tasks run with buildah from what Buildx pushed."""
    from local_ground.ground import LocalGround

    with LocalGround(time_scale=STORY_TIME_SCALE) as local:
        with mock.patch.dict(os.environ, local.environ()):
            yield local
