"""Every traffic strategy lints clean, not only the one production commits: cfn-lint (errors, warnings,
informational rules) and checkov on blue_green, linear and an HTTP-only canary with an existing VPC."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pipeline import config
from pipeline.lint import find_checkov, run_cfn_lint, run_checkov
from pipeline.templates import render
from pipeline.templates.service import build_service


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, project_root: Path) -> Path:
    import tomllib

    root = tmp_path_factory.mktemp("variants")
    folder = root / "cloudformation"
    folder.mkdir()
    base: dict[str, Any] = tomllib.loads((project_root / "pipeline.toml").read_text())
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "production-linear": ("production", {"strategy": "linear", "test_listener_cidrs": ["203.0.113.7/32"]}),
        "production-blue-green": ("production", {"strategy": "blue_green"}),
        "staging-canary-existing-vpc": (
            "staging",
            {
                "strategy": "canary",
                "vpc_cidr": None,
                "vpc_id": "vpc-0123456789abcdef0",
                "public_subnet_ids": ["subnet-01234567", "subnet-89abcdef"],
                "private_subnet_ids": ["subnet-11111111", "subnet-22222222"],
                "test_listener_cidrs": ["10.60.0.0/16"],
            },
        ),
    }
    for name, (environment, keys) in cases.items():
        raw = copy.deepcopy(base)
        table = raw["environments"][environment]
        table.update({k: v for k, v in keys.items() if v is not None})
        for key in [k for k, v in keys.items() if v is None]:
            del table[key]
        settings = config.parse(raw, root=project_root)
        (folder / f"service-{name}.yaml").write_text(render(build_service(settings, environment)))
    return root


def test_cfn_lint_finds_nothing_in_any_strategy(variants: Path) -> None:
    lines: list[str] = []
    run_cfn_lint(sorted((variants / "cloudformation").glob("*.yaml")), None, lines.append)
    assert lines == ["cfn-lint: 3 template(s), no findings"]


def test_checkov_fails_nothing_in_any_strategy(variants: Path, project_root: Path, monkeypatch: Any) -> None:
    checkov = find_checkov(project_root)
    assert checkov is not None, "checkov is installed by `make setup`"
    monkeypatch.setenv("PIPELINE_CHECKOV", checkov)
    lines: list[str] = []
    run_checkov(variants, lines.append)
    assert " 0 failed" in lines[-1]
