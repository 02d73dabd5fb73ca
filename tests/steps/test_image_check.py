"""The pre-push check runs the built image for real (buildah run) and refuses a broken one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import BuildError
from pipeline.images import buildah
from pipeline.steps.image_check import check_image, descendants

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


def test_an_image_that_never_becomes_healthy_is_refused(buildah_root: Path, project: Any) -> None:
    with pytest.raises(BuildError, match="did not answer 200 within 2s"):
        check_image(project.settings, build(project, "model-broken"), lambda _l: None, timeout=2)


def test_no_process_is_left_running(buildah_root: Path, project: Any) -> None:
    import os

    check_image(project.settings, build(project, "model"), lambda _l: None, timeout=20)
    assert [pid for pid in descendants(os.getpid())] == []
