"""A small, strict stand-in for the GitHub Actions runner: it executes a workflow's `run:` steps.

What it does, as GitHub does it:
- jobs in `needs` order; a job whose needed job did not succeed is skipped;
- each `run:` step through `bash --noprofile --norc -eo pipefail FILE` (the `bash -e {0}` default shell
  for Linux runners), with GITHUB_WORKSPACE as working directory;
- the default environment (CI, GITHUB_REF, GITHUB_REF_NAME, GITHUB_EVENT_NAME, GITHUB_EVENT_PATH,
  GITHUB_STEP_SUMMARY per step, RUNNER_TEMP, ...) plus the workflow, job and step `env:` blocks;
- step `if:` with the implicit `success()`, so a failed step skips the rest unless `always()`;
- a `workflow_dispatch` refuses missing inputs and choices outside `options`; a push only triggers
  the workflow when the tag matches its `tags` filter.

- `vars` as GitHub resolves them: the repository's, overridden by the job's environment's
  (`environment_vars`), so `${{ vars.AWS_DEPLOY_ROLE_ARN }}` is each environment's own role;
- a job whose `permissions` grant `id-token: write` gets ACTIONS_ID_TOKEN_REQUEST_URL and
  ACTIONS_ID_TOKEN_REQUEST_TOKEN (from `id_token_request`, given the job's claims: event, ref,
  environment, workflow), and `aws-actions/configure-aws-credentials` does what the real action does
  with `role-to-assume`: it requests the job's ID token (audience sts.amazonaws.com) from that URL,
  calls STS AssumeRoleWithWebIdentity at AWS_ENDPOINT_URL with `role-duration-seconds`, checks the
  session with GetCallerIdentity and exports AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
  AWS_SESSION_TOKEN, AWS_REGION and AWS_DEFAULT_REGION to the later steps. A refusal fails the step
  with the action's "Could not assume role with OIDC: MESSAGE" (the real action retries first).

- step outputs (`GITHUB_OUTPUT` of a step with an `id`) as `steps.ID.outputs.NAME`, '' when unset;
- "Re-run failed jobs" / "Re-run all jobs" (`rerun`): the same GITHUB_RUN_ID, the next
  GITHUB_RUN_ATTEMPT; a job not re-run keeps its earlier result;
- the Cancel button (`cancel`): SIGINT to the running step's processes, SIGTERM 7.5 s later, SIGKILL
  2.5 s after that; the step and job end `cancelled` and later jobs are skipped.

What it does not do: other `uses:` steps are skipped (and logged), as is an action that answers None. A `run:` text listed in
`substitutions` is checked to be exactly that text and is not executed; the caller says why. `${{ }}` expressions are evaluated for the few forms
the workflows use; anything else raises WorkflowError instead of guessing.

GITHUB_TOKEN is not in the default environment (GitHub does not put it there either): a step gets it
only through `env: GITHUB_TOKEN: ${{ github.token }}`, which is what the workflows must get right.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import BotoCoreError, ClientError

# Longest a step may run here, whatever the job's timeout-minutes says.
STEP_TIMEOUT_CAP = 300.0

JOB_KEYS = {
    "name",
    "if",
    "runs-on",
    "timeout-minutes",
    "environment",
    "concurrency",
    "permissions",
    "steps",
    "needs",
    "env",
}
STEP_KEYS = {"name", "id", "uses", "with", "run", "env", "if", "shell", "working-directory"}
GITHUB_FIELDS = {"token", "repository", "base_ref", "head_ref", "ref", "ref_name", "event_name"}
# The `github.event.*` paths the workflows read; any other is an error, not an empty string.
EVENT_PATHS = {"pull_request.number", "pull_request.head.repo.full_name"}
STATUS_FUNCTIONS = {"always()", "success()", "failure()", "cancelled()"}
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
CONTEXT_PATH = re.compile(r"^(github|inputs|vars|secrets|steps)\.([A-Za-z_][\w.-]*)$")
STEP_OUTPUT = re.compile(r"^([A-Za-z_][\w-]*)\.outputs\.([A-Za-z_][\w-]*)$")


class WorkflowError(Exception):
    """The workflow uses something this runner does not understand, or the test set it up wrong."""


@dataclass
class Event:
    """What triggered the run: the event name, its ref and the webhook payload."""

    name: str
    ref: str
    payload: dict[str, Any]
    inputs: dict[str, str] = field(default_factory=dict)
    base_ref: str = ""
    head_ref: str = ""

    @property
    def ref_name(self) -> str:
        for prefix in ("refs/tags/", "refs/heads/"):
            if self.ref.startswith(prefix):
                return self.ref[len(prefix) :]
        return self.ref.removeprefix("refs/")

    @classmethod
    def tag_push(cls, tag: str, repository: str) -> Event:
        ref = f"refs/tags/{tag}"
        return cls("push", ref, {"ref": ref, "created": True, "repository": {"full_name": repository}})

    @classmethod
    def dispatch(cls, inputs: dict[str, str], repository: str, branch: str = "main") -> Event:
        ref = f"refs/heads/{branch}"
        return cls(
            "workflow_dispatch",
            ref,
            {"ref": ref, "inputs": dict(inputs), "repository": {"full_name": repository}},
            inputs=dict(inputs),
        )

    @classmethod
    def pull_request(
        cls, number: int, repository: str, base: str = "main", head: str = "feature", head_repository: str | None = None
    ) -> Event:
        head_repo = head_repository or repository
        payload = {
            "action": "synchronize",
            "number": number,
            "pull_request": {
                "number": number,
                "base": {"ref": base, "repo": {"full_name": repository}},
                "head": {"ref": head, "repo": {"full_name": head_repo, "fork": head_repo != repository}},
            },
            "repository": {"full_name": repository},
        }
        return cls("pull_request", f"refs/pull/{number}/merge", payload, base_ref=base, head_ref=head)


@dataclass
class StepResult:
    job: str
    name: str
    status: str  # success | failure | skipped | substituted
    exit_code: int | None = None
    output: str = ""
    note: str = ""


@dataclass
class JobResult:
    job_id: str
    name: str
    status: str  # success | failure | skipped
    steps: list[StepResult] = field(default_factory=list)
    summary: str = ""
    environment: str = ""
    environment_url: str = ""  # `environment.url`, evaluated when the job ends (as GitHub does)

    def step(self, name: str) -> StepResult:
        found = [s for s in self.steps if s.name == name]
        if len(found) != 1:
            raise KeyError(f"{self.job_id} has no single step named {name!r}: {[s.name for s in self.steps]}")
        return found[0]

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == "failure"), None)


@dataclass
class WorkflowResult:
    workflow: str
    jobs: dict[str, JobResult]
    run_id: str = ""  # GITHUB_RUN_ID: the same for every attempt of a run
    attempt: int = 1  # GITHUB_RUN_ATTEMPT

    @property
    def succeeded(self) -> bool:
        return all(j.status in ("success", "skipped") for j in self.jobs.values())  # a job whose if: is false

    def log(self) -> str:
        lines = [f"workflow {self.workflow}"]
        for job in self.jobs.values():
            lines.append(f"  job {job.job_id} ({job.name}): {job.status}")
            for step in job.steps:
                detail = f" [{step.note}]" if step.note else ""
                code = "" if step.exit_code is None else f" exit {step.exit_code}"
                lines.append(f"    {step.status:<11} {step.name}{code}{detail}")
        return "\n".join(lines)


# --- expressions -----------------------------------------------------------------------------------


@dataclass
class Contexts:
    github: dict[str, Any]
    event: dict[str, Any]
    inputs: dict[str, str]
    vars: dict[str, str]
    secrets: dict[str, str]
    steps: dict[str, dict[str, str]] = field(default_factory=dict)  # step id -> its outputs (this job's)


def _lookup(path: str, ctx: Contexts) -> Any:
    match = CONTEXT_PATH.match(path)
    if not match:
        raise WorkflowError(f"unsupported expression {path!r}")
    context, rest = match.groups()
    if context == "github":
        if rest.startswith("event."):
            sub = rest[len("event.") :]
            if sub not in EVENT_PATHS:
                raise WorkflowError(
                    f"unsupported expression github.{rest} (this runner knows github.event.{{{', '.join(sorted(EVENT_PATHS))}}})"
                )
            value: Any = ctx.event
            for part in sub.split("."):
                if not isinstance(value, dict) or part not in value:
                    raise WorkflowError(
                        f"github.{rest} is not in the {ctx.github['event_name']} event payload this test built"
                    )
                value = value[part]
            return value
        if rest not in GITHUB_FIELDS:
            raise WorkflowError(f"unsupported expression github.{rest}")
        return ctx.github[rest]
    if context == "steps":
        output = STEP_OUTPUT.match(rest)
        if not output:
            raise WorkflowError(f"unsupported expression steps.{rest} (only steps.ID.outputs.NAME)")
        step_id, name = output.groups()
        # GitHub renders an output the step did not set (or a step that did not run) as ''.
        return ctx.steps.get(step_id, {}).get(name, "")
    table: dict[str, str] = getattr(ctx, context)
    if "." in rest or rest not in table:
        raise WorkflowError(f"{context}.{rest} is not set for this run (known: {sorted(table)})")
    return table[rest]


def _operand(text: str, ctx: Contexts) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    return _lookup(text, ctx)


def evaluate(expression: str, ctx: Contexts) -> Any:
    """One expression of the supported forms: a context path, 'literal', `a == b`, `a != b`, or a status function."""
    expr = expression.strip()
    if expr in STATUS_FUNCTIONS:
        raise WorkflowError(f"{expr} is only meaningful in an if: condition")
    if re.search(r"&&|\|\||!(?!=)|\(|\)|<|>", expr) or expr.count("=") > 2:
        raise WorkflowError(f"unsupported expression {expr!r}: only paths, literals, == and != are understood")
    for operator in ("!=", "=="):
        if operator in expr:
            left, right = expr.split(operator, 1)
            a, b = _operand(left, ctx), _operand(right, ctx)
            if isinstance(a, str) and isinstance(b, str):
                a, b = a.lower(), b.lower()  # GitHub compares strings ignoring case
            return (a != b) if operator == "!=" else (a == b)
    return _operand(expr, ctx)


def _to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def interpolate(value: Any, ctx: Contexts) -> str:
    """A YAML scalar with its `${{ }}` parts replaced by their values (as GitHub renders them)."""
    text = _to_text(value)
    return EXPRESSION.sub(lambda m: _to_text(evaluate(m.group(1), ctx)), text)


# `always() && hashFiles('FILE') != ''`: run even after a failure, but only when the step before wrote FILE.
ALWAYS_IF_FILE = re.compile(r"^always\(\) && hashFiles\('([^'*?]+)'\) != ''$")


def condition(raw: Any, ctx: Contexts, *, job_failed: bool, workspace: Path | None = None) -> bool:
    """A step's `if:`; without a status function GitHub adds `success() &&`."""
    if raw is None:
        return not job_failed
    text = str(raw).strip()
    whole = EXPRESSION.fullmatch(text)
    if whole:
        text = whole.group(1).strip()
    elif "${{" in text:
        raise WorkflowError(f"unsupported if: {raw!r}")
    guarded = ALWAYS_IF_FILE.match(text)
    if guarded and workspace is not None:
        return (workspace / guarded.group(1)).is_file()
    if text == "always()":
        return True
    if text == "success()":
        return not job_failed
    if text == "failure()":
        return job_failed
    if text == "cancelled()":
        return False
    if "&&" in text:
        # `a && b && ...` of supported terms (no status function, no ||, no parentheses), as the lint
        # workflow `pipeline init` writes uses; every term is evaluated, so each is checked.
        terms = [term.strip() for term in text.split("&&")]
        if any(term in STATUS_FUNCTIONS for term in terms):
            raise WorkflowError(f"unsupported if: {raw!r} (a status function in a conjunction)")
        values = [bool(evaluate(term, ctx)) for term in terms]
        return (not job_failed) and all(values)
    return (not job_failed) and bool(evaluate(text, ctx))


# --- triggers ----------------------------------------------------------------------------------------


def _glob(pattern: str) -> re.Pattern[str]:
    """GitHub's filter patterns: * matches anything but /, ** anything."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] in "?+[]!":
            raise WorkflowError(f"filter pattern {pattern!r}: only * and ** are supported here")
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or "jobs" not in document:
        raise WorkflowError(f"{path} is not a workflow")
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True) if True in document else document.get("on")
    return document


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    on = workflow["on"]
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {name: {} for name in on}
    return {name: (spec or {}) for name, spec in on.items()}


def is_triggered(workflow: dict[str, Any], event: Event) -> bool:
    spec = triggers(workflow).get(event.name)
    if spec is None:
        return False
    if event.name == "push":
        kind = "tags" if event.ref.startswith("refs/tags/") else "branches"
        patterns = spec.get(kind)
        other = spec.get("branches" if kind == "tags" else "tags")
        if patterns is None:
            return other is None  # a filter on the other kind only: this push does not match
        return any(_glob(p).match(event.ref_name) for p in patterns)
    if event.name == "pull_request" and "branches" in spec:
        return any(_glob(p).match(event.base_ref) for p in spec["branches"])
    return True


def dispatch_inputs(workflow: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """The inputs GitHub would accept: defaults filled in, required ones present, choices respected."""
    declared = triggers(workflow).get("workflow_dispatch", {}).get("inputs", {}) or {}
    unknown = set(given) - set(declared)
    if unknown:
        raise WorkflowError(f"unexpected inputs {sorted(unknown)}")
    resolved: dict[str, str] = {}
    for name, spec in declared.items():
        value = given.get(name, spec.get("default"))
        if value in (None, "") and spec.get("required"):
            raise WorkflowError(f"input {name!r} is required")
        value = _to_text(value)
        if spec.get("type") == "choice" and value not in spec.get("options", []):
            raise WorkflowError(f"input {name!r}: {value!r} is not one of {spec.get('options')}")
        resolved[name] = value
    return resolved


def job_order(jobs: dict[str, Any]) -> list[str]:
    order: list[str] = []
    visiting: set[str] = set()

    def visit(job_id: str) -> None:
        if job_id in order:
            return
        if job_id in visiting:
            raise WorkflowError(f"needs cycle at {job_id}")
        if job_id not in jobs:
            raise WorkflowError(f"needs names an unknown job {job_id!r}")
        visiting.add(job_id)
        for need in _needs(jobs[job_id]):
            visit(need)
        order.append(job_id)

    for job_id in jobs:
        visit(job_id)
    return order


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


# --- actions the runner runs ------------------------------------------------------------------------


class ActionFailed(Exception):
    """The action failed its step (core.setFailed), with this message."""


@dataclass
class ActionOutcome:
    exports: dict[str, str]  # what the action adds to the environment of the job's later steps
    log: str = ""


# (the step's evaluated `with:`, the environment the action's process sees) -> its outcome, or None
# when this runner does not do what the step asks (recorded as skipped, as for an unknown action)
Action = Callable[[dict[str, str], dict[str, str]], ActionOutcome | None]

STS_AUDIENCE = "sts.amazonaws.com"
ROLE_SESSION_NAME = "GitHubActions"  # the action's default role-session-name


def _job_id_token(env: dict[str, str], audience: str) -> str:
    """@actions/core getIDToken: GET ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD with the request token."""
    url, bearer = env.get("ACTIONS_ID_TOKEN_REQUEST_URL"), env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not bearer:
        raise ActionFailed(
            "Credentials could not be loaded, please check your action inputs: Could not load credentials from "
            "any providers (no ACTIONS_ID_TOKEN_REQUEST_URL: the job lacks `permissions: id-token: write`)"
        )
    separator = "&" if "?" in url else "?"
    request = urllib.request.Request(
        f"{url}{separator}{urllib.parse.urlencode({'audience': audience})}",
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # nosec B310 # the runner's own token URL
            token = json.loads(answer.read()).get("value")
    except (urllib.error.URLError, ValueError) as error:
        raise ActionFailed(f"Error message: Failed to get ID Token. {error}") from None
    if not token:
        raise ActionFailed("Error message: Response json body do not have ID Token field")
    return str(token)


def configure_aws_credentials(inputs: dict[str, str], env: dict[str, str]) -> ActionOutcome:
    """aws-actions/configure-aws-credentials with `role-to-assume` through GitHub's OIDC provider."""
    unsupported = set(inputs) - {
        "role-to-assume",
        "aws-region",
        "role-duration-seconds",
        "role-session-name",
        "audience",
    }
    if unsupported:
        raise WorkflowError(f"configure-aws-credentials: inputs this runner does not implement: {sorted(unsupported)}")
    region, role = inputs.get("aws-region", ""), inputs.get("role-to-assume", "")
    if not region:
        raise ActionFailed("Input required and not supplied: aws-region")
    if not role:
        raise WorkflowError("configure-aws-credentials without role-to-assume: only the OIDC path is implemented here")
    duration = int(inputs.get("role-duration-seconds") or 3600)
    log = ["Assuming role with OIDC"]
    token = _job_id_token(env, inputs.get("audience") or STS_AUDIENCE)
    endpoint = env.get("AWS_ENDPOINT_URL") or None
    try:
        sts = boto3.client("sts", region_name=region, endpoint_url=endpoint)
        credentials = sts.assume_role_with_web_identity(
            RoleArn=role,
            RoleSessionName=inputs.get("role-session-name") or ROLE_SESSION_NAME,
            WebIdentityToken=token,
            DurationSeconds=duration,
        )["Credentials"]
        session = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
        caller = boto3.client("sts", region_name=region, endpoint_url=endpoint, **session).get_caller_identity()
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise ActionFailed(
            f"Could not assume role with OIDC: {detail.get('Message', error)} ({detail.get('Code', '?')})"
        ) from None
    except BotoCoreError as error:
        raise ActionFailed(f"Could not assume role with OIDC: {error}") from None
    log.append(f"Authenticated as assumedRoleId {caller['Arn']}")
    exports = {
        "AWS_ACCESS_KEY_ID": session["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": session["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": session["aws_session_token"],
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }
    return ActionOutcome(exports, "\n".join(log))


BUILTIN_ACTIONS: dict[str, Action] = {"aws-actions/configure-aws-credentials": configure_aws_credentials}


def _permissions(workflow: dict[str, Any], job: dict[str, Any]) -> dict[str, str]:
    """The job's GITHUB_TOKEN permissions: its own block, else the workflow's (id-token none by default)."""
    granted = job.get("permissions", workflow.get("permissions"))
    if granted in ("write-all", "read-all"):
        level = granted.split("-", 1)[0]
        return {"id-token": level}
    if isinstance(granted, dict):
        return {str(k): str(v) for k, v in granted.items()}
    if granted is None:
        return {}
    raise WorkflowError(f"permissions: {granted!r} not understood")


TOKEN_SCOPES = ("actions", "checks", "contents", "deployments", "id-token", "issues", "pull-requests", "statuses")


def _token_permissions(workflow: dict[str, Any], job: dict[str, Any]) -> dict[str, str]:
    """What the job's GITHUB_TOKEN may do: a `permissions:` map grants what it lists and nothing else;
    read-all/write-all every scope; none at all the repository's default (here the permissive one)."""
    granted = job.get("permissions", workflow.get("permissions"))
    if isinstance(granted, dict):
        return {str(k): str(v) for k, v in granted.items()}
    level = "read" if granted == "read-all" else "write"
    return {scope: level for scope in TOKEN_SCOPES}


# --- the runner ------------------------------------------------------------------------------------

# keywords of LocalGitHub.id_token_request: the job's claims -> (request URL, request token)
IdTokenRequest = Callable[..., tuple[str, str]]


@dataclass
class Runner:
    workspace: Path
    temp: Path
    repository: str
    api_url: str
    token: str
    machine_env: dict[str, str]
    vars: dict[str, str] = field(default_factory=dict)  # the repository's variables
    # GitHub environment -> its variables (they override the repository's in that environment's jobs)
    environment_vars: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    # exact `run:` text -> why it is not executed here
    substitutions: dict[str, str] = field(default_factory=dict)
    # for jobs with `id-token: write`: their ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN (None: the job gets none)
    id_token_request: IdTokenRequest | None = None
    # a job's GITHUB_TOKEN with the job's permissions (GitHub mints one per job); None: `token` for every job
    job_token: Callable[[dict[str, str]], str] | None = None
    # action name without @ref -> what runs for it; any other `uses:` is skipped
    actions: dict[str, Action] = field(default_factory=lambda: dict(BUILTIN_ACTIONS))
    echo: Callable[[str], None] = print
    # called with a job's id before it runs (a test arranges what that job meets)
    before_job: Callable[[str], None] | None = None
    # (job id, the running step's output so far) -> True to cancel the run now, as the Cancel button does:
    # SIGINT to the step's processes, SIGTERM `cancel_grace` s later, SIGKILL `kill_grace` s after that
    cancel: Callable[[str, str], bool] | None = None
    cancel_grace: float = 7.5
    kill_grace: float = 2.5

    def rerun(
        self, workflow_path: Path, event: Event, previous: WorkflowResult, *, failed_only: bool
    ) -> WorkflowResult:
        """ "Re-run failed jobs" (the jobs that did not succeed, and the ones needing them) or "Re-run all
        jobs": the same run id, the next attempt; a job that is not re-run keeps its earlier result."""
        keep = {j: r for j, r in previous.jobs.items() if r.status == "success"} if failed_only else {}
        return self.run(workflow_path, event, run_id=previous.run_id, attempt=previous.attempt + 1, keep=keep)

    def run(
        self,
        workflow_path: Path,
        event: Event,
        *,
        run_id: str | None = None,
        attempt: int = 1,
        keep: dict[str, JobResult] | None = None,
    ) -> WorkflowResult:
        workflow = load(workflow_path)
        if not is_triggered(workflow, event):
            raise WorkflowError(f"{workflow_path.name} is not triggered by {event.name} {event.ref}")
        if event.name == "workflow_dispatch":
            event.inputs = dispatch_inputs(workflow, event.inputs)
            event.payload["inputs"] = dict(event.inputs)
        run_dir = self.temp / f"run-{uuid.uuid4().hex[:8]}"
        run_dir.mkdir(parents=True)
        run_id = run_id or run_dir.name
        event_path = run_dir / "event.json"
        event_path.write_text(json.dumps(event.payload, indent=2), encoding="utf-8")
        ctx = Contexts(
            github={
                "token": self.token,
                "repository": self.repository,
                "base_ref": event.base_ref,
                "head_ref": event.head_ref,
                "ref": event.ref,
                "ref_name": event.ref_name,
                "event_name": event.name,
            },
            event=event.payload,
            inputs=event.inputs,
            vars=self.vars,
            secrets=self.secrets,
        )
        used: set[str] = set()
        results: dict[str, JobResult] = {}
        workflow_env = {k: interpolate(v, ctx) for k, v in (workflow.get("env") or {}).items()}
        for job_id in job_order(workflow["jobs"]):
            job = workflow["jobs"][job_id]
            if any(results[n].status != "success" for n in _needs(job)):
                results[job_id] = JobResult(job_id, str(job.get("name", job_id)), "skipped")
                self.echo(f"[{job_id}] skipped: a needed job did not succeed")
                continue
            if keep and job_id in keep:
                results[job_id] = keep[job_id]
                self.echo(f"[{job_id}] not re-run: it succeeded in attempt {attempt - 1}")
                continue
            if "if" in job and not condition(job["if"], ctx, job_failed=False):
                results[job_id] = JobResult(job_id, str(job.get("name", job_id)), "skipped")
                self.echo(f"[{job_id}] skipped: its if: is false")
                continue
            if self.before_job is not None:
                self.before_job(job_id)
            results[job_id] = self._run_job(
                workflow_path,
                workflow,
                job_id,
                job,
                event,
                event_path,
                ctx,
                workflow_env,
                run_dir,
                used,
                run_id,
                attempt,
            )
        unused = set(self.substitutions) - used
        if unused and all(r.status == "success" for r in results.values()):
            raise WorkflowError(f"substitutions for steps the workflow no longer has: {sorted(unused)}")
        result = WorkflowResult(workflow_path.name, results, run_id, attempt)
        self.echo(result.log())
        return result

    def _run_job(
        self,
        workflow_path: Path,
        workflow: dict[str, Any],
        job_id: str,
        job: dict[str, Any],
        event: Event,
        event_path: Path,
        ctx: Contexts,
        workflow_env: dict[str, str],
        run_dir: Path,
        used: set[str],
        run_id: str,
        attempt: int,
    ) -> JobResult:
        unknown = set(job) - JOB_KEYS
        if unknown:
            raise WorkflowError(f"job {job_id}: unsupported keys {sorted(unknown)}")
        result = JobResult(job_id, interpolate(job.get("name", job_id), ctx), "success")
        environment = job.get("environment")
        environment_url = None
        if isinstance(environment, dict):
            unknown = set(environment) - {"name", "url"}
            if unknown:
                raise WorkflowError(f"job {job_id}: environment keys {sorted(unknown)} are not understood")
            environment, environment_url = environment.get("name"), environment.get("url")
        result.environment = interpolate(environment, ctx) if environment else ""
        concurrency = job.get("concurrency")
        if concurrency:  # evaluated so that every expression in the file is one this runner understands
            interpolate(concurrency.get("group") if isinstance(concurrency, dict) else concurrency, ctx)
        # From here on the job runs in its environment: that environment's variables win.
        github = ctx.github
        if self.job_token is not None:  # the job's own GITHUB_TOKEN, holding only what `permissions:` grant
            github = {**github, "token": self.job_token(_token_permissions(workflow, job))}
        ctx = Contexts(
            github,
            ctx.event,
            ctx.inputs,
            {**ctx.vars, **self.environment_vars.get(result.environment, {})},
            ctx.secrets,
            {},
        )
        timeout = min(STEP_TIMEOUT_CAP, float(job.get("timeout-minutes", 360)) * 60)
        job_dir = run_dir / job_id
        job_dir.mkdir()
        exported: dict[str, str] = {}
        runner_env: dict[str, str] = {}
        if _permissions(workflow, job).get("id-token") == "write" and self.id_token_request is not None:
            url, request_token = self.id_token_request(
                event_name=event.name,
                ref=event.ref,
                environment=result.environment or None,
                workflow=f".github/workflows/{workflow_path.name}",
            )
            runner_env = {"ACTIONS_ID_TOKEN_REQUEST_URL": url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token}
        job_env = {k: interpolate(v, ctx) for k, v in (job.get("env") or {}).items()}
        workflow_name = workflow_path.stem
        self.echo(f"[{job_id}] {result.name}" + (f" (environment {result.environment})" if result.environment else ""))
        failed = cancelled = False
        for index, step in enumerate(job.get("steps", [])):
            unknown = set(step) - STEP_KEYS
            if unknown:
                raise WorkflowError(f"job {job_id} step {index}: unsupported keys {sorted(unknown)}")
            name = interpolate(step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0], ctx)
            if not condition(step.get("if"), ctx, job_failed=failed, workspace=self.workspace):
                result.steps.append(
                    StepResult(
                        job_id,
                        name,
                        "skipped",
                        note=f"if: {step.get('if')}" if step.get("if") else "an earlier step failed",
                    )
                )
                continue
            if "uses" in step:
                action = str(step["uses"]).split("@", 1)[0]
                inputs = {k: interpolate(v, ctx) for k, v in (step.get("with") or {}).items()}
                run_action = self.actions.get(action)
                if run_action is None:
                    result.steps.append(StepResult(job_id, name, "skipped", note="uses: not run here"))
                    continue
                self.echo(f"[{job_id}] > {name}")
                action_env = {
                    **self.machine_env,
                    **runner_env,
                    **exported,
                    **workflow_env,
                    **job_env,
                    **{k: interpolate(v, ctx) for k, v in (step.get("env") or {}).items()},
                }
                try:
                    outcome = run_action(inputs, action_env)
                    if outcome is None:
                        result.steps.append(StepResult(job_id, name, "skipped", note="uses: not run here"))
                        continue
                except ActionFailed as failure:
                    self.echo(f"[{job_id}] ! {name} failed: {failure}")
                    result.steps.append(StepResult(job_id, name, "failure", 1, f"Error: {failure}"))
                    failed = True
                    continue
                self.echo(outcome.log)
                exported.update(outcome.exports)
                result.steps.append(StepResult(job_id, name, "success", 0, outcome.log))
                continue
            if "run" not in step:
                raise WorkflowError(f"job {job_id} step {name!r} has neither run nor uses")
            if step.get("shell", "bash") != "bash":
                raise WorkflowError(f"job {job_id} step {name!r}: only the bash shell is supported")
            script = str(step["run"])
            if script.strip() in self.substitutions:
                used.add(script.strip())
                # still evaluate its env, so an expression there is checked too
                {k: interpolate(v, ctx) for k, v in (step.get("env") or {}).items()}
                reason = self.substitutions[script.strip()]
                self.echo(f"[{job_id}] = {name}: `{script.strip()}` not run: {reason}")
                result.steps.append(StepResult(job_id, name, "substituted", note=reason))
                continue
            summary = job_dir / f"step_summary_{index}"
            summary.touch()
            env_file, output_file, path_file = (
                job_dir / f"env_{index}",
                job_dir / f"output_{index}",
                job_dir / f"path_{index}",
            )
            for f in (env_file, output_file, path_file):
                f.touch()
            env = {
                **self.machine_env,
                **runner_env,
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_WORKFLOW": workflow_name,
                "GITHUB_JOB": job_id,
                "GITHUB_RUN_ID": run_id,
                "GITHUB_RUN_ATTEMPT": str(attempt),
                "GITHUB_EVENT_NAME": event.name,
                "GITHUB_EVENT_PATH": str(event_path),
                "GITHUB_REF": event.ref,
                "GITHUB_REF_NAME": event.ref_name,
                "GITHUB_REF_TYPE": "tag" if event.ref.startswith("refs/tags/") else "branch",
                "GITHUB_BASE_REF": event.base_ref,
                "GITHUB_HEAD_REF": event.head_ref,
                "GITHUB_REPOSITORY": self.repository,
                "GITHUB_REPOSITORY_OWNER": self.repository.split("/")[0],
                "GITHUB_API_URL": self.api_url,
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_WORKSPACE": str(self.workspace),
                "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_ENV": str(env_file),
                "GITHUB_OUTPUT": str(output_file),
                "GITHUB_PATH": str(path_file),
                "RUNNER_TEMP": str(self.temp),
                "RUNNER_OS": "Linux",
                **exported,
                **workflow_env,
                **job_env,
                **{k: interpolate(v, ctx) for k, v in (step.get("env") or {}).items()},
            }
            script_file = job_dir / f"step_{index}.sh"
            script_file.write_text(script, encoding="utf-8")
            cwd = self.workspace / step["working-directory"] if "working-directory" in step else self.workspace
            self.echo(f"[{job_id}] > {name}")
            code, output, was_cancelled = self._execute(job_id, script_file, cwd, env, timeout)
            self.echo(output.rstrip())
            status = "cancelled" if was_cancelled else "success" if code == 0 else "failure"
            step_result = StepResult(job_id, name, status, code, output)
            result.steps.append(step_result)
            result.summary += summary.read_text(encoding="utf-8")
            exported.update(_read_env_file(env_file))
            if "id" in step:
                ctx.steps[str(step["id"])] = read_output_file(output_file)
            if code != 0:
                self.echo(f"[{job_id}] ! {name} {'was cancelled' if was_cancelled else 'failed'}: exit code {code}")
                failed = True
                cancelled = cancelled or was_cancelled
        result.status = "cancelled" if cancelled else "failure" if failed else "success"
        if environment_url is not None:
            result.environment_url = interpolate(environment_url, ctx)
        return result

    def _execute(
        self, job_id: str, script: Path, cwd: Path, env: dict[str, str], timeout: float
    ) -> tuple[int, str, bool]:
        """Run a step's script: (exit code, output, whether the run was cancelled during it)."""
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: the runner signals the step's processes
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        started, cancelled_at, signals = (
            time.monotonic(),
            None,
            iter(
                [
                    (0.0, signal.SIGINT),
                    (self.cancel_grace, signal.SIGTERM),
                    (self.cancel_grace + self.kill_grace, signal.SIGKILL),
                ]
            ),
        )
        pending = next(signals)
        while process.poll() is None:
            now = time.monotonic()
            if now - started > timeout:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                reader.join(5)
                return 124, "".join(lines) + f"\n(timed out after {timeout:.0f}s)", False
            if cancelled_at is None and self.cancel is not None and self.cancel(job_id, "".join(lines)):
                cancelled_at = now
                self.echo(f"[{job_id}] cancelling the run")
            if cancelled_at is not None and pending is not None and now - cancelled_at >= pending[0]:
                try:
                    os.killpg(process.pid, pending[1])
                except ProcessLookupError:
                    pass
                pending = next(signals, None)
            time.sleep(0.02)
        reader.join(5)
        return process.returncode, "".join(lines), cancelled_at is not None


def read_output_file(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: `name=value` lines, or `name<<DELIMITER`, the value's
    lines, then DELIMITER alone on a line (multiline values)."""
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            try:
                end = lines.index(delimiter, index)
            except ValueError:
                raise WorkflowError(f"GITHUB_OUTPUT: no closing delimiter {delimiter!r} for {name!r}") from None
            values[name] = "\n".join(lines[index:end])
            index = end + 1
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        else:
            raise WorkflowError(f"GITHUB_OUTPUT line not understood: {line!r}")
    return values


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if "<<" in line or "=" not in line:
            raise WorkflowError(f"GITHUB_ENV line not understood here: {line!r}")
        key, value = line.split("=", 1)
        values[key] = value
    return values


def clean_environ(keep_prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment without what a fresh runner would not have (AWS, GitHub, pipeline)."""
    drop = ("AWS_", "GITHUB_", "PIPELINE_", "RUNNER_", "CI", "VIRTUAL_ENV", "PYTEST_")
    return {k: v for k, v in os.environ.items() if k.startswith(keep_prefixes) or not k.startswith(drop)}
