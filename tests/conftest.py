"""Shared fixtures: the project's real settings file and helpers to vary it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

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
