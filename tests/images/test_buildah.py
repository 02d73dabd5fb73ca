"""The buildah wrappers and the busybox test images, in a throwaway store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import BuildError, PushError
from pipeline.images import buildah
from tests.images import build as test_images


@pytest.fixture(scope="module", autouse=True)
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with test_images.buildah_store(tmp_path_factory.mktemp("buildah")) as root:
        yield root


@pytest.mark.parametrize("name", test_images.TEST_IMAGES)
def test_test_images_build_in_under_a_second_with_an_explicit_entrypoint(name: str, store: Path) -> None:
    lines: list[str] = []
    started = time.monotonic()
    built = test_images.build_test_image(name, on_output=lines.append)
    # About 0.3 s idle, 1 s under a parallel test load; this guards against a heavy image.
    assert time.monotonic() - started < 5
    assert any(line.startswith("STEP 1/") for line in lines)  # streamed, line by line
    config = buildah.inspect_config(built.tag)
    assert config["Entrypoint"][:2] == ["/bin/busybox", "sh"]  # `buildah run` ignores CMD
    assert "PORT=8080" in config["Env"]
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    assert len(built.image_id) == 64
    assert (store / "storage").is_dir()  # the session store, not /var/lib/containers


def test_a_failing_build_raises_build_error_with_the_cause(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text("FROM scratch\nCOPY missing-file /x\n")
    lines: list[str] = []
    with pytest.raises(BuildError, match="missing-file") as failed:
        buildah.build(tmp_path, tmp_path / "Containerfile", "localhost/broken:1", on_output=lines.append)
    assert "\n" not in failed.value.message
    assert lines  # the output reached the callback before the error


def test_build_args_reach_the_build(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text("FROM scratch\nARG VERSION\nENV VERSION=$VERSION\n")
    buildah.build(tmp_path, tmp_path / "Containerfile", "localhost/args:1", {"VERSION": "1.4.0"})
    assert "VERSION=1.4.0" in buildah.inspect_config("localhost/args:1")["Env"]


def test_remove_forgets_the_image_and_tolerates_a_second_call(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text("FROM scratch\nENV A=1\n")
    buildah.build(tmp_path, tmp_path / "Containerfile", "localhost/gone:1")
    buildah.remove("localhost/gone:1")
    buildah.remove("localhost/gone:1")
    with pytest.raises(BuildError, match="cannot inspect"):
        buildah.inspect_config("localhost/gone:1")


def test_a_push_to_a_registry_that_is_not_there_says_so(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text("FROM scratch\nENV A=1\n")
    buildah.build(tmp_path, tmp_path / "Containerfile", "localhost/nowhere:1")
    with pytest.raises(PushError, match="cannot reach the registry 127.0.0.1:9"):
        buildah.push(
            "localhost/nowhere:1",
            "127.0.0.1:9/app:1",
            "AWS",
            "x",
            tls_verify=False,
            retry_delay_s=0.01,
        )
