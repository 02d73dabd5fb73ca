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
GOLDEN_SET = Path("examples") / "model-server" / "golden.jsonl"  # named by pipeline.toml's [gate]


def copy_golden_set(root: Path) -> None:
    """A copy of pipeline.toml elsewhere needs the golden set its [gate] names (validated at load)."""
    (root / GOLDEN_SET).parent.mkdir(parents=True, exist_ok=True)
    (root / GOLDEN_SET).write_bytes((ROOT / GOLDEN_SET).read_bytes())


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


# Production as the traffic-shifting tests release it: a canary with the model gate, every key spelled
# out (the project's own pipeline.toml sets the strategy and leaves the rest at their defaults).
CANARY_PRODUCTION = {
    "strategy": "canary",
    "canary_percent": 10.0,
    "canary_bake_minutes": 5,
    "bake_minutes": 5,
    "hook_timeout_minutes": 30,
    "test_listener_port": 9000,
}
GATE = {
    "golden_set": "examples/model-server/golden.jsonl",
    "answer_key": "predictions",
    "version_key": "version",
    "min_accuracy": 0.9,
    "min_agreement": 0.0,
    "max_p99_ms": 1000.0,
    "require_version": True,
    "concurrency": 4,
    "request_timeout": 5.0,
}


@pytest.fixture()
def canary_raw_settings() -> dict[str, Any]:
    raw: dict[str, Any] = tomllib.loads((ROOT / "pipeline.toml").read_text())
    raw["environments"]["production"].update(CANARY_PRODUCTION)
    raw["gate"] = dict(GATE)
    return raw


@pytest.fixture()
def canary_settings(canary_raw_settings: dict[str, Any]):  # type: ignore[no-untyped-def]
    from pipeline import config

    return config.parse(canary_raw_settings, root=ROOT)


# Fixtures that build or pull images, start a Docker engine or run real tasks: a test using one is `slow`
# whether or not its module says so, so `-m "not slow"` (make test-fast) never runs one by mistake.
SLOW_FIXTURES = frozenset(
    {"buildah_root", "buildah_store", "images", "env", "ground", "docker_engine", "containerd_engine", "docker_environ"}
)


def pytest_itemcollected(item: pytest.Item) -> None:
    if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        item.add_marker(pytest.mark.slow)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """After pytest-randomly: a module marked `story` keeps its tests in file order (its releases build
    on each other in one account, as a team's do); the order of modules stays random within the slow ones
    and within the rest."""
    start = 0
    while start < len(items):
        module = items[start].module if isinstance(items[start], pytest.Function) else None
        end = start
        while end < len(items) and (items[end].module if isinstance(items[end], pytest.Function) else None) is module:
            end += 1
        if module is not None and any(m.name == "story" for m in items[start].iter_markers()):
            items[start:end] = sorted(items[start:end], key=lambda item: item.location[1] or 0)
        start = max(end, start + 1)
    # xdist hands out whole modules in this order (`make test` passes --no-loadscope-reorder): modules with a
    # slow test go first, so the many short modules fill the end of the run on both workers, instead of one
    # long module, handed out last, running alone. The order within each group stays pytest-randomly's.
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_modules)
