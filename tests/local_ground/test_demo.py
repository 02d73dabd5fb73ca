"""The demo's own parts (`make demo` runs it whole): the scratch repository it hands to `pipeline local
exec`, and its reading of the report tables the `pipeline release | rollback` commands print."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from local_ground.demo import VERSIONS, parse_report, prepare_project
from pipeline import config
from pipeline.report import Phase, ReleaseOutcome, ReleaseReport, report_table

ROOT = Path(__file__).resolve().parents[2]


def phases(*timed: tuple[str, float, bool]) -> list[Phase]:
    found, start = [], 0.0
    for name, seconds, ok in timed:
        found.append(Phase(name, start, seconds, ok))
        start += seconds
    return found


REPORTS = [
    ReleaseReport(
        "release",
        "staging",
        "1.0.0",
        digest="sha256:" + "a" * 64,
        url="http://127.0.0.1:4000",
        outcome=ReleaseOutcome.RELEASED,
        phases=phases(("build", 1.8, True), ("check", 1.3, True), ("push", 1.7, True), ("deploy", 5.7, True)),
    ),
    ReleaseReport(
        "release",
        "staging",
        "1.2.0",
        digest="sha256:" + "b" * 64,
        outcome=ReleaseOutcome.ROLLED_BACK,
        cause="the circuit breaker stopped the rollout: Task failed ELB health checks",
        restored_version="1.1.0",
        phases=phases(("build", 3.2, True), ("deploy", 10.6, False)),
    ),
    ReleaseReport(
        "rollback", "production", "1.0.0", outcome=ReleaseOutcome.RELEASED, phases=phases(("deploy", 6.3, True))
    ),
]


@pytest.mark.parametrize("report", REPORTS, ids=lambda r: f"{r.kind}-{r.version}")
def test_the_demo_reads_back_the_report_table_the_cli_prints(report: ReleaseReport) -> None:
    printed = "==> deploy\nsome progress  with  spaces\n" + report_table(report) + "\n"
    read = parse_report(printed)
    assert read is not None
    assert (read.kind, read.environment, read.version, read.outcome) == (
        report.kind,
        report.environment,
        report.version,
        report.outcome,
    )
    assert (read.digest, read.url, read.cause, read.restored_version) == (
        report.digest,
        report.url,
        report.cause,
        report.restored_version,
    )
    assert [(p.name, p.seconds, p.ok) for p in read.phases] == [(p.name, p.seconds, p.ok) for p in report.phases]


def test_no_report_table_reads_as_none() -> None:
    assert parse_report("error: version 7.7.7 is not in ECR\n") is None


def test_the_scratch_project_is_a_tagged_repository_building_on_the_local_base(tmp_path: Path) -> None:
    before = (ROOT / "pipeline.toml").read_text()
    work = prepare_project(ROOT, tmp_path / "project", "localhost/pipeline-python-base:bookworm", lambda _: None)
    settings = config.load(work / "pipeline.toml")
    assert settings.image.builder == "buildah" and settings.image.context == "model-server"
    assert dict(settings.image.build_args) == {"BASE_IMAGE": "localhost/pipeline-python-base:bookworm"}
    assert (work / "model-server" / "Dockerfile").is_file() and (work / "cloudformation").is_dir()
    tags = subprocess.run(["git", "-C", str(work), "tag"], capture_output=True, text=True, check=True).stdout.split()
    assert tags == [version[0] for version in VERSIONS]
    assert (ROOT / "pipeline.toml").read_text() == before, "the checkout is left alone"
