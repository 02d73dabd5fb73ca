"""`pipeline demo`: the whole product on this machine, with no AWS account and no GitHub.

Starts the local AWS (running tasks for real behind a local load balancer), the registry behind ECR
and a local GitHub; bootstraps the stacks; releases v1.0.0 and v1.1.0 of the example iris model;
releases v1.2.0, whose model passes the pre-push check but fails in staging (the environment pins the
feature order the model was not trained on), so its tasks fail their health checks and the release
is rolled back automatically; then rolls back to v1.0.0 on request, and prints the history, what
runs, and the time each phase took. Everything it starts stops when it ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pipeline import config
from pipeline.errors import PipelineError, ReleaseFailed

Echo = Callable[[str], None]
ENVIRONMENT = "staging"
TIME_SCALE = 0.02
GOOD_FEATURES = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm"
# v1.2.0 is retrained on another column order: fine on its own, wrong where the order is pinned.
BAD_FEATURES = "petal_length_cm,petal_width_cm,sepal_length_cm,sepal_width_cm"
VERSIONS = (("v1.0.0", GOOD_FEATURES), ("v1.1.0", GOOD_FEATURES), ("v1.2.0", BAD_FEATURES))


def prepare_project(source: Path, work: Path, echo: Echo) -> config.Settings:
    """A scratch copy of the project, so the demo changes nothing in the checkout."""
    settings = config.load(source / "pipeline.toml")
    shutil.copytree(source / "cloudformation", work / "cloudformation")
    shutil.copytree(source / settings.image.context, work / "model-server")
    shutil.copy2(source / "pipeline.toml", work / "pipeline.toml")
    echo(f"project copied to {work}")
    return replace(settings, root=work, image=replace(settings.image, context="model-server", builder="buildah"))


def train(model_dir: Path, version: str, features: str, echo: Echo) -> None:
    out = subprocess.run(
        [sys.executable, "train.py", "--version", version, "--features", features, "--out", "model.json"],
        cwd=model_dir,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise PipelineError(
            f"training {version} failed: {out.stderr.strip().splitlines()[-1:]}",
            hint="Install the dev extra (scikit-learn).",
        )
    echo(f"  {out.stdout.strip().splitlines()[-1] if out.stdout.strip() else f'trained {version}'}")


def run_demo(root: Path, echo: Echo) -> int:
    from local_ground.environ import scoped_environ
    from local_ground.ground import LocalGround
    from local_ground.python_base import ensure_python_base
    from pipeline.clock import WallClock
    from pipeline.config import poll_seconds, time_scale
    from pipeline.github import GitHubRecorder
    from pipeline.report import ReleaseReport
    from pipeline.steps.build import BuildahBuilder
    from pipeline.steps.context import Context
    from pipeline.steps.history import history, status
    from pipeline.steps.release import release, rollback
    from pipeline.templates import stack_specs

    for tool in ("buildah", "docker-registry"):
        if shutil.which(tool) is None:
            raise PipelineError(f"{tool} is not installed", hint="Run `make setup`.")
    started = time.monotonic()
    reports: list[ReleaseReport] = []
    with tempfile.TemporaryDirectory(prefix="pipeline-demo-") as scratch:
        work = Path(scratch)
        with scoped_environ({"PIPELINE_BUILDAH_ROOT": str(work / "buildah")}):
            echo("==> local Python base image (built once with debootstrap, then cached)")
            base = ensure_python_base(lambda line: echo(f"  {line}"))
            echo(f"  {base.name} ready ({base.source.value}, {base.seconds:.1f}s)")
            settings = prepare_project(root, work / "project", echo)
            echo("==> starting the local AWS, registry and GitHub")
            with LocalGround(
                github_repository=settings.app.github_repository,
                time_scale=TIME_SCALE,
                progress=lambda line: echo(f"  {line}"),
            ) as ground:
                with scoped_environ(ground.environ()):
                    assert ground.github is not None  # nosec B101 # narrows the type for mypy; set by the ground's __enter__
                    for tag, _features in VERSIONS:
                        ground.github.create_tag(tag)
                    github = GitHubRecorder.from_environ(os.environ)
                    ctx = Context(
                        settings,
                        WallClock(),
                        echo,
                        github=github,
                        builder=BuildahBuilder,
                        build_args={"BASE_IMAGE": base.name},
                        poll=poll_seconds(os.environ),
                        time_scale=time_scale(os.environ),
                    )
                    echo("==> bootstrap: registry and ci-access stacks")
                    deployer = ctx.deployer()
                    for spec in stack_specs(settings):
                        if spec.environment is None:
                            deployer.deploy(spec.stack_name, ctx.committed_template(spec.file_name), {})
                    for tag, features in VERSIONS:
                        echo(f"==> release {tag} to {ENVIRONMENT}")
                        train(settings.root / settings.image.context, tag.lstrip("v"), features, echo)
                        try:
                            reports.append(release(ctx, ENVIRONMENT, tag))
                        except ReleaseFailed as failed:
                            reports.append(failed.report)
                            echo(f"  release {tag} failed as the demo intends: {failed.message}")
                    echo(f"==> rollback of {ENVIRONMENT} to 1.0.0, on request")
                    reports.append(rollback(ctx, ENVIRONMENT, "1.0.0"))
                    entries = history(ctx, ENVIRONMENT)
                    now = status(ctx, ENVIRONMENT)
    echo("")
    echo(f"history of {ENVIRONMENT} (GitHub deployments, newest first)")
    for e in entries:
        echo(f"  {e.version:<8} {e.state:<10} {e.digest[:19]}...")
    echo("")
    echo(f"running now: {now.version} ({now.digest[:19]}...), {now.running}/{now.desired} tasks, {now.url}")
    echo("")
    phases = ["build", "check", "push", "deploy", "roll", "smoke", "record", "rollback"]
    echo(f"{'':<20}" + "".join(f"{p:>9}" for p in phases) + f"{'total':>9}  outcome")
    for r in reports:
        seconds = {p.name: p.seconds for p in r.phases}
        cells = "".join(f"{seconds[p]:>8.1f}s" if p in seconds else f"{'-':>9}" for p in phases)
        echo(f"{r.kind + ' ' + r.version:<20}{cells}{r.seconds:>8.1f}s  {r.outcome.value}")
    echo(f"\ndemo finished in {time.monotonic() - started:.0f}s; everything it started has stopped")
    rolled_back = any(r.version == "1.2.0" and r.outcome.value == "rolled back" for r in reports)
    return 0 if now.version == "1.0.0" and rolled_back else 1
