"""`[image] build_args`: build arguments for every image build (e.g. BASE_IMAGE), validated, reaching the builder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline import config
from pipeline.errors import ConfigError
from pipeline.steps.build import build_image


def test_build_args_are_read_sorted(raw_settings: dict[str, Any]) -> None:
    raw_settings["image"]["build_args"] = {"PIP_INDEX": "x", "BASE_IMAGE": "localhost/base:1"}
    settings = config.parse(raw_settings)
    assert settings.image.build_args == (("BASE_IMAGE", "localhost/base:1"), ("PIP_INDEX", "x"))
    del raw_settings["image"]["build_args"]
    assert config.parse(raw_settings).image.build_args == ()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"BASE IMAGE": "x"}, "not a valid build argument name"),
        ({"BASE_IMAGE": 3}, "must be a string"),
        ({"MODEL_VERSION": "1.0.0"}, "set by the pipeline"),
    ],
)
def test_bad_build_args_name_the_key(raw_settings: dict[str, Any], args: dict[str, Any], message: str) -> None:
    raw_settings["image"]["build_args"] = args
    with pytest.raises(ConfigError, match=message) as caught:
        config.parse(raw_settings)
    assert caught.value.key == f"image.build_args.{next(iter(args))}"


def test_build_args_reach_the_builder_and_the_version_wins(raw_settings: dict[str, Any], tmp_path: Path) -> None:
    raw_settings["image"].update(context=".", dockerfile="Dockerfile", build_args={"BASE_IMAGE": "localhost/b:1"})
    raw_settings.pop("gate", None)  # a project of one Dockerfile: no golden set
    for env in raw_settings["environments"].values():
        env.pop("strategy", None)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    settings = config.parse(raw_settings, root=tmp_path)
    seen: dict[str, str] = {}

    class Recorder:
        name = "recorder"

        def build(self, context: Path, dockerfile: Path, tag: str, build_args: dict[str, str], echo: Any) -> str:
            seen.update(build_args)
            return tag

        def push(self, *args: Any) -> str:
            raise AssertionError("not pushed")

    build_image(settings, "1.2.3", Recorder(), lambda line: None, {"EXTRA": "y"})  # type: ignore[arg-type]
    assert seen == {"MODEL_VERSION": "1.2.3", "BASE_IMAGE": "localhost/b:1", "EXTRA": "y"}
