"""One grammar for every command: `--env NAME` names the environment, `--output json` prints one JSON
document on stdout (progress goes to stderr then), `--dry-run` previews a change set.

The positional environment of the first releases (`pipeline status staging`) still works, with a
warning on stderr: it is a deprecated alias of `--env`, hidden from the usage line.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from pipeline.errors import InputError

OUTPUT_OPTION = click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Tables for people; json: one JSON document on stdout, progress on stderr.",
)
DRY_RUN_OPTION = click.option(
    "--dry-run",
    is_flag=True,
    help="Create and show the change set, then delete it: nothing is executed, built or pushed.",
)


class HiddenArgument(click.Argument):
    """A positional kept for old command lines: accepted, but not shown in the usage line."""

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return []


def complete_environments(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of `--env`: the environments of the settings file in use."""
    from click.shell_completion import CompletionItem

    from pipeline import config
    from pipeline.errors import PipelineError

    try:
        settings = config.load(ctx.params.get("config_path"))
    except (PipelineError, OSError):
        return []  # no readable settings here: nothing to offer
    return [CompletionItem(name) for name in settings.environment_names if name.startswith(incomplete)]


def _one_environment(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> str | None:
    """`--env` given twice is refused: click would keep the last one, and `destroy --env staging --env
    production --yes` must not quietly act on production."""
    if len(values) > 1:
        given = ", ".join(repr(v) for v in values)
        raise click.BadParameter(f"given {len(values)} times ({given}); pass it once", ctx=ctx, param=param)
    return values[0] if values else None


def env_option(*, legacy_positional: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--env NAME` (required); with `legacy_positional`, `pipeline CMD NAME` is accepted too (deprecated)."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        function = click.option(
            "--env",
            "environment",
            multiple=True,
            callback=_one_environment,
            metavar="NAME",
            shell_complete=complete_environments,
            help="Environment from pipeline.toml, e.g. staging (required).",
        )(function)
        if legacy_positional:
            function = click.argument("legacy_environment", required=False, cls=HiddenArgument)(function)
        return function

    return decorate


def resolve_env(command: str, environment: str | None, legacy: str | None = None) -> str:
    """The environment of `--env`, or of the deprecated positional form (with a warning)."""
    if legacy is not None:
        if environment is not None and environment != legacy:
            raise click.UsageError(f"two environments given ({legacy!r} and --env {environment!r}); pass only --env")
        click.echo(
            f"warning: `pipeline {command} {legacy}` is deprecated; use `pipeline {command} --env {legacy}`", err=True
        )
        return legacy
    if environment is None:
        raise click.UsageError("missing option '--env NAME' (the environment from pipeline.toml, e.g. staging)")
    return environment


def progress(output: str) -> Callable[[str], None]:
    """Where a command's progress lines go: stdout for people, stderr when stdout carries JSON."""
    to_stderr = output == "json"

    def echo(line: str) -> None:
        click.echo(line, err=to_stderr)

    return echo


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2))


def write_github_output(path: Path | None, values: Mapping[str, str]) -> None:
    """Append `values` to $GITHUB_OUTPUT as GitHub documents it: `name<<DELIMITER`, the value, the
    delimiter, with a random delimiter that cannot occur in a value (multiline-safe)."""
    if path is None:
        return
    lines: list[str] = []
    for name, value in values.items():
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        while delimiter in value:  # a value that holds it cannot end early
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
        lines += [f"{name}<<{delimiter}", value, delimiter]
    try:
        with path.open("a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
    except OSError as error:
        raise InputError(
            f"cannot write the step outputs to {path}: {error.strerror}", hint="Check GITHUB_OUTPUT."
        ) from None


def config_option(help: str = "Settings file (default: pipeline.toml).") -> Callable[[Any], Any]:
    """`--config FILE` (or $PIPELINE_CONFIG), the same in every command that reads the settings."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        envvar="PIPELINE_CONFIG",
        help=help,
    )
