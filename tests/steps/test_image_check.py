"""The pre-push check runs the built image for real (buildah run) and refuses a broken one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import BuildError
from pipeline.images import buildah
from pipeline.images.container import descendants
from pipeline.steps.image_check import check_image

pytestmark = pytest.mark.slow


def build(project: Any, name: str) -> str:
    tag = f"localhost/check-{name}:1"
    context = project.root / "images" / name
    buildah.build(context, context / "Containerfile", tag)
    return tag


def test_a_healthy_image_passes(buildah_root: Path, project: Any) -> None:
    lines: list[str] = []
    result = check_image(project.settings, build(project, "model"), lines.append, timeout=20)
    assert result.prediction["predictions"] == ["setosa"]
    assert lines[-1].startswith("checked localhost/check-model:1: healthy after")


def test_an_image_that_never_becomes_healthy_is_refused(buildah_root: Path, project: Any, tmp_path: Path) -> None:
    context = tmp_path / "never-healthy"
    (context / "www").mkdir(parents=True)
    (context / "www" / "index.html").write_text("no health path")
    (context / "Containerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n"
        'ENTRYPOINT ["/bin/busybox", "sh", "-c", "exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"]\n'
    )
    import shutil

    shutil.copy2(project.root / "images" / "model" / "busybox", context / "busybox")
    buildah.build(context, context / "Containerfile", "localhost/check-never-healthy:1")
    with pytest.raises(BuildError, match="did not answer 200 within 2s"):
        check_image(project.settings, "localhost/check-never-healthy:1", lambda _l: None, timeout=2)


def test_an_image_that_exits_is_refused(buildah_root: Path, project: Any, tmp_path: Path) -> None:
    context = tmp_path / "exits"
    context.mkdir()
    (context / "Containerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox", "sh", "-c", "exit 3"]\n'
    )
    import shutil

    shutil.copy2(project.root / "images" / "model" / "busybox", context / "busybox")
    buildah.build(context, context / "Containerfile", "localhost/check-exits:1")
    with pytest.raises(BuildError, match="exited with code 3 before becoming healthy"):
        check_image(project.settings, "localhost/check-exits:1", lambda _l: None, timeout=10)


def test_no_process_is_left_running(buildah_root: Path, project: Any) -> None:
    import os

    image = build(project, "model")
    # Servers other test files' session fixtures started in this worker (a registry) are not the check's.
    before = set(descendants(os.getpid()))
    check_image(project.settings, image, lambda _l: None, timeout=20)
    new = [pid for pid in descendants(os.getpid()) if pid not in before]
    left = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") for pid in new]
    assert left == []


def test_an_answer_the_smoke_test_would_refuse_is_refused_before_the_push(buildah_root: Path, project: Any) -> None:
    """One rule for a good answer (pipeline.steps.smoke.read_smoke_answer) in the check and the smoke test."""
    import dataclasses

    smoke = dataclasses.replace(project.settings.smoke, expect_keys=("predictions", "confidence"))
    settings = dataclasses.replace(project.settings, smoke=smoke)
    with pytest.raises(BuildError, match=r"image check: POST /cgi-bin/predict answer lacks confidence"):
        check_image(settings, build(project, "model"), lambda _l: None, timeout=20)
