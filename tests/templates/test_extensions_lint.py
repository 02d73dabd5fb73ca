"""A project using every extension point (task-role statements, secrets from Secrets Manager and SSM
with a KMS key, ARM64, ECS Exec, variables per environment) synthesizes templates that cfn-lint
(errors, warnings and informational rules) and checkov pass with no finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline import config
from pipeline.lint import find_checkov, run_cfn_lint, run_checkov
from pipeline.templates import render, stack_specs
from tests.extension_settings import extension_raw


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory, project_root: Path) -> Path:
    root = tmp_path_factory.mktemp("extensions")
    folder = root / "cloudformation"
    folder.mkdir()
    settings = config.parse(extension_raw(project_root), root=project_root)
    for spec in stack_specs(settings):
        (folder / spec.file_name).write_text(render(spec.build()))
    return root


def test_cfn_lint_finds_nothing_with_every_extension(synthesized: Path) -> None:
    lines: list[str] = []
    run_cfn_lint(sorted((synthesized / "cloudformation").glob("*.yaml")), None, lines.append)
    assert lines == ["cfn-lint: 4 template(s), no findings"]


def test_checkov_fails_nothing_with_every_extension(synthesized: Path, project_root: Path, monkeypatch: Any) -> None:
    checkov = find_checkov(project_root)
    assert checkov is not None, "checkov is installed by `make setup`"
    monkeypatch.setenv("PIPELINE_CHECKOV", checkov)
    lines: list[str] = []
    run_checkov(synthesized, lines.append)
    assert " 0 failed" in lines[-1], lines
