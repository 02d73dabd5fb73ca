"""Measured on the local ground: what a bad version costs under a canary release with the model gate.

LocalGround(time_scale=0.02) with real tasks behind the local load balancer (the busybox stand-in of
tests/images/model and its variants, as tests/steps/test_traffic_release.py builds them), staging as a
canary (10%, canary bake 5 min = 6 s here, bake 1 min) with the golden-set gate. A client sends
production requests through the service URL during each release and records which version answered.

Per release: the outcome, the production requests the new version served (count and share), and the
time from the pipeline's rollback decision until the production rule sends nothing to the new version
(ReleaseReport.traffic_back_seconds: polled every 50 ms, so the figure is within 0.05 s above the truth).
Time is scaled for AWS's waits only: the decision-to-traffic-back figure is the ground's own ModifyRule
path, not AWS's. Prints a table; asserts nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RELEASES = (  # tag, image variant, what it is
    ("v1.0.0", "model", "first release (creates the service: nothing to shift)"),
    ("v1.1.0", "model", "a good model"),
    ("v1.2.0", "model-wrong", "healthy but wrong (every answer wrong)"),
    ("v1.3.0", "model-5xx", "fails only under production traffic (5xx on GET)"),
)


def main() -> None:
    warnings.filterwarnings("ignore", module="moto")
    logging.getLogger("moto").setLevel(logging.ERROR)
    from local_ground.environ import scoped_environ
    from local_ground.ground import LocalGround
    from pipeline.errors import ReleaseFailed
    from pipeline.steps.release import release
    from pipeline.templates import stack_specs
    from tests.projects import make_project
    from tests.steps.test_traffic_release import (
        ERRORS_ON_GET,
        GOLDEN,
        WRONG,
        Production,
        context,
        settings_for,
        variant,
    )

    rows: list[tuple[str, str, str, str, str, str]] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-traffic-") as scratch:
        work = Path(scratch)
        (work / "project").mkdir()
        with scoped_environ({"PIPELINE_BUILDAH_ROOT": str(work / "buildah")}):
            project = make_project(work / "project")
            (project.root / "golden.jsonl").write_text("".join(json.dumps(row) + "\n" for row in GOLDEN))
            variant(project, "model-wrong", answer=WRONG)
            variant(project, "model-5xx", head=ERRORS_ON_GET)
            with LocalGround(github_repository=project.settings.app.github_repository, time_scale=0.02) as ground:
                with scoped_environ(ground.environ()):
                    for tag, _, _ in RELEASES:
                        ground.github.create_tag(tag)
                    settings = settings_for(project)
                    ctx = context(settings, [])
                    for spec in stack_specs(settings):
                        if spec.environment is None:
                            ctx.deployer().deploy(spec.stack_name, ctx.committed_template(spec.file_name), {})
                    url = ""
                    for tag, image, what in RELEASES:
                        settings = settings_for(project, image)
                        start = time.perf_counter()
                        with Production(url) if url else contextlib.nullcontext() as production:
                            try:
                                report = release(context(settings, []), "staging", tag)
                                outcome = report.outcome.value
                            except ReleaseFailed as failed:
                                report, outcome = failed.report, f"rolled back: {failed.report.cause.split(':')[0]}"
                        wall = time.perf_counter() - start
                        url = url or report.url
                        share = "-"
                        if production is not None and production.answers:
                            # the new version's answers: its version in the body, or (model-5xx) a 500
                            served = production.served_by(tag.lstrip("v")) + sum(
                                1 for _, code, _ in production.answers if code == 500
                            )
                            total = len(production.answers)
                            share = f"{served} of {total} ({100 * served / total:.1f}%)"
                        back = f"{report.traffic_back_seconds:.2f}" if report.traffic_back_seconds is not None else "-"
                        rows.append((f"{tag} {what}", outcome, share, back, f"{wall:.1f}", ""))
    print(
        "| release | outcome | production requests the new version served | decision to traffic back (s) | wall (s) |"
    )
    print("|---|---|---|---|---|")
    for label, outcome, share, back, wall, _ in rows:
        print(f"| {label} | {outcome} | {share} | {back} | {wall} |")
    print(f"\n(measured in {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
