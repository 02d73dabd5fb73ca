"""Fixtures for the local registry and ECR bridge tests: moto in-process, a session buildah store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.images import build as test_images


@pytest.fixture(scope="session")
def _moto_for_registry_tests() -> Iterator[str]:
    """moto's server in a thread of this process (the bridge writes its backends); its URL.

    Stand-in until the shared LocalAWS context manager (local_ground/aws.py) takes over.
    """
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ecr(_moto_for_registry_tests: str) -> Any:
    return boto3.client(
        "ecr",
        endpoint_url=_moto_for_registry_tests,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="session")
def buildah_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One buildah store for the session, so tests never touch /var/lib/containers."""
    with test_images.buildah_store(tmp_path_factory.mktemp("buildah")) as root:
        yield root


@pytest.fixture(scope="session")
def healthy_image(buildah_store: Path) -> Any:
    return test_images.build_test_image("healthy")


@pytest.fixture(scope="session")
def unhealthy_image(buildah_store: Path) -> Any:
    return test_images.build_test_image("unhealthy")


@pytest.fixture()
def local_aws() -> Iterator[Any]:
    """A fresh LocalAWS (moto server + our moto extensions) for one test.

    Note: moto's backends are process-wide, so its reset on exit also clears what any other
    in-process moto server holds.
    """
    from local_ground.aws import LocalAWS

    with LocalAWS() as aws:
        yield aws
