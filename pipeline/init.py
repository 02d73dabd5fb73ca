"""`pipeline init`: adopt the pipeline in any git repository that has a Dockerfile.

Writes pipeline.toml, the three workflows (release, rollback, lint; pipeline/workflows.py) that install
this exact version of the tool from a hash-locked requirements file it also writes, and the synthesized
templates. Nothing
existing is overwritten without `force`; every file it would replace is named. Defaults come from the
Dockerfile (EXPOSE, HEALTHCHECK) and `git remote`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline import config
from pipeline.errors import InputError
from pipeline.git import git_output, work_tree_top

DEFAULT_PORT = 8080
DEFAULT_HEALTH_PATH = "/health"
_EXPOSE = re.compile(r"^\s*EXPOSE\s+(\d+)", re.IGNORECASE | re.MULTILINE)
# HEALTHCHECK CMD curl -f http://localhost:8000/healthz || exit 1 -> /healthz
_HEALTHCHECK_URL = re.compile(r"^\s*HEALTHCHECK\b.*?https?://[^/\s\"']+(/[^\s\"'|;&]*)", re.IGNORECASE | re.MULTILINE)
_REMOTE = re.compile(r"github\.com[:/]([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class Answers:
    """What `init` asks (or takes from its flags)."""

    name: str
    region: str
    account: str
    github_repository: str
    port: int = DEFAULT_PORT
    health_path: str = DEFAULT_HEALTH_PATH
    dockerfile: str = "Dockerfile"
    context: str = "."
    smoke_path: str | None = None  # None: GET the health path
    smoke_request: str | None = None  # a JSON body POSTed to smoke_path


@dataclass(frozen=True)
class DockerfileHints:
    port: int | None
    health_path: str | None


def dockerfile_hints(path: Path) -> DockerfileHints:
    """The port and health path a Dockerfile already declares, when it does."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return DockerfileHints(None, None)
    exposed = _EXPOSE.search(text)
    health = _HEALTHCHECK_URL.search(text)
    return DockerfileHints(int(exposed.group(1)) if exposed else None, health.group(1) if health else None)


def github_repository_from_git(root: Path) -> str | None:
    """OWNER/REPO of the `origin` remote when it is on GitHub."""
    remote = git_output(root, "remote", "get-url", "origin")
    if remote is None:
        return None
    match = _REMOTE.search(remote)
    return match.group(1) if match else None


def default_name(root: Path) -> str:
    """The folder's name as an app name: lowercase letters, digits and dashes."""
    name = re.sub(r"[^a-z0-9-]+", "-", root.resolve().name.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"model-{name}".strip("-")
    return name[:30].rstrip("-")


def settings_text(answers: Answers) -> str:
    """pipeline.toml for a new project: two environments, staging builds, production records releases."""
    smoke_path = answers.smoke_path or answers.health_path
    smoke = [f"path = {json.dumps(smoke_path)}"]
    if answers.smoke_request is not None:
        smoke.append(f"request = {_toml_literal(answers.smoke_request)}")
    else:
        smoke.append(
            'method = "GET"                      # GET the path; to POST a sample: method = "POST", request = \'{...}\''
        )
    return "\n".join(
        [
            "# Settings for ecs-model-pipeline: one file, validated at once (`pipeline check`; `pipeline schema`",
            "# prints a JSON Schema for editors). Durations are in seconds. Each [environments.NAME] table may",
            "# override any [service] key.",
            "",
            "[app]",
            f"name = {json.dumps(answers.name)}",
            f"region = {json.dumps(answers.region)}",
            f"account = {json.dumps(answers.account)}",
            f"github_repository = {json.dumps(answers.github_repository)}",
            "",
            "[image]",
            f"context = {json.dumps(answers.context)}",
            f"dockerfile = {json.dumps(answers.dockerfile)}",
            'builder = "auto"                    # auto | buildx | buildah',
            '# architecture = "ARM64"            # X86_64 (default) | ARM64: the image and the Fargate tasks',
            "",
            "[service]",
            f"container_port = {answers.port}",
            f"health_check_path = {json.dumps(answers.health_path)}",
            "cpu = 512                           # a Fargate cpu/memory pair",
            "memory = 1024",
            "desired_count = 2",
            "min_count = 2",
            "max_count = 6",
            "request_timeout = 30                # longest inference: drives drain time and the ALB idle timeout",
            "warmup = 20                         # model load budget: the health check grace period",
            "# execute_command = true            # ECS Exec (the root filesystem becomes writable); per environment",
            "",
            "# [service.secrets]                 # container variables ECS reads at task start (README: secrets)",
            '# DB_PASSWORD = "arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf"',
            "# [[service.task_policy]]           # what the model server may do in AWS; without it, nothing",
            '# actions = ["s3:GetObject"]',
            '# resources = ["arn:aws:s3:::BUCKET/PREFIX/*"]',
            "",
            "[smoke]",
            *smoke,
            "",
            "[environments.staging]",
            "build = true                        # staging builds and pushes; production promotes the same digest",
            "desired_count = 1",
            "min_count = 1",
            "max_count = 3",
            'vpc_cidr = "10.40.0.0/16"',
            "",
            "[environments.production]",
            "github_release = true               # a successful production release creates the GitHub release",
            'vpc_cidr = "10.50.0.0/16"',
            "",
        ]
    )


def _toml_literal(text: str) -> str:
    """A TOML literal string when it can be one (JSON bodies read best that way), else a basic one."""
    return f"'{text}'" if "'" not in text and "\n" not in text else json.dumps(text)


def check_project(root: Path, answers: Answers) -> None:
    """Refuse what cannot work before writing anything."""
    if not (root / ".git").exists():
        top = work_tree_top(root)
        if top is not None:  # GitHub runs only the workflows in the repository root's .github/workflows
            raise InputError(
                f"{root} is inside the git repository {top}, not at its root",
                hint=f"Run `pipeline init` in {top}: GitHub reads workflows only from its .github/workflows.",
            )
        raise InputError(f"{root} is not a git repository", hint="Run `git init` first; releases start from git tags.")
    dockerfile = root / answers.context / answers.dockerfile
    if not dockerfile.is_file():
        raise InputError(
            f"no Dockerfile at {dockerfile.relative_to(root) if dockerfile.is_relative_to(root) else dockerfile}",
            hint="Pass --dockerfile FILE (and --context DIR) for the model server's image.",
        )


def refuse_overwrites(root: Path, files: dict[str, str], force: bool) -> None:
    existing = sorted(
        name
        for name, text in files.items()
        if (root / name).exists() and (root / name).read_text(encoding="utf-8", errors="replace") != text
    )
    if existing and not force:
        raise InputError(
            f"would overwrite {', '.join(existing)}", hint="Move them aside, or pass --force to replace them."
        )


def parse_answers(root: Path, answers: Answers) -> config.Settings:
    """The settings `answers` make, validated as `pipeline check` would (one line per problem)."""
    import tomllib

    return config.parse(tomllib.loads(settings_text(answers)), root=root)


def project_files(root: Path, answers: Answers) -> dict[str, str]:
    """Every file `init` writes, by path relative to `root`."""
    from pipeline.synth import synthesize
    from pipeline.workflows import workflow_files

    settings = parse_answers(root, answers)
    files = {config.DEFAULT_PATH: settings_text(answers)}
    files.update({f"cloudformation/{name}": text for name, text in synthesize(settings).items()})
    files.update(workflow_files(settings))
    return files


def write_project(root: Path, answers: Answers, *, force: bool = False) -> list[tuple[Path, bool]]:
    """Write the project's files; (path, changed) for each. Nothing is written when any check fails."""
    check_project(root, answers)
    files = project_files(root, answers)
    refuse_overwrites(root, files, force)
    written = []
    for name, text in files.items():
        path = root / name
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        if changed:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        written.append((path, changed))
    return written
