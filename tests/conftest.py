"""Shared fixtures: the project's real settings file and helpers to vary it."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture()
def raw_settings() -> dict[str, Any]:
    """pipeline.toml as a fresh dict, for tests that change one value."""
    return tomllib.loads((ROOT / "pipeline.toml").read_text())


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    from pipeline import config

    return config.load(ROOT / "pipeline.toml")


@pytest.fixture(scope="module")
def buildah_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throwaway buildah store for one test module, so tests never touch the machine's own."""
    root = tmp_path_factory.mktemp("buildah")
    with mock.patch.dict(os.environ, {"PIPELINE_BUILDAH_ROOT": str(root)}):
        yield root
