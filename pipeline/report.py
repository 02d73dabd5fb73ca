"""What a release or rollback did (its report, phase by phase), and how it reads: a table on the
terminal, Markdown (with a Mermaid gantt of its phases, and of the service deployment's lifecycle stages
under a traffic-shifting strategy) for GitHub."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class ReleaseOutcome(Enum):
    RELEASED = "released"
    ROLLED_BACK = "rolled back"  # failed, and the previous version serves again
    FAILED = "failed"  # failed with nothing to go back to
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM (a cancelled job): the rollout in flight was stopped
    PREVIEWED = "previewed"  # --dry-run: the change set was shown and deleted, nothing executed


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    seconds: float
    ok: bool


@dataclass
class ReleaseReport:
    kind: str  # release | rollback
    environment: str
    version: str
    digest: str = ""
    url: str = ""
    outcome: ReleaseOutcome = ReleaseOutcome.FAILED
    cause: str = ""
    restored_version: str = ""
    changes: list[str] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)  # a traffic-shifting strategy's decisions and figures
    traffic_back_seconds: float | None = None  # from a rollback decision to production on the old version
    stages: list[Phase] = field(default_factory=list)  # the service deployment's lifecycle stages (traffic shifting)

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases)


def report_dict(report: ReleaseReport) -> dict[str, object]:
    """The report as `--output json` prints it."""
    return {
        "kind": report.kind,
        "environment": report.environment,
        "version": report.version,
        "digest": report.digest,
        "url": report.url,
        "outcome": report.outcome.value,
        "cause": report.cause,
        "restored_version": report.restored_version,
        "changes": list(report.changes),
        "phases": [{"name": p.name, "seconds": round(p.seconds, 3), "ok": p.ok} for p in report.phases],
        "stages": [{"name": p.name, "seconds": round(p.seconds, 3), "ok": p.ok} for p in report.stages],
        "seconds": round(report.seconds, 3),
    }


def report_table(report: ReleaseReport) -> str:
    rows = [
        ("outcome", report.outcome.value),
        ("environment", report.environment),
        ("version", report.version),
        ("digest", report.digest or "-"),
        ("url", report.url or "-"),
    ]
    if report.cause:
        rows.append(("cause", report.cause))
    if report.restored_version:
        rows.append(("now running", report.restored_version))
    rows += [(f"phase {p.name}", f"{p.seconds:6.1f}s {'ok' if p.ok else 'FAILED'}") for p in report.phases]
    rows.append(("total", f"{report.seconds:6.1f}s"))
    width = max(len(k) for k, _ in rows)
    title = f"{report.kind} {report.version} -> {report.environment}"
    return "\n".join([title, "-" * len(title)] + [f"{k:<{width}}  {v}" for k, v in rows])


def mermaid_gantt(report: ReleaseReport) -> str:
    """The phases on a time axis, from their measured start and duration."""
    if not report.phases:
        return ""
    origin = report.phases[0].start
    lines = [
        "```mermaid",
        "gantt",
        f"    title {report.kind} {report.version} to {report.environment}",
        "    dateFormat X",
        "    axisFormat %M:%S",
        "    section phases",
    ]
    lines += _bars(report.phases, origin)
    if report.stages:  # where the service deployment was while the deploy phase waited for it
        lines += ["    section lifecycle stages", *_bars(report.stages, origin)]
    lines.append("```")
    return "\n".join(lines)


def _bars(phases: list[Phase], origin: float) -> list[str]:
    bars = []
    for phase in phases:
        start = int(round(phase.start - origin))
        end = max(start + 1, int(round(phase.start - origin + phase.seconds)))
        tag = "done" if phase.ok else "crit"
        bars.append(f"    {phase.name} ({phase.seconds:.1f}s) :{tag}, {start}, {end}")
    return bars


def markdown_summary(report: ReleaseReport) -> str:
    icon = {"released": "✅", "rolled back": "↩️", "failed": "❌", "interrupted": "⏹️", "previewed": "👀"}[
        report.outcome.value
    ]
    lines = [
        f"## {icon} {report.kind} {report.version} to {report.environment}: {report.outcome.value}",
        "",
        "| | |",
        "|---|---|",
        f"| version | `{report.version}` |",
        f"| digest | `{report.digest or '-'}` |",
        f"| url | {report.url or '-'} |",
        f"| duration | {report.seconds:.1f}s |",
    ]
    if report.cause:
        lines.append(f"| cause | {report.cause} |")
    if report.restored_version:
        lines.append(f"| now running | `{report.restored_version}` |")
    lines += ["", "### Infrastructure changes", ""]
    lines += [f"- `{c}`" for c in report.changes] or ["- none"]
    if report.decisions:
        lines += ["", "### Traffic decisions", ""] + [f"- {d}" for d in report.decisions]
    lines += ["", "### Phases", "", mermaid_gantt(report), ""]
    return "\n".join(lines) + "\n"
