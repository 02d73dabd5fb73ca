"""The release engine's ground: local AWS running real tasks, the registry behind ECR, local GitHub,
and a project folder whose model image is a 2 MB busybox stand-in (tests/projects.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tests.projects import STORY_TIME_SCALE, Project, make_project


@pytest.fixture(scope="module")
def ground(buildah_root: Path) -> Iterator[Any]:
    from local_ground.ground import LocalGround

    with LocalGround(time_scale=STORY_TIME_SCALE) as local:
        with mock.patch.dict(os.environ, local.environ()):
            yield local


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A plain moto server (no local-ground extensions) for step tests on one AWS API."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
