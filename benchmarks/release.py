"""Wall time of full releases on the local ground, phase by phase: the release engine
(pipeline.steps.release) exactly as tests/steps runs it: LocalGround(time_scale=0.02) with real tasks
behind the local load balancer, the registry behind ECR, local GitHub, and a project folder whose model
image is the 2 MB busybox stand-in of tests/images/model (make_project from tests/projects.py).

The releases, in order (the ones a team makes):
  staging    v1.0.0  first release: cold build store, creates the service stack
  production v1.0.0  first promotion: creates the service stack, no build
  staging    v1.1.0  build included: a new version built on the layers v1.0.0 left in the store
  staging    v1.2.0  build excluded: the image is prebuilt just before (timed on its own line), so the
                     release's build phase only finds it in the cache
  production v1.2.0  promotion of the digest staging verified: no build
"without build" is every phase but build; "wall" is the whole release() call (credentials, ECR look-ups
and GitHub deployment records included). Goal: a release without build under 10 s here (time_scale 0.02:
the AWS waits are scaled down, so the figure is the pipeline's own overhead, not AWS's rollout time;
see rollout_model.py for that). Prints a table; asserts nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TIME_SCALE = 0.02
GOAL_SECONDS = 10.0
PHASES = ("build", "check", "push", "deploy", "roll", "smoke", "record")
TAGS = ("v1.0.0", "v1.1.0", "v1.2.0")


@dataclass
class Row:
    label: str
    note: str
    phases: dict[str, float]
    wall: float
    outcome: str
    serves: str = "-"

    @property
    def total(self) -> float:
        return sum(self.phases.values())

    @property
    def without_build(self) -> float:
        return self.total - self.phases.get("build", 0.0)


def served_version(url: str, path: str, body: str) -> str:
    """What the load balancer answers right after the release: the version the tasks behind it run."""
    try:
        request = urllib.request.Request(
            url.rstrip("/") + path, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(json.loads(response.read()).get("version", "?"))
    except Exception as exc:  # noqa: BLE001 - shown in the table
        return f"({type(exc).__name__})"


def main() -> None:
    # moto says once per stack which resource types it only stores; not what this script measures.
    warnings.filterwarnings("ignore", module="moto")
    logging.getLogger("moto").setLevel(logging.ERROR)
    from local_ground.environ import scoped_environ
    from local_ground.ground import LocalGround
    from pipeline.clock import WallClock
    from pipeline.errors import ReleaseFailed
    from pipeline.github import GitHubRecorder
    from pipeline.steps.build import BuildahBuilder, build_image
    from pipeline.steps.context import Context
    from pipeline.steps.release import release
    from pipeline.templates import stack_specs
    from tests.projects import make_project

    lines: list[str] = []
    rows: list[Row] = []
    extra: list[tuple[str, float]] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-release-") as scratch:
        work = Path(scratch)
        (work / "project").mkdir()
        with scoped_environ({"PIPELINE_BUILDAH_ROOT": str(work / "buildah")}):
            project = make_project(work / "project")
            settings = project.settings
            start = time.perf_counter()
            with LocalGround(github_repository=settings.app.github_repository, time_scale=TIME_SCALE) as ground:
                extra.append(("local ground up", time.perf_counter() - start))
                with scoped_environ(ground.environ()):
                    for tag in TAGS:
                        ground.github.create_tag(tag)

                    def context() -> Context:
                        github = GitHubRecorder.from_environ(os.environ)
                        return Context(
                            settings,
                            WallClock(),
                            lines.append,
                            github=github,
                            builder=BuildahBuilder,
                            poll=0.05,
                        )

                    start = time.perf_counter()
                    deployer = context().deployer()
                    for spec in stack_specs(settings):
                        if spec.environment is None:
                            deployer.deploy(
                                spec.stack_name, (project.root / "cloudformation" / spec.file_name).read_text(), {}
                            )
                    extra.append(("bootstrap (registry, ci-access)", time.perf_counter() - start))

                    def run(env: str, tag: str, label: str, note: str) -> bool:
                        start = time.perf_counter()
                        try:
                            report = release(context(), env, tag)
                            outcome = report.outcome.value
                        except ReleaseFailed as failed:
                            report, outcome = failed.report, f"FAILED: {failed.message}"
                        except Exception as exc:  # noqa: BLE001 - print what was measured, then why it stopped
                            rows.append(
                                Row(label, note, {}, time.perf_counter() - start, f"ERROR {type(exc).__name__}: {exc}")
                            )
                            return False
                        wall = time.perf_counter() - start
                        serves = (
                            served_version(report.url, settings.smoke.path, settings.smoke.request)
                            if report.url
                            else "-"
                        )
                        rows.append(Row(label, note, {p.name: p.seconds for p in report.phases}, wall, outcome, serves))
                        return outcome == "released"

                    ok = run("staging", "v1.0.0", "staging v1.0.0", "first: cold build, creates stack")
                    ok = ok and run("production", "v1.0.0", "production v1.0.0", "first: creates stack, no build")
                    ok = ok and run("staging", "v1.1.0", "staging v1.1.0", "build included")
                    if ok:
                        start = time.perf_counter()
                        build_image(settings, "1.2.0", BuildahBuilder(), lines.append)
                        extra.append(("prebuild of 1.2.0 (before its release)", time.perf_counter() - start))
                    ok = ok and run("staging", "v1.2.0", "staging v1.2.0", "image prebuilt")
                    ok = ok and run("production", "v1.2.0", "production v1.2.0", "promotion, no build")
                start = time.perf_counter()
            extra.append(("local ground down", time.perf_counter() - start))

    print(f"release engine on the local ground (time_scale {TIME_SCALE}, poll 0.05 s, buildah, busybox model image)")
    header = (
        f"{'release':<18} {'':<33}"
        + "".join(f"{p:>8}" for p in PHASES)
        + f"{'total':>8}{'no build':>9}{'wall':>8}{'serves':>8}  outcome"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = "".join(f"{r.phases[p]:>7.2f}s" if p in r.phases else f"{'-':>8}" for p in PHASES)
        print(
            f"{r.label:<18} {r.note:<33}{cells}{r.total:>7.2f}s{r.without_build:>8.2f}s{r.wall:>7.2f}s{r.serves:>8}  {r.outcome}"
        )
    print()
    for name, seconds in extra:
        print(f"{name:<40} {seconds:>7.2f}s")
    print(f"{'benchmark, start to end':<40} {time.perf_counter() - began:>7.2f}s")
    updates = [r for r in rows[2:] if r.phases]
    if updates and all(r.outcome == "released" for r in rows):
        slowest = max(updates, key=lambda r: r.without_build)
        verdict = "met" if slowest.without_build < GOAL_SECONDS else "MISSED"
        print(
            f"goal: release without build under {GOAL_SECONDS:.0f} s (releases after the first): {verdict}, slowest {slowest.without_build:.2f}s ({slowest.label})"
        )
    else:
        print("goal: release without build under 10 s: not measured, a release did not finish; last output:")
        for line in lines[-25:]:
            print(f"  {line}")


if __name__ == "__main__":
    main()
