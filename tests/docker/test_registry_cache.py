"""The registry layer cache (`--cache-to/--cache-from type=registry`) in ECR, through the local ECR bridge.

It needs the containerd image store: this module runs its own engine, docker.io 26 with
containerd-snapshotter (bookworm's 20.10 cannot export a registry cache). The cache lives in a MUTABLE
repository: every build moves its tag, which an IMMUTABLE repository (the release images') refuses.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

from local_ground.docker_engine import DockerEngine
from pipeline.aws import ecr as ecr_api
from pipeline.steps.build import BuildxBuilder
from tests.images.build import IMAGES_DIR, static_busybox

pytestmark = pytest.mark.slow
CACHE_REPOSITORY = "iris-classifier-build-cache"


@pytest.fixture(scope="module")
def containerd_engine() -> Iterator[DockerEngine]:
    with DockerEngine(containerd_store=True) as engine:
        yield engine
    assert engine.leftovers() == []


@pytest.fixture(scope="module", autouse=True)
def docker_environ(containerd_engine: DockerEngine) -> Iterator[dict[str, str]]:
    values = containerd_engine.environ()
    with mock.patch.dict(os.environ, values):
        yield values


@pytest.fixture(scope="module")
def ground(docker_environ: dict[str, str]) -> Iterator[Any]:
    from local_ground.ground import LocalGround

    with LocalGround(time_scale=0.02, run_tasks=False) as local:
        with mock.patch.dict(os.environ, local.environ()):
            yield local


def build(builder: BuildxBuilder, context: Path, tag: str) -> list[str]:
    lines: list[str] = []
    builder.build(context, context / "Containerfile", tag, {"MODEL_VERSION": "1.0.0"}, lines.append)
    return lines


def test_the_engine_has_the_containerd_image_store(containerd_engine: DockerEngine) -> None:
    info = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}} {{json .DriverStatus}}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert info.startswith("26.1.5") and "io.containerd.snapshotter.v1" in info, info


def test_a_layer_cache_in_ecr_serves_a_build_in_an_empty_engine(ground: Any, tmp_path: Path) -> None:
    ecr = boto3.client("ecr", region_name="us-east-1")
    ecr.create_repository(repositoryName=CACHE_REPOSITORY, imageTagMutability="MUTABLE")
    login = ecr_api.login(ecr)
    subprocess.run(
        ["docker", "login", "--username", login.username, "--password-stdin", login.host],
        input=login.password, capture_output=True, text=True, check=True,
    )  # fmt: skip
    cache_ref = f"{login.host}/{CACHE_REPOSITORY}:buildcache"
    context = tmp_path / "model"
    shutil.copytree(IMAGES_DIR / "model", context)
    shutil.copy2(static_busybox(), context / "busybox")
    builder = BuildxBuilder(cache_ref=cache_ref)

    first = build(builder, context, "localhost/cached:1")
    assert any("writing cache image manifest" in line for line in first), first
    exported = ecr.describe_images(repositoryName=CACHE_REPOSITORY, imageIds=[{"imageTag": "buildcache"}])
    assert exported["imageDetails"][0]["imageManifestMediaType"] == "application/vnd.oci.image.manifest.v1+json"

    # An engine with no local layers and no build cache, as a fresh runner has.
    subprocess.run(["docker", "buildx", "prune", "--all", "--force"], capture_output=True, check=True)
    subprocess.run(["docker", "image", "rm", "localhost/cached:1"], capture_output=True, check=True)
    second = build(builder, context, "localhost/cached:2")
    assert any(f"importing cache manifest from {cache_ref}" in line for line in second), second
    # Every Containerfile step is a cache hit: marked CACHED, or its layer downloaded from the cache.
    steps = {m.group(1): m.group(2) for line in second if (m := re.match(r"  \| (#\d+) \[\d+/\d+\] (.*)", line))}
    assert list(steps.values()) == ["COPY busybox /bin/busybox", "COPY www /www"], second
    for step in steps:
        lines = [line for line in second if line.startswith(f"  | {step} ")]
        hit = any(
            line.endswith(" CACHED") or re.search(r"sha256:[0-9a-f]{64} [\d.]+\w?B / [\d.]+\w?B", line)
            for line in lines
        )
        assert hit, f"{steps[step]} ran instead of coming from the cache: {lines}"


def test_the_ecr_bridge_answers_a_tls_hello_as_a_plain_http_registry(ground: Any) -> None:
    """What lets BuildKit fall back to HTTP: distribution's answer to TLS on its HTTP port, a status line."""
    import socket

    host, port = ground.bridge.host.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 32 + b"\r\n")
        assert connection.recv(64).startswith(b"HTTP/1.0 400 Bad Request\r\n")
