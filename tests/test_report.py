"""The release report as it reads on GitHub: the Mermaid gantt of phases and lifecycle stages."""

from __future__ import annotations

from pipeline.report import Phase, ReleaseOutcome, ReleaseReport, mermaid_gantt, report_dict


def canary_report() -> ReleaseReport:
    report = ReleaseReport("release", "production", "1.2.0", outcome=ReleaseOutcome.ROLLED_BACK)
    report.phases = [Phase("build", 100.0, 20.0, True), Phase("deploy", 120.0, 90.0, False)]
    report.stages = [
        Phase("POST_TEST_TRAFFIC_SHIFT", 130.0, 10.0, True),
        Phase("PRODUCTION_TRAFFIC_SHIFT", 140.0, 50.4, False),
    ]
    return report


def test_the_gantt_puts_the_lifecycle_stages_on_the_phases_time_axis() -> None:
    gantt = mermaid_gantt(canary_report()).splitlines()
    assert gantt[gantt.index("    section phases") + 1 :] == [
        "    build (20.0s) :done, 0, 20",
        "    deploy (90.0s) :crit, 20, 110",
        "    section lifecycle stages",
        "    POST_TEST_TRAFFIC_SHIFT (10.0s) :done, 30, 40",
        "    PRODUCTION_TRAFFIC_SHIFT (50.4s) :crit, 40, 90",
        "```",
    ]


def test_a_rolling_release_has_no_stages_section() -> None:
    report = canary_report()
    report.stages = []
    assert "lifecycle stages" not in mermaid_gantt(report)
    assert report_dict(report)["stages"] == []
