"""The `pipeline` command. The only place that prints errors and picks exit codes.

Commands import what they need lazily: `pipeline synth` must stay fast and never import boto3.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click

from pipeline.errors import PipelineError

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="PIPELINE_CONFIG",
    help="Settings file (default: pipeline.toml).",
)


def _settings(config_path: Path | None) -> Any:
    from pipeline import config

    return config.load(config_path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ecs-model-pipeline")
def cli() -> None:
    """Ship a model server to Amazon ECS from a git tag, and roll it back."""


@cli.command()
@CONFIG_OPTION
def check(config_path: Path | None) -> None:
    """Validate pipeline.toml and print the derived rollout settings."""
    settings = _settings(config_path)
    click.echo(f"{settings.app.name}: {len(settings.environments)} environment(s), settings are valid")
    for env in settings.environments:
        s = env.service
        click.echo(
            f"  {env.name}: {s.cpu} cpu / {s.memory} MiB, {s.min_count}-{s.max_count} tasks, "
            f"{'HTTPS' if env.https else 'HTTP'}, drain {s.deregistration_delay}s, "
            f"modeled rollout {s.modeled_rollout_seconds}s"
        )


@cli.command()
@CONFIG_OPTION
@click.option("--check", "check_only", is_flag=True, help="Only compare with cloudformation/; exit 1 when stale.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Output folder (default: cloudformation/ beside the settings).")
def synth(config_path: Path | None, check_only: bool, out: Path | None) -> None:
    """Write the CloudFormation templates (deterministic), or check the committed ones."""
    from pipeline.synth import check_templates, write_templates

    settings = _settings(config_path)
    folder = out or settings.root / "cloudformation"
    if check_only:
        stale = check_templates(settings, folder)
        if stale:
            raise PipelineError(
                f"stale templates in {folder}: {', '.join(stale)}",
                hint="Run `pipeline synth` and commit the result.",
            )
        click.echo(f"{folder}: templates are up to date")
        return
    for path, changed in write_templates(settings, folder):
        click.echo(f"{'wrote' if changed else 'unchanged'} {path}")


@cli.command()
@CONFIG_OPTION
@click.option("--sarif", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write cfn-lint findings as SARIF here.")
@click.option("--no-checkov", is_flag=True, help="Skip the checkov security scan.")
def lint(config_path: Path | None, sarif: Path | None, no_checkov: bool) -> None:
    """Lint the committed templates: cfn-lint, then checkov."""
    from pipeline.lint import run_linters

    settings = _settings(config_path)
    run_linters(settings.root, sarif=sarif, checkov=not no_checkov, echo=click.echo)


def main(argv: list[str] | None = None) -> None:
    run(cli, argv)


def run(command: Callable[..., Any], argv: list[str] | None = None) -> None:
    """Run the CLI; expected failures become one line on stderr and their exit code."""
    try:
        command.main(args=argv, prog_name="pipeline", standalone_mode=False)  # type: ignore[attr-defined]
    except PipelineError as err:
        click.echo(f"error: {err.one_line()}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)
