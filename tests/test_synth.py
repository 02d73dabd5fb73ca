from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from pipeline import config
from pipeline.synth import check_templates, synthesize, write_templates


def test_committed_templates_are_up_to_date(settings: config.Settings, project_root: Path) -> None:
    assert check_templates(settings, project_root / "cloudformation") == [], "run `pipeline synth` and commit"


def test_synth_is_deterministic(settings: config.Settings) -> None:
    assert synthesize(settings) == synthesize(config.load(settings.root / "pipeline.toml"))


def test_stale_missing_and_extra_templates_are_named(settings: config.Settings, tmp_path: Path) -> None:
    write_templates(settings, tmp_path)
    assert check_templates(settings, tmp_path) == []
    (tmp_path / "registry.yaml").write_text("stale")
    (tmp_path / "service-staging.yaml").unlink()
    (tmp_path / "service-qa.yaml").write_text("orphan")
    assert sorted(check_templates(settings, tmp_path)) == ["registry.yaml", "service-qa.yaml", "service-staging.yaml"]
    write_templates(settings, tmp_path)
    assert check_templates(settings, tmp_path) == []


def test_synth_check_cli_fails_on_stale_copy(project_root: Path, tmp_path: Path) -> None:
    shutil.copy(project_root / "pipeline.toml", tmp_path)
    shutil.copytree(
        project_root / "examples" / "model-server", tmp_path / "examples" / "model-server"
    )  # the gate's golden set
    shutil.copytree(project_root / "cloudformation", tmp_path / "cloudformation")
    cmd = [sys.executable, "-m", "pipeline", "synth", "--check", "--config", str(tmp_path / "pipeline.toml")]
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0
    with (tmp_path / "cloudformation" / "service-production.yaml").open("a") as f:
        f.write("# edited by hand\n")
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: stale templates in {tmp_path / 'cloudformation'}: service-production.yaml. Run `pipeline synth` and commit the result."
    )


def test_synth_does_not_import_boto3(project_root: Path) -> None:
    code = "import sys; from pipeline.cli import main; sys.argv=['pipeline','synth','--check']\ntry:\n main()\nexcept SystemExit: pass\nprint('boto3' in sys.modules, 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=project_root, capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"
