"""`pipeline local up | down | exec`: the local AWS, registry and GitHub for the repository here.

The local ground lives in the `[local]` extra; nothing of it is imported until a command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline import extras
from pipeline.commands.grammar import config_option


def _root(config_path: Path | None) -> Path:
    """The project folder: the settings file's, as the settings' own paths are (else the current one)."""
    return (config_path.parent if config_path else Path.cwd()).resolve()


def _stderr(line: str) -> None:
    click.echo(line, err=True)  # stdout is exec's COMMAND's, or the exports `up --detach` prints


@click.group("local")
def local() -> None:
    """Run the pipeline against a local AWS, registry and GitHub (no accounts needed)."""


CONFIG = config_option(
    "Settings file (default: pipeline.toml here, or $PIPELINE_CONFIG); the ground serves its folder's repository."
)


@local.command()
@CONFIG
@click.option("--detach", is_flag=True, help="Run in the background; `pipeline local down` stops it.")
def up(config_path: Path | None, detach: bool) -> None:
    """Start the local ground, print the environment to export, run until Ctrl-C."""
    extras.require("local", "local up")
    from local_ground import session

    root = _root(config_path)
    if detach:
        session.up_detached(root, click.echo, config_path=config_path, note=_stderr)
        return
    session.serve_until_stopped(root, click.echo, config_path=config_path)


@local.command()
@CONFIG
def down(config_path: Path | None) -> None:
    """Stop the local ground `pipeline local up --detach` started here."""
    extras.require("local", "local down")
    from local_ground import session

    session.down(_root(config_path), click.echo, note=_stderr)


@local.command("exec", context_settings={"ignore_unknown_options": True})
@CONFIG
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(config_path: Path | None, command: tuple[str, ...]) -> None:
    """Start the local ground, run COMMAND with its environment, stop it; exit with COMMAND's code.

    e.g. pipeline local exec -- sh -c 'pipeline bootstrap && pipeline release v0.1.0 --env staging'
    """
    extras.require("local", "local exec")
    from local_ground import session

    code = session.exec_with_ground(_root(config_path), command, _stderr, config_path)
    sys.exit(code)
