"""`pipeline demo`: the whole product on this machine, with no AWS account and no GitHub.

Starts the local AWS (running tasks for real behind a local load balancer), the registry behind ECR
and a local GitHub; bootstraps the stacks; releases to staging as a canary gated by the golden set
(the demo's copy of the settings): v1.0.0 and v1.1.0 of the example iris model; v1.2.0, whose model
passes the pre-push check but fails in staging (the environment pins the feature order the model was
not trained on), so its tasks fail their health checks and the deployment is rolled back; v1.3.0,
trained on shuffled labels: healthy, fast and wrong, stopped by the model gate at the test listener
before any production request reaches it; then rolls back to v1.0.0 on request. A client sends
production traffic through each release; the demo prints per release the strategy, the share of
production requests the new version served and the time from a failed decision to all traffic back,
then the history, what runs, and the time each phase took. Everything it starts stops when it ends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pipeline import config
from pipeline.errors import PipelineError, ReleaseFailed
from pipeline.report import ReleaseReport

Echo = Callable[[str], None]
ENVIRONMENT = "staging"
TIME_SCALE = 0.02
GOOD_FEATURES = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm"
# v1.2.0 is retrained on another column order: fine on its own, wrong where the order is pinned.
BAD_FEATURES = "petal_length_cm,petal_width_cm,sepal_length_cm,sepal_width_cm"
# (tag, training columns, shuffled labels): v1.3.0 is healthy but wrong.
VERSIONS = (
    ("v1.0.0", GOOD_FEATURES, False),
    ("v1.1.0", GOOD_FEATURES, False),
    ("v1.2.0", BAD_FEATURES, False),
    ("v1.3.0", GOOD_FEATURES, True),
)
# Staging as the demo releases it: a canary behind the model gate (minutes are scaled like the rest).
CANARY = {"canary_percent": 10.0, "canary_bake_minutes": 2, "bake_minutes": 1}


def prepare_project(source: Path, work: Path, echo: Echo) -> config.Settings:
    """A scratch copy of the project, so the demo changes nothing in the checkout."""
    settings = config.load(source / "pipeline.toml")
    shutil.copytree(source / "cloudformation", work / "cloudformation")
    shutil.copytree(source / settings.image.context, work / "model-server")
    shutil.copy2(source / "pipeline.toml", work / "pipeline.toml")
    echo(f"project copied to {work}")
    staging = settings.environment(ENVIRONMENT)
    staging = replace(
        staging,
        delivery=replace(staging.delivery, strategy="canary"),
        traffic=replace(staging.traffic, **CANARY),  # type: ignore[arg-type]
    )
    demo = replace(
        settings,
        root=work,
        image=replace(settings.image, context="model-server", builder="buildah"),
        environments=tuple(staging if e.name == ENVIRONMENT else e for e in settings.environments),
        gate=config.GateSettings(golden_set="model-server/golden.jsonl"),
    )
    from pipeline.synth import write_templates

    write_templates(demo, work / "cloudformation")
    echo(f"{ENVIRONMENT}: canary {CANARY['canary_percent']:g}% behind the golden-set gate (the demo's settings)")
    return demo


class ProductionClient:
    """POSTs a prediction through the service URL for as long as a release runs; counts who answered."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/predict"
        self.versions: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-production-client", daemon=True)

    def __enter__(self) -> ProductionClient:
        if self.url.startswith("http"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
        while not self._stop.is_set():
            request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            try:
                with opener.open(request, timeout=5) as response:  # nosec B310 # the local load balancer's URL
                    self.versions.append(str(json.loads(response.read()).get("version", "")))
            except (OSError, ValueError):
                self.versions.append("")
            self._stop.wait(0.02)

    def share(self, version: str) -> str:
        if not self.versions:
            return "-"
        return f"{100 * self.versions.count(version) / len(self.versions):.1f}% of {len(self.versions)}"


def last_url(reports: list[ReleaseReport]) -> str:
    return next((r.url for r in reversed(reports) if r.url), "")


def train(model_dir: Path, version: str, features: str, echo: Echo, shuffle: bool = False) -> None:
    out = subprocess.run(
        [sys.executable, "train.py", "--version", version, "--features", features, "--out", "model.json"]
        + (["--shuffle-labels"] if shuffle else []),
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
    from pipeline.github import GitHubRecorder
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
    shares: list[str] = []  # per release: the share of production requests the new version served
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
                    for tag, _features, _shuffle in VERSIONS:
                        ground.github.create_tag(tag)
                    github = GitHubRecorder.from_environ(os.environ)
                    ctx = Context(
                        settings,
                        WallClock(),
                        echo,
                        github=github,
                        builder=BuildahBuilder,
                        build_args={"BASE_IMAGE": base.name},
                        poll=float(os.environ["PIPELINE_POLL_SECONDS"]),
                    )
                    echo("==> bootstrap: registry and ci-access stacks")
                    deployer = ctx.deployer()
                    for spec in stack_specs(settings):
                        if spec.environment is None:
                            deployer.deploy(spec.stack_name, ctx.committed_template(spec.file_name), {})
                    for tag, features, shuffle in VERSIONS:
                        echo(f"==> release {tag} to {ENVIRONMENT}")
                        train(settings.root / settings.image.context, tag.lstrip("v"), features, echo, shuffle)
                        with ProductionClient(last_url(reports)) as production:
                            try:
                                reports.append(release(ctx, ENVIRONMENT, tag))
                            except ReleaseFailed as failed:
                                reports.append(failed.report)
                                echo(f"  release {tag} failed as the demo intends: {failed.message}")
                        shares.append(production.share(tag.lstrip("v")))
                    echo(f"==> rollback of {ENVIRONMENT} to 1.0.0, on request")
                    with ProductionClient(last_url(reports)) as production:
                        reports.append(rollback(ctx, ENVIRONMENT, "1.0.0"))
                    shares.append(production.share("1.0.0"))
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
    echo("")
    echo(f"{'':<20}{'strategy':>10}{'new version served':>26}{'traffic back':>14}  decision")
    for r, share in zip(reports, shares, strict=True):
        back = f"{r.traffic_back_seconds:.2f}s" if r.traffic_back_seconds is not None else "-"
        cause = r.cause.split(":")[0] if r.cause else r.outcome.value
        if "Circuit Breaker" in r.cause:
            cause = "circuit breaker: its tasks failed their health checks"
        echo(f"{r.kind + ' ' + r.version:<20}{'canary':>10}{share:>26}{back:>14}  {cause}")
    echo(f"\ndemo finished in {time.monotonic() - started:.0f}s; everything it started has stopped")
    rolled_back = {r.version for r in reports if r.outcome.value == "rolled back"}
    wrong_unseen = shares[3].startswith("0.0%")  # v1.3.0 served no production request
    return 0 if now.version == "1.0.0" and {"1.2.0", "1.3.0"} <= rolled_back and wrong_unseen else 1
