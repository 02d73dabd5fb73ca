"""Run the linters on the committed templates: cfn-lint (AWS resource schemas) and checkov (security)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import PipelineError

Echo = Callable[[str], None]
# cfn-lint from this interpreter's environment, whatever PATH holds.
CFN_LINT_MAIN = "import sys; from cfnlint.runner import main; sys.exit(main())"


def templates_in(root: Path) -> list[Path]:
    files = sorted((root / "cloudformation").glob("*.yaml"))
    if not files:
        raise PipelineError(f"no templates in {root / 'cloudformation'}", hint="Run `pipeline synth` first.")
    return files


def run_cfn_lint(files: list[Path], sarif: Path | None, echo: Echo) -> None:
    # Informational findings (I rules) count too: the templates must be spotless.
    base = [sys.executable, "-c", CFN_LINT_MAIN, "--include-checks", "I"]
    names = ["--", *map(str, files)]
    result = subprocess.run(base + names, capture_output=True, text=True)
    if sarif is not None:
        with sarif.open("w", encoding="utf-8") as out:
            subprocess.run(base + ["--format", "sarif"] + names, stdout=out, text=True)
    if result.returncode != 0:
        echo(result.stdout.rstrip() or result.stderr.rstrip())
        raise PipelineError(
            f"cfn-lint found problems in {len(files)} template(s)",
            hint="Fix the findings above in pipeline/templates/, then run `pipeline synth`.",
        )
    echo(f"cfn-lint: {len(files)} template(s), no findings")


def find_checkov(root: Path) -> str | None:
    candidates = [
        os.environ.get("PIPELINE_CHECKOV"),
        str(root / ".tools" / "checkov" / "bin" / "checkov"),
        shutil.which("checkov"),
    ]
    return next((c for c in candidates if c and Path(c).exists()), None)


def run_checkov(root: Path, echo: Echo) -> None:
    checkov = find_checkov(root)
    if checkov is None:
        raise PipelineError("checkov is not installed", hint="Run `make tools`, or pass --no-checkov.")
    cmd = [
        checkov,
        "-d",
        str(root / "cloudformation"),
        "--framework",
        "cloudformation",
        "--skip-download",
        "-o",
        "json",
        "--quiet",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise PipelineError(
            "checkov did not produce a report",
            hint=result.stderr.strip().splitlines()[-1] if result.stderr.strip() else None,
        ) from None
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    summary = [r.get("summary", {}) for r in reports]
    passed = sum(s.get("passed", 0) for s in summary)
    skipped = sum(s.get("skipped", 0) for s in summary)
    for check in failed:
        echo(f"  {check['check_id']} {check['file_path'].lstrip('/')} {check['resource']}: {check['check_name']}")
    if failed:
        raise PipelineError(
            f"checkov: {len(failed)} failed check(s)",
            hint="Fix them in pipeline/templates/, or suppress one with checkov_skip() and a written reason.",
        )
    echo(f"checkov: {passed} passed, 0 failed, {skipped} suppressed with a reason")


def _tool(name: str) -> str:
    """A console script installed beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise PipelineError(f"{name} is not installed", hint="Run `make setup` (it installs the lint extra).")
    return found


def run_workflow_lint(root: Path, echo: Echo) -> None:
    """zizmor (offline security audit) and GitHub's workflow schema on .github/workflows."""
    folder = root / ".github" / "workflows"
    files = sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml"))
    if not files:
        echo("workflows: none to lint")
        return
    audit = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", "--format", "plain", str(folder)],
        capture_output=True,
        text=True,
    )
    if audit.returncode != 0:
        echo(audit.stdout.rstrip())
        raise PipelineError(
            f"zizmor found problems in {folder}", hint="Fix the findings above; see https://docs.zizmor.sh/audits/."
        )
    schema = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True,
        text=True,
    )
    if schema.returncode != 0:
        echo(schema.stdout.rstrip() or schema.stderr.rstrip())
        raise PipelineError("workflows do not match GitHub's workflow schema", hint="Fix the keys named above.")
    echo(f"workflows: {len(files)} file(s), zizmor and GitHub's schema report nothing")


def run_linters(root: Path, *, sarif: Path | None, checkov: bool, echo: Echo, workflows: bool = True) -> None:
    files = templates_in(root)
    run_cfn_lint(files, sarif, echo)
    if checkov:
        run_checkov(root, echo)
    if workflows:
        run_workflow_lint(root, echo)
