"""`pipeline logs | destroy | completion`: read an environment's logs, delete it, complete commands."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from pipeline.commands.grammar import OUTPUT_OPTION, config_option, emit_json, env_option, progress, resolve_env
from pipeline.errors import InputError

CONFIG = config_option()


@click.command()
@env_option()
@CONFIG
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option("--since", default="1h", show_default=True, help="How far back to start: 30s, 10m, 2h, 1d.")
@OUTPUT_OPTION
def logs(environment: str | None, config_path: Path | None, follow: bool, since: str, output: str) -> None:
    """The service's CloudWatch Logs (the task definition's awslogs group and stream prefix), oldest first.

    With --output json: one JSON list; with --follow too, one JSON object per line as events come."""
    from pipeline import cli
    from pipeline.steps.logs import parse_since, read

    environment = resolve_env("logs", environment)
    seconds = parse_since(since)
    ctx = cli._context(config_path, environment=environment, echo=progress(output))
    events = read(ctx, environment, seconds, follow=follow)
    collected: list[dict[str, str]] = []
    try:
        for event in events:
            when = datetime.fromtimestamp(event.timestamp / 1000, UTC).isoformat(timespec="milliseconds")
            row = {"timestamp": when, "stream": event.stream, "message": event.message}
            if output == "json" and not follow:
                collected.append(row)
            elif output == "json":
                click.echo(json.dumps(row))
            else:
                task = event.stream.rsplit("/", 1)[-1][:12]
                click.echo(f"{when} {task} {event.message}")
    except KeyboardInterrupt:
        return  # Ctrl-C ends --follow; that is how it is meant to stop
    if output == "json" and not follow:
        emit_json(collected)


@click.command()
@env_option()
@CONFIG
@click.option("--yes", "-y", is_flag=True, help="Do not ask; needed for production and without a terminal.")
@OUTPUT_OPTION
def destroy(environment: str | None, config_path: Path | None, yes: bool, output: str) -> None:
    """Delete the environment's service stack (VPC, load balancer, cluster, service, log group).

    Asks first on a terminal; production (github_release = true, or named production) is refused without
    --yes. The ECR repository and its images, the shared stacks and GitHub's records stay."""
    from pipeline import cli
    from pipeline.steps.destroy import destroy as run_destroy
    from pipeline.steps.destroy import is_protected

    environment = resolve_env("destroy", environment)
    ctx = cli._context(config_path, environment=environment, echo=progress(output))
    env = ctx.environment(environment)
    stack = ctx.service_stack(env.name)
    if not yes:
        if is_protected(env):
            raise InputError(
                f"{env.name} is a production environment: destroying {stack} needs --yes",
                hint=f"Run `pipeline destroy --env {env.name} --yes` if you mean it.",
            )
        if not sys.stdin.isatty():
            raise InputError(
                f"destroying {stack} needs a confirmation and there is no terminal to ask",
                hint=f"Pass --yes: `pipeline destroy --env {env.name} --yes`.",
            )
        typed = click.prompt(
            f"Delete stack {stack} and everything in it? Type the environment name",
            default="",
            show_default=False,
            err=True,
        )
        if typed != env.name:
            raise InputError(f"not confirmed ({typed!r} is not {env.name!r}); nothing was deleted")
    result = run_destroy(ctx, env.name)
    if output == "json":
        emit_json(result.as_dict())
        return
    click.echo("left in place:")
    for line in result.left:
        click.echo(f"  {line}")


SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish), e.g.
    `eval "$(pipeline completion bash)"` in ~/.bashrc."""
    from click.shell_completion import get_completion_class

    from pipeline import cli

    complete = get_completion_class(shell)
    assert complete is not None  # nosec B101 # every name in SHELLS is one click ships
    click.echo(complete(cli.cli, {}, "pipeline", "_PIPELINE_COMPLETE").source())
