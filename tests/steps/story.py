"""What the end-to-end release stories share: a Context on the local ground, a boto3 client, and the
account's bootstrap (tags pushed, the environment-free stacks deployed) each story starts from."""

from __future__ import annotations

import os
from typing import Any

import boto3

from pipeline.clock import Clock, WallClock
from pipeline.config import Settings
from pipeline.github import GitHubRecorder
from pipeline.steps.build import BuildahBuilder
from pipeline.steps.context import Context
from pipeline.templates import stack_specs


def context(
    settings: Settings,
    lines: list[str] | None = None,
    github: bool = True,
    clock: Clock | None = None,
    **options: Any,
) -> Context:
    """A Context as the CLI builds one, its output lines collected in `lines` (dropped when None)."""
    out = lines if lines is not None else []
    recorder = GitHubRecorder.from_environ(os.environ) if github else None
    return Context(
        settings, clock or WallClock(), out.append, github=recorder, builder=BuildahBuilder, poll=0.05, **options
    )


def aws(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1")


def bootstrap(ground: Any, settings: Settings, tags: tuple[str, ...]) -> None:
    """Push `tags` to the local GitHub and deploy the stacks no environment owns (ECR, CI access)."""
    for tag in tags:
        ground.github.create_tag(tag)
    ctx = context(settings, github=False)
    for spec in stack_specs(settings):
        if spec.environment is None:
            ctx.deployer().deploy(spec.stack_name, ctx.committed_template(spec.file_name), {})
