"""What the workflows promise beyond lint: actions pinned by SHA with their tag, job timeouts that cover the
pipeline's worst case and end before the AWS session does, code scanning that works, dependabot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfn_flip import to_json

from pipeline.config import Settings

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PINNED = re.compile(r"^\s+- uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$", re.M)
# Each SHA was checked against its tag in the action's repository (git rev-parse TAG^{commit}), and its
# action.yml runs on node24 (pypa/gh-action-pypi-publish is a Docker action: v1.8.14 is the newest tag
# of its mirror here). Update them together (dependabot does).
EXPECTED = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "docker/setup-buildx-action": ("37fe631027851001ddb9b187196cc803df7f5f0e", "v4.3.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "github/codeql-action/upload-sarif": ("8aad20d150bbac5944a9f9d289da16a4b0d87c1e", "v4.36.2"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "pypa/gh-action-pypi-publish": ("81e9d935c883d0b210363ab89cf05f3894778450", "v1.8.14"),
}
# pipeline/steps/release.py: the stack wait allows rollout_timeout + this before giving up.
STACK_WAIT_MARGIN = 600


def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def worst_case_seconds(settings: Settings, environment: str) -> int:
    """A deploy that fails at the last moment, then the automatic restore: each one is the stack wait,
    the rollout and the smoke test; plus the pre-push check of a build."""
    env = settings.environment(environment)
    one_deploy = (
        (env.service.rollout_timeout + STACK_WAIT_MARGIN) + env.service.rollout_timeout + settings.smoke.timeout
    )
    return 2 * one_deploy + env.service.warmup + 30


def test_every_action_is_pinned_by_sha_with_its_tag() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        text = path.read_text()
        uses = re.findall(r"^\s+- uses: (\S+)", text, re.M)
        pinned = PINNED.findall(text)
        assert len(pinned) == len(uses), f"{path.name}: every uses: is ACTION@SHA # vX.Y.Z"
        for action, sha, tag in pinned:
            assert EXPECTED[action] == (sha, tag), f"{path.name}: {action}@{sha} # {tag}"


def test_the_deploy_role_session_outlasts_every_deploy_job(settings: Settings) -> None:
    template = yaml.safe_load(to_json((ROOT / "cloudformation" / "ci-access.yaml").read_text()))
    sessions = {
        props["Properties"]["MaxSessionDuration"]
        for name, props in template["Resources"].items()
        if name.startswith("DeployRole")
    }
    assert len(sessions) == 1, "every environment's deploy role allows the same session"
    (max_session,) = sessions
    for name in ("release.yml", "rollback.yml"):
        for job_id, job in workflow(name)["jobs"].items():
            credentials = next(s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws"))
            session = int(credentials["with"]["role-duration-seconds"])
            assert session == max_session, f"{name} {job_id}: the role allows what the job asks for, no more"
            job_seconds = int(job["timeout-minutes"]) * 60
            assert job_seconds <= session, f"{name} {job_id}: credentials expire before the job's timeout"
            environments = [job["environment"]] if "${{" not in str(job["environment"]) else settings.environment_names
            for environment in environments:
                worst = worst_case_seconds(settings, environment)
                assert worst <= job_seconds, f"{name} {job_id} ({environment}): worst case {worst}s > {job_seconds}s"


def test_the_worst_case_is_what_the_workflows_say(settings: Settings) -> None:
    """The comment in release.yml quotes the figure: 2 x (1500 + 900 + 120) s = 84 min."""
    assert {
        worst_case_seconds(settings, env) - settings.environment(env).service.warmup - 30
        for env in settings.environment_names
    } == {5040}
    assert "2 x (1500 + 900 + 120) s = 84 min" in (WORKFLOWS / "release.yml").read_text()


def test_code_scanning_upload_is_guarded_and_allowed() -> None:
    lint = workflow("lint.yml")
    assert lint[True]["push"] == {"branches": ["main"]}, "the default branch gives code scanning its baseline"
    job = lint["jobs"]["templates"]
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert upload["if"] == "always() && hashFiles('cfn-lint.sarif') != ''"
    assert job["permissions"]["actions"] == "read" and job["permissions"]["security-events"] == "write"


@pytest.mark.parametrize("ecosystem", ["github-actions", "pip", "docker"])
def test_dependabot_watches(ecosystem: str) -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert ecosystem in {u["package-ecosystem"] for u in config["updates"]}


def test_publish_gives_the_oidc_token_only_to_the_upload_in_the_pypi_environment() -> None:
    """Trusted publishing: PyPI trusts (repository, publish.yml, environment pypi). Only the job that
    uploads can ask for the token, and it runs no code of the repository (it gets the built files)."""
    publish = workflow("publish.yml")
    assert publish["permissions"] == {}
    jobs = publish["jobs"]
    with_token = {job_id for job_id, job in jobs.items() if job.get("permissions", {}).get("id-token") == "write"}
    assert with_token == {"publish"}
    job = jobs["publish"]
    assert job["permissions"] == {"id-token": "write"}
    assert job["environment"]["name"] == "pypi" and job["needs"] == "build"
    assert all("run" not in step for step in job["steps"]), "the job with the token runs only the pinned actions"
    assert job["steps"][-1]["uses"].startswith("pypa/gh-action-pypi-publish@")
    assert jobs["build"]["permissions"] == {"contents": "read"}


def test_the_tool_and_the_models_have_separate_tag_lines() -> None:
    """`v*` tags are model versions (release.yml); `tool-v*` tags release the tool itself (publish.yml)."""
    assert workflow("publish.yml")[True]["push"] == {"tags": ["tool-v*.*.*"]}
    assert workflow("release.yml")[True]["push"] == {"tags": ["v*.*.*"]}


def test_rollback_deploys_the_restored_versions_templates_as_init_writes_it(settings: Settings) -> None:
    """Resolve the version (GitHub only, before any AWS role), check out its tag, roll back from there;
    the committed rollback.yml and the one `pipeline init` writes take the same steps."""
    from pipeline.workflows import rollback_yml

    def steps(document: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in document["jobs"]["rollback"]["steps"] if not s.get("name", "").startswith("Install")]

    committed, rendered = steps(workflow("rollback.yml")), steps(yaml.safe_load(rollback_yml(settings)))
    assert committed == rendered
    names = [s.get("name") or s["uses"].split("@")[0] for s in committed]
    assert names == [
        "actions/checkout",
        "actions/setup-python",
        "Resolve the version to restore (the pipeline validates both inputs)",
        "actions/checkout",
        "aws-actions/configure-aws-credentials",
        "Roll back with that version's templates",
    ]
    resolve, restored, roll = committed[2], committed[3], committed[5]
    assert resolve["id"] == "resolve" and resolve["run"].endswith("--resolve")
    assert restored["with"] == {
        "ref": "v${{ steps.resolve.outputs.version }}",
        "path": "restored",
        "persist-credentials": False,
    }
    assert roll["working-directory"] == "restored"
    assert roll["env"]["VERSION"] == "${{ steps.resolve.outputs.version }}"
