from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipeline import config, synth
from pipeline.synth import MARKER, Action, check_templates, synthesize, write_templates
from tests.conftest import copy_golden_set


def test_committed_templates_are_up_to_date(settings: config.Settings, project_root: Path) -> None:
    assert check_templates(settings, project_root / "cloudformation") == [], "run `pipeline synth` and commit"


def test_synth_is_deterministic(settings: config.Settings) -> None:
    assert synthesize(settings) == synthesize(config.load(settings.root / "pipeline.toml"))


def test_stale_missing_and_extra_templates_are_named(
    settings: config.Settings, raw_settings: dict[str, Any], tmp_path: Path
) -> None:
    write_templates(_with_qa(raw_settings), tmp_path)  # then qa is removed from the settings
    # ci-access trusts each environment by name, so it changes too.
    assert check_templates(settings, tmp_path) == ["ci-access.yaml", "service-qa.yaml"]
    write_templates(settings, tmp_path)
    assert check_templates(settings, tmp_path) == [] and not (tmp_path / "service-qa.yaml").exists()
    (tmp_path / "registry.yaml").write_text("stale")
    (tmp_path / "service-staging.yaml").unlink()
    assert sorted(check_templates(settings, tmp_path)) == ["registry.yaml", "service-staging.yaml"]
    write_templates(settings, tmp_path)
    assert check_templates(settings, tmp_path) == []


def test_checking_the_same_settings_again_does_not_synthesize_again(
    settings: config.Settings, raw_settings: dict[str, Any], tmp_path: Path, monkeypatch: Any
) -> None:
    # A release checks the committed templates before every deploy; the second check reuses the first's text.
    calls: list[config.Settings] = []
    monkeypatch.setattr(synth, "synthesize", lambda s: calls.append(s) or synthesize(s))
    synth._synthesized.cache_clear()
    write_templates(settings, tmp_path)
    assert check_templates(settings, tmp_path) == [] and len(calls) == 1
    check_templates(config.load(settings.root / "pipeline.toml"), tmp_path)  # equal settings, loaded again
    assert len(calls) == 1
    assert check_templates(_with_qa(raw_settings), tmp_path) == ["ci-access.yaml", "service-qa.yaml"]
    assert len(calls) == 2  # other settings: synthesized for them
    synth.synthesized(settings).clear()  # each caller gets its own mapping
    assert check_templates(settings, tmp_path) == [] and len(calls) == 2


def _with_qa(raw: dict[str, Any]) -> config.Settings:
    raw = copy.deepcopy(raw)
    raw["environments"]["qa"] = {"vpc_cidr": "10.60.0.0/16"}
    return config.parse(raw)


def test_every_template_starts_with_the_marker(settings: config.Settings) -> None:
    assert all(text.startswith(MARKER + "\n") for text in synthesize(settings).values())


def test_synth_removes_only_its_own_templates(
    settings: config.Settings, raw_settings: dict[str, Any], tmp_path: Path
) -> None:
    write_templates(_with_qa(raw_settings), tmp_path)
    users = {
        "notes.yaml": "my own file\n",
        "extra-stack.yaml": "Resources: {}\n",
        # Named like a template of a removed environment, but not written by synth: kept and reported.
        "service-legacy.yaml": "Resources: {}\n",
        # The marker alone does not make a file synth's: the name must be a template's too.
        "copy-of-registry.yaml": (tmp_path / "registry.yaml").read_text(),
    }
    for name, text in users.items():
        (tmp_path / name).write_text(text)

    outcomes = {o.path.name: o.action for o in write_templates(settings, tmp_path)}

    assert outcomes["service-qa.yaml"] is Action.REMOVED and not (tmp_path / "service-qa.yaml").exists()
    assert outcomes["service-legacy.yaml"] is Action.KEPT
    assert outcomes["registry.yaml"] is Action.UNCHANGED
    for name, text in users.items():
        assert (tmp_path / name).read_text() == text, f"synth changed the user's {name}"
    assert check_templates(settings, tmp_path) == [], "a user's file is not a stale template"


def test_synth_cli_says_what_it_removed_and_kept(project_root: Path, tmp_path: Path) -> None:
    shutil.copy(project_root / "pipeline.toml", tmp_path)
    copy_golden_set(tmp_path)
    out = tmp_path / "cloudformation"
    out.mkdir()
    (out / "service-old.yaml").write_text(MARKER + "\nResources: {}\n")
    (out / "service-mine.yaml").write_text("Resources: {}\n")
    cmd = [sys.executable, "-m", "pipeline", "synth", "--config", str(tmp_path / "pipeline.toml")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"removed {out / 'service-old.yaml'} (no stack in the settings produces it)" in lines
    assert any(line.startswith(f"kept {out / 'service-mine.yaml'}: ") for line in lines)
    assert f"wrote {out / 'registry.yaml'}" in lines
    assert sorted(p.name for p in out.iterdir()) == [
        "ci-access.yaml",
        "registry.yaml",
        "service-mine.yaml",
        "service-production.yaml",
        "service-staging.yaml",
    ]


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
