"""The throwaway Docker engine itself, and the Buildx path's build and `docker run` pre-push check on it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from local_ground.docker_engine import DockerEngine
from pipeline.config import Settings
from pipeline.errors import BuildError
from pipeline.steps.build import BuildahBuilder, BuildxBuilder, pick_builder
from pipeline.steps.image_check import check_image
from tests.images.build import IMAGES_DIR, static_busybox
from tests.projects import Project, make_project

pytestmark = pytest.mark.slow


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True)


def buildx_build(name: str, tag: str, scratch: Path) -> str:
    """tests/images/<name> built by the pipeline's Buildx builder into the engine."""
    context = scratch / name
    shutil.copytree(IMAGES_DIR / name, context)
    shutil.copy2(static_busybox(), context / "busybox")
    return BuildxBuilder().build(context, context / "Containerfile", tag, {}, lambda _line: None)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("contexts")


def test_the_engine_is_fresh_and_leaves_the_host_network_alone(docker_engine: DockerEngine) -> None:
    info = json.loads(docker("info", "--format", "{{json .}}").stdout)
    assert info["DockerRootDir"] == str(docker_engine.root / "data")
    assert info["Driver"] == "overlay2"
    networks = docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "bridge" not in networks, "--bridge=none: no docker0, no NAT rules"
    assert docker("buildx", "version").stdout.startswith("github.com/docker/buildx 0.13.1")


def test_a_stopped_engine_leaves_nothing(docker_engine: DockerEngine, scratch: Path) -> None:
    """A second engine with a running container (shim, netns mount) stopped by PID: nothing remains."""
    run_docker = Path("/run/docker")
    before = {p for p in run_docker.rglob("*")} if run_docker.exists() else None
    engine = DockerEngine()
    with engine:
        env = {**os.environ, **engine.environ()}
        context = scratch / "second"
        shutil.copytree(IMAGES_DIR / "healthy", context)
        shutil.copy2(static_busybox(), context / "busybox")
        subprocess.run(
            ["docker", "buildx", "build", "--load", "--file", str(context / "Containerfile"), "--tag", "localhost/leftover:1", str(context)],
            env=env, capture_output=True, check=True,
        )  # fmt: skip
        subprocess.run(
            ["docker", "run", "--detach", "--network", "host", "--env", "PORT=1", "localhost/leftover:1"],
            env=env, capture_output=True, check=True,
        )  # fmt: skip
        assert any(line.startswith("process") for line in engine.leftovers()), "a running engine is seen"
        assert any(line.startswith("mount") for line in engine.leftovers())
    assert engine.leftovers() == []
    assert not engine.root.exists()
    after = {p for p in run_docker.rglob("*")} if run_docker.exists() else None
    assert after == before, "/run/docker is as it was"


def test_an_engine_that_cannot_start_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.errors import LocalEnvironmentError

    engine = DockerEngine(storage_driver="no-such-driver")
    with pytest.raises(
        LocalEnvironmentError,
        match="dockerd exited with code 1 while starting: failed to start daemon: error initializing graphdriver",
    ):
        engine.__enter__()
    assert engine.leftovers() == []


def test_auto_picks_buildx_when_the_engine_answers(
    settings: Settings, docker_environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    auto = replace(settings, image=replace(settings.image, builder="auto"))
    assert isinstance(pick_builder(auto), BuildxBuilder)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert isinstance(pick_builder(auto), BuildahBuilder), "no engine answering: buildah"


def test_the_docker_run_check_passes_a_healthy_image(project: Project, scratch: Path) -> None:
    context = project.root / "images" / "model"
    image = BuildxBuilder().build(context, context / "Containerfile", "localhost/check-model:1", {}, lambda _l: None)
    lines: list[str] = []
    result = check_image(project.settings, image, lines.append, runtime="docker", timeout=20)
    assert result.prediction["predictions"] == ["setosa"]
    assert lines[-1].startswith("checked localhost/check-model:1: healthy after")
    assert docker("ps", "--all", "--quiet").stdout == "", "the checked container is removed"


def test_the_docker_run_check_refuses_an_image_that_never_becomes_healthy(project: Project, scratch: Path) -> None:
    image = buildx_build("unhealthy", "localhost/check-unhealthy:1", scratch)
    with pytest.raises(BuildError, match="did not answer 200 within 2s"):
        check_image(project.settings, image, lambda _l: None, runtime="docker", timeout=2)
    assert docker("ps", "--all", "--quiet").stdout == ""


def test_the_docker_run_check_refuses_an_image_that_exits(project: Project, scratch: Path) -> None:
    image = buildx_build("crashing", "localhost/check-crashing:1", scratch)
    with pytest.raises(BuildError, match=r"exited with code 3 before becoming healthy.*model failed to load"):
        check_image(project.settings, image, lambda _l: None, runtime="docker", timeout=10)
    assert docker("ps", "--all", "--quiet").stdout == ""


@pytest.mark.parametrize(("platform", "architecture"), [("linux/amd64", "amd64"), ("linux/arm64", "arm64")])
def test_buildx_builds_for_the_settings_platform(
    docker_engine: DockerEngine, tmp_path: Path, platform: str, architecture: str
) -> None:
    """image.architecture reaches Buildx as --platform; FROM scratch runs nothing, so either CPU builds here."""
    (tmp_path / "Containerfile").write_text("FROM scratch\nCOPY Containerfile /Containerfile\n")
    tag = f"localhost/platform-{architecture}:1"
    BuildxBuilder(platform=platform).build(tmp_path, tmp_path / "Containerfile", tag, {}, lambda _line: None)
    assert docker("image", "inspect", "--format", "{{.Architecture}}", tag).stdout.strip() == architecture
