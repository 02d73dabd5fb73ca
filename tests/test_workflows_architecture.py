"""An ARM64 image is built on GitHub's ARM64 runner (its RUN steps and the pre-push check run the
image's programs); jobs that only promote a digest stay on the x86_64 runner. The result lints clean."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from pipeline import config
from pipeline.lint import run_workflow_lint
from pipeline.workflows import workflow_files


def test_arm64_builds_on_the_arm_runner_and_lints_clean(
    raw_settings: dict[str, Any], project_root: Path, tmp_path: Path
) -> None:
    raw = copy.deepcopy(raw_settings)
    raw["image"]["architecture"] = "ARM64"
    settings = config.parse(raw, root=project_root)
    files = workflow_files(settings)
    release = yaml.safe_load(files[".github/workflows/release.yml"])
    assert release["jobs"]["staging"]["runs-on"] == "ubuntu-24.04-arm"  # staging builds
    assert release["jobs"]["production"]["runs-on"] == "ubuntu-24.04"  # production promotes the digest
    default = yaml.safe_load(workflow_files(config.parse(raw_settings))[".github/workflows/release.yml"])
    assert {job["runs-on"] for job in default["jobs"].values()} == {"ubuntu-24.04"}
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    lines: list[str] = []
    run_workflow_lint(tmp_path, lines.append)
    assert lines[-1].startswith("workflows: 3 file(s)") and lines[-1].endswith("report nothing"), lines
