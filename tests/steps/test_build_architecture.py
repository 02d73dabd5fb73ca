"""image.architecture reaches the builders as a platform, and a CPU this machine cannot run is refused
before anything is built (the Dockerfile's RUN steps and the pre-push check execute the image)."""

from __future__ import annotations

import copy
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import config
from pipeline.errors import ConfigError
from pipeline.images import buildah
from pipeline.steps.build import (
    BuildahBuilder,
    BuildxBuilder,
    build_image,
    check_architecture,
    pick_builder,
)
from tests.images import build as test_images

HOST = "ARM64" if platform.machine().lower() in ("aarch64", "arm64") else "X86_64"
OTHER = "X86_64" if HOST == "ARM64" else "ARM64"


def test_the_hosts_own_cpu_needs_no_emulator(tmp_path: Path) -> None:
    check_architecture("X86_64", "x86_64", binfmt=tmp_path)
    check_architecture("ARM64", "aarch64", binfmt=tmp_path)


def test_another_cpu_is_refused_without_an_enabled_binfmt_handler(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        check_architecture("ARM64", "x86_64", binfmt=tmp_path)
    assert caught.value.key == "image.architecture"
    line = caught.value.one_line()
    assert "ARM64 images cannot be built and checked here: this x86_64 machine has no qemu-aarch64 binfmt" in line
    assert "ubuntu-24.04-arm" in line and "\n" not in line
    (tmp_path / "qemu-aarch64").write_text("disabled\ninterpreter /usr/bin/qemu-aarch64-static\n")
    with pytest.raises(ConfigError):
        check_architecture("ARM64", "x86_64", binfmt=tmp_path)
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64-static\n")
    check_architecture("ARM64", "x86_64", binfmt=tmp_path)
    with pytest.raises(ConfigError, match="no qemu-x86_64 binfmt handler"):
        check_architecture("X86_64", "aarch64", binfmt=tmp_path)


def _settings(raw: dict[str, Any], project_root: Path, **image: str) -> config.Settings:
    raw = copy.deepcopy(raw)
    raw["image"].update(image)
    return config.parse(raw, root=project_root)


@pytest.mark.parametrize(("architecture", "target"), [("X86_64", "linux/amd64"), ("ARM64", "linux/arm64")])
def test_the_builder_gets_the_platform(
    raw_settings: dict[str, Any], project_root: Path, architecture: str, target: str
) -> None:
    builder = pick_builder(_settings(raw_settings, project_root, builder="buildah", architecture=architecture))
    assert isinstance(builder, BuildahBuilder) and builder.platform == target
    builder = pick_builder(_settings(raw_settings, project_root, builder="buildx", architecture=architecture))
    assert isinstance(builder, BuildxBuilder) and builder.platform == target


def test_a_build_for_a_cpu_this_machine_cannot_run_is_refused_before_building(
    raw_settings: dict[str, Any], project_root: Path
) -> None:
    if Path("/proc/sys/fs/binfmt_misc", {"ARM64": "qemu-aarch64", "X86_64": "qemu-x86_64"}[OTHER]).exists():
        pytest.skip("this machine emulates the other CPU")
    built: list[str] = []

    class Recording:
        name = "recording"

        def build(self, context: Path, dockerfile: Path, tag: str, build_args: dict[str, str], echo: Any) -> str:
            built.append(tag)
            return tag

        def push(self, image: str, destination: str, username: str, password: str, tls_verify: bool) -> str:
            raise AssertionError("not pushed")

    settings = _settings(raw_settings, project_root, architecture=OTHER)
    with pytest.raises(ConfigError, match=f"{OTHER} images cannot be built"):
        build_image(settings, "1.0.0", Recording(), lambda _line: None)
    assert built == []
    build_image(_settings(raw_settings, project_root, architecture=HOST), "1.0.0", Recording(), lambda _line: None)
    assert built == ["localhost/iris-classifier:1.0.0"]


@pytest.fixture()
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with test_images.buildah_store(tmp_path_factory.mktemp("buildah")) as root:
        yield root


@pytest.mark.parametrize("target", ["amd64", "arm64"])
def test_buildah_builds_for_the_platform(store: Path, tmp_path: Path, target: str) -> None:
    """FROM scratch runs nothing, so either CPU builds here: the image's config names the platform's."""
    (tmp_path / "Containerfile").write_text("FROM scratch\nCOPY Containerfile /Containerfile\n")
    tag = f"localhost/platform-{target}:1"
    BuildahBuilder(platform=f"linux/{target}").build(tmp_path, tmp_path / "Containerfile", tag, {}, lambda _l: None)
    assert buildah._inspect(tag)["OCIv1"]["architecture"] == target
