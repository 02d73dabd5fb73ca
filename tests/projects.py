"""A project folder for the release engine's tests and benchmarks: the real pipeline.toml, whose model
image is a 2 MB busybox stand-in (tests/images/model), templates synthesized for it."""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline import config
from pipeline.synth import write_templates

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "tests" / "images"
# The release stories (tests/steps, tests/workflows, tests/docker) run their ground at 0.01: most of
# their time is scaled waits (a rolling deployment bakes 180 s for its alarms, 1.8 s here), and the
# timeouts that bound the application's own work are not scaled, so a busy machine only slows them.
STORY_TIME_SCALE = 0.01
# Production in the stories bakes one minute at each step (pipeline.toml: 5): the bakes are the longest
# scaled waits, and the stories test the release flow, not the bake's length; the canary tests
# (tests/local_ground/tasks/test_traffic_shift.py, tests/steps/test_traffic_release.py) set the bakes they test.
STORY_BAKES = {"canary_bake_minutes": 1, "bake_minutes": 1}


@dataclass
class Project:
    root: Path
    settings: config.Settings

    def with_image(self, name: str) -> config.Settings:
        """The same settings, building tests/images/<name> instead."""
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
    raw["environments"]["production"].update(STORY_BAKES)
    for name in ("model", "model-broken"):
        shutil.copytree(IMAGES / name, root / "images" / name)
        shutil.copy2(shutil.which("busybox") or "/bin/busybox", root / "images" / name / "busybox")
    for name in ("model-writes-root", "model-oom"):  # the model with another entry point
        shutil.copytree(root / "images" / "model", root / "images" / name)
        shutil.copy2(IMAGES / name / "Containerfile", root / "images" / name / "Containerfile")
    # The gate's golden set (named in [gate]) as the stand-in answers it: every prediction is "setosa".
    golden = Path("examples") / "model-server" / "golden.jsonl"
    (root / golden).parent.mkdir(parents=True, exist_ok=True)
    (root / golden).write_text(
        '{"request": {"instances": [[5.1, 3.5, 1.4, 0.2]]}, "expected": ["setosa"]}\n' * 4, encoding="utf-8"
    )
    raw["gate"]["path"] = "/cgi-bin/predict"
    settings = config.parse(raw, root=root)
    write_templates(settings, root / "cloudformation")
    return Project(root, settings)


def make_git_project(root: Path) -> Project:
    """`make_project` as a git repository with its pipeline.toml committed, as a user's repository is."""
    import re
    import subprocess

    project = make_project(root)
    text = (ROOT / "pipeline.toml").read_text(encoding="utf-8")
    for pattern, replacement in (
        (r"(?m)^context = .*$", 'context = "images/model"'),
        (r"(?m)^dockerfile = .*$", 'dockerfile = "Containerfile"'),
        (r"(?m)^builder = .*$", 'builder = "buildah"'),
        (r'(?m)^path = "/predict"$', 'path = "/cgi-bin/predict"'),
        (r"(?m)^timeout = 120$", "timeout = 30"),
        (r"(?m)^certificate_arn = .*\n", ""),
        (r'(?m)^(strategy = "canary".*\n)', "\\1" + "".join(f"{k} = {v}\n" for k, v in STORY_BAKES.items())),
    ):
        text = re.sub(pattern, replacement, text)
    (root / "pipeline.toml").write_text(text, encoding="utf-8")
    assert config.load(root / "pipeline.toml") == project.settings
    git = ["git", "-C", str(root), "-c", "user.email=test@example.com", "-c", "user.name=test"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "model server"], check=True)
    return project
