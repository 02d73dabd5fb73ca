"""The release engine's ground: local AWS running real tasks, the registry behind ECR, local GitHub,
and a project folder whose model image is a 2 MB busybox stand-in (tests/images/model)."""

from __future__ import annotations

import os
import shutil
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from pipeline import config
from pipeline.synth import write_templates

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "tests" / "images"


@dataclass
class Project:
    root: Path
    settings: config.Settings

    def with_image(self, name: str) -> config.Settings:
        """The same settings, building tests/images/<name> instead."""
        from dataclasses import replace

        return replace(self.settings, image=replace(self.settings.image, context=f"images/{name}"))


def make_project(root: Path) -> Project:
    raw: dict[str, Any] = tomllib.loads((ROOT / "pipeline.toml").read_text())
    raw["image"]["context"] = "images/model"
    raw["image"]["builder"] = "buildah"
    raw["image"]["dockerfile"] = "Containerfile"
    raw["smoke"]["path"] = "/cgi-bin/predict"
    raw["smoke"]["timeout"] = 30
    # The local load balancer speaks HTTP: no certificate in this copy of production.
    raw["environments"]["production"].pop("certificate_arn", None)
    for name in ("model", "model-broken"):
        shutil.copytree(IMAGES / name, root / "images" / name)
        shutil.copy2(shutil.which("busybox") or "/bin/busybox", root / "images" / name / "busybox")
    settings = config.parse(raw, root=root)
    write_templates(settings, root / "cloudformation")
    return Project(root, settings)


@pytest.fixture(scope="module")
def ground(buildah_root: Path) -> Iterator[Any]:
    from pipeline.local.ground import LocalGround

    with LocalGround(time_scale=0.02) as local:
        with mock.patch.dict(os.environ, local.environ()):
            yield local


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("project"))
