"""The `pipeline` command. The only place that prints errors and picks exit codes.

Commands import what they need lazily: `pipeline synth` must stay fast and never import boto3.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline import __version__
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
@click.version_option(version=__version__, prog_name="pipeline")
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
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: cloudformation/ beside the settings).",
)
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
    for outcome in write_templates(settings, folder):
        click.echo(str(outcome))


@cli.command()
@CONFIG_OPTION
@click.option(
    "--sarif",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write cfn-lint findings as SARIF here.",
)
@click.option("--no-checkov", is_flag=True, help="Skip the checkov security scan.")
@click.option("--no-workflows", is_flag=True, help="Skip zizmor and the schema check of .github/workflows.")
def lint(config_path: Path | None, sarif: Path | None, no_checkov: bool, no_workflows: bool) -> None:
    """Lint the committed templates (cfn-lint, checkov) and the workflows (zizmor offline, GitHub's schema)."""
    from pipeline import extras
    from pipeline.lint import run_linters

    extras.require("lint", "lint")
    settings = _settings(config_path)
    run_linters(settings.root, sarif=sarif, checkov=not no_checkov, echo=click.echo, workflows=not no_workflows)


# --- the release engine ---------------------------------------------------------------------------

ENV_OPTION = click.option("--env", "environment", required=True, help="Environment from pipeline.toml, e.g. staging.")
OUTPUT_OPTION = click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Tables for people, JSON for scripts.",
)


def _context(config_path: Path | None, *, wait: bool = False, environment: str | None = None) -> Any:
    import os

    from pipeline.clock import WallClock
    from pipeline.config import poll_seconds, time_scale
    from pipeline.github import GitHubRecorder
    from pipeline.steps.context import Context

    settings = _settings(config_path)
    if environment is not None:
        settings.environment(environment)  # refuse an unknown environment before anything else
    github = GitHubRecorder.from_environ(os.environ)
    if github is None:
        click.echo(
            "notice: GITHUB_TOKEN or GITHUB_REPOSITORY is not set; deployments are not recorded on GitHub", err=True
        )
    poll = poll_seconds(os.environ)
    # AWS regions come from the settings: app.region, or an environment's delivery.region.
    scale = time_scale(os.environ)  # a local ground's factor: AWS waits and timeouts shrink alike
    return Context(settings, WallClock(), _echo, github=github, poll=poll, time_scale=scale, wait_if_busy=wait)


def _echo(line: str) -> None:
    click.echo(line)


def _run_and_report(chain: Callable[[], Any], summary: Path | None) -> None:
    """Run a release or rollback; print its report (and the job summary) whether it succeeds or not."""
    from pipeline.errors import Interrupted, ReleaseFailed

    try:
        report = chain()
    except (ReleaseFailed, Interrupted) as failed:
        if failed.report is not None:
            _report(failed.report, summary)
        raise
    _report(report, summary)


def _report(report: Any, summary: Path | None) -> None:
    from pipeline.report import report_table

    click.echo(report_table(report))
    _write_summary(summary, report)


@cli.command()
@click.argument("version")
@ENV_OPTION
@CONFIG_OPTION
@click.option("--wait", is_flag=True, help="Wait for a stack operation already running instead of refusing.")
@click.option("--ref", default=None, help="Git ref recorded with the deployment (default: the tag vVERSION).")
@click.option(
    "--summary",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GITHUB_STEP_SUMMARY",
    default=None,
    help="Append a Markdown summary here (GitHub sets GITHUB_STEP_SUMMARY).",
)
def release(
    version: str, environment: str, config_path: Path | None, wait: bool, ref: str | None, summary: Path | None
) -> None:
    """Build, push, deploy, roll, smoke-test and record VERSION (a tag such as v1.4.0); roll back on failure."""
    from pipeline.steps.release import release as run_release
    from pipeline.steps.version import parse_version

    parse_version(version)  # refuse before touching anything
    ctx = _context(config_path, wait=wait, environment=environment)
    _run_and_report(lambda: run_release(ctx, environment, version, ref), summary)


@cli.command()
@click.argument("version", required=False)
@ENV_OPTION
@click.option("--previous", is_flag=True, help="The last successful deployment before the current one.")
@CONFIG_OPTION
@click.option("--wait", is_flag=True, help="Wait for a stack operation already running instead of refusing.")
@click.option(
    "--summary",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GITHUB_STEP_SUMMARY",
    default=None,
    help="Append a Markdown summary here.",
)
def rollback(
    version: str | None, environment: str, previous: bool, config_path: Path | None, wait: bool, summary: Path | None
) -> None:
    """Deploy a version already in ECR again (no build): VERSION, or --previous."""
    from pipeline.steps.release import rollback as run_rollback
    from pipeline.steps.version import parse_version

    if version == "previous":
        version, previous = None, True
    if version is not None:
        parse_version(version)
    ctx = _context(config_path, wait=wait, environment=environment)
    _run_and_report(lambda: run_rollback(ctx, environment, version, previous), summary)


@cli.command()
@click.argument("environment")
@CONFIG_OPTION
@OUTPUT_OPTION
def status(environment: str, config_path: Path | None, output: str) -> None:
    """What runs in ENVIRONMENT now: version, digest, tasks, URL."""
    import json

    from pipeline.steps.history import status as read_status

    state = read_status(_context(config_path, environment=environment), environment)
    if output == "json":
        click.echo(json.dumps(state.as_dict(), indent=2))
        return
    for key, value in state.as_dict().items():
        click.echo(f"{key:<14} {value}")


@cli.command()
@click.argument("environment")
@CONFIG_OPTION
@OUTPUT_OPTION
@click.option("--limit", default=10, show_default=True)
def history(environment: str, config_path: Path | None, output: str, limit: int) -> None:
    """The last releases of ENVIRONMENT, newest first."""
    import json

    from pipeline.steps.history import history as read_history

    entries = read_history(_context(config_path, environment=environment), environment, limit)
    if output == "json":
        click.echo(json.dumps([e.as_dict() for e in entries], indent=2))
        return
    click.echo(f"{'version':<12} {'state':<14} {'when':<26} digest")
    for e in entries:
        click.echo(f"{e.version:<12} {e.state:<14} {e.when:<26} {e.digest}")


@cli.command()
@click.argument("environment")
@CONFIG_OPTION
@click.option("--version", "version", default=None, help="Preview with this version's image (default: what runs now).")
def diff(environment: str, config_path: Path | None, version: str | None) -> None:
    """Show the change set a deploy of ENVIRONMENT would execute, without executing it."""
    from pipeline.steps.push import find_release
    from pipeline.steps.release import running_version
    from pipeline.steps.version import parse_version
    from pipeline.templates import names

    ctx = _context(config_path, environment=environment)
    env = ctx.environment(environment)
    current = running_version(ctx, env.name)
    if version:
        image = find_release(ctx.clients.ecr, ctx.repository, parse_version(version))
        params = {"ImageUri": image.image_uri, "Version": image.version}
    elif current:
        params = {"ImageUri": current.image_uri, "Version": current.version}
    else:
        raise PipelineError(f"{env.name} is not deployed yet", hint="Pass --version to preview a first release.")
    body = ctx.committed_template(names.template_file("service", env.name))
    ctx.deployer(env.name).deploy(ctx.service_stack(env.name), body, params, execute=False)


@cli.command()
@CONFIG_OPTION
@click.option("--wait", is_flag=True, help="Wait for a stack operation already running instead of refusing.")
def bootstrap(config_path: Path | None, wait: bool) -> None:
    """Deploy the shared stacks once: the ECR registry and the CI access roles."""
    from pipeline.aws.oidc import ci_access_parameters
    from pipeline.templates import stack_specs

    ctx = _context(config_path, wait=wait)
    ctx.clients.check_credentials()
    deployer = ctx.deployer()
    for spec in stack_specs(ctx.settings):
        if spec.environment is None:
            params = ci_access_parameters(ctx.clients, ctx.settings, _echo) if spec.kind == "ci-access" else {}
            result = deployer.deploy(spec.stack_name, ctx.committed_template(spec.file_name), params)
            click.echo(f"{spec.stack_name}: {result.outcome.value}")


@cli.command("template-diff")
@click.option("--base", required=True, help="Git ref to compare with, e.g. origin/main.")
@click.option("--comment", is_flag=True, help="Post (or update) the result as a pull request comment.")
@CONFIG_OPTION
def template_diff(base: str, comment: bool, config_path: Path | None) -> None:
    """List the resources the committed templates add, change or remove against BASE."""
    import json
    import os

    from pipeline.template_diff import MARKER, diff_templates, markdown

    settings = _settings(config_path)
    text = markdown(diff_templates(settings.root, base), base)
    click.echo(text)
    if not comment:
        return
    from pipeline.github import GitHubRecorder

    github = GitHubRecorder.from_environ(os.environ)
    event_path = os.environ.get("GITHUB_EVENT_PATH")
    if github is None or not event_path:
        click.echo("notice: no GitHub token or pull request event; the comment is not posted", err=True)
        return
    number = json.loads(Path(event_path).read_text()).get("pull_request", {}).get("number")
    if not number:
        raise PipelineError(
            "the GitHub event is not a pull request", hint="Run --comment from a pull_request workflow."
        )
    url = github.upsert_pr_comment(int(number), MARKER, text)
    click.echo(f"commented: {url}")


@cli.command()
@click.argument("version")
@CONFIG_OPTION
def build(version: str, config_path: Path | None) -> None:
    """Build the model server image for VERSION (a tag such as v1.4.0)."""
    from pipeline.steps.build import build_image, pick_builder
    from pipeline.steps.version import parse_version

    number = parse_version(version)
    settings = _settings(config_path)
    image = build_image(settings, number, pick_builder(settings), _echo)
    click.echo(f"built {image}")


@cli.command()
@click.argument("version")
@CONFIG_OPTION
def push(version: str, config_path: Path | None) -> None:
    """Push the built image of VERSION to ECR; prints the digest deploys pin."""
    from pipeline.steps.build import local_tag, pick_builder
    from pipeline.steps.push import push_image
    from pipeline.steps.version import parse_version

    number = parse_version(version)
    ctx = _context(config_path)
    ctx.clients.check_credentials()
    pushed = push_image(
        ctx.clients.ecr, pick_builder(ctx.settings), local_tag(ctx.settings, number), ctx.repository, number, _echo
    )
    click.echo(pushed.image_uri)


@cli.command()
@click.argument("environment")
@click.argument("version")
@CONFIG_OPTION
@click.option("--wait", is_flag=True, help="Wait for a stack operation already running instead of refusing.")
def deploy(environment: str, version: str, config_path: Path | None, wait: bool) -> None:
    """Deploy VERSION (already in ECR) to ENVIRONMENT's stack, by digest; no rollout check."""
    from pipeline.report import ReleaseReport
    from pipeline.steps.push import find_release
    from pipeline.steps.release import Engine
    from pipeline.steps.version import parse_version

    number = parse_version(version)
    ctx = _context(config_path, wait=wait, environment=environment)
    ctx.clients.check_credentials()
    image = find_release(ctx.clients.ecr, ctx.repository, number)
    engine = Engine(ctx, environment, ReleaseReport("deploy", environment, number))
    engine.refuse_if_busy()
    engine.deploy(image)
    click.echo(f"{engine.stack_name}: runs {image.version} ({image.digest})")


@cli.command()
@click.argument("environment")
@CONFIG_OPTION
def roll(environment: str, config_path: Path | None) -> None:
    """Watch ENVIRONMENT's ECS rollout (with its strategy) until it completes, fails or times out."""
    from pipeline.report import ReleaseReport
    from pipeline.steps.release import Engine

    ctx = _context(config_path, environment=environment)
    engine = Engine(ctx, environment, ReleaseReport("roll", environment, ""))
    result = engine.roll(engine.rollout())
    click.echo(f"rollout completed in {result.seconds:.0f}s")


@cli.command()
@click.argument("environment")
@CONFIG_OPTION
def smoke(environment: str, config_path: Path | None) -> None:
    """Smoke-test ENVIRONMENT through its URL: the health path, then a sample prediction."""
    from pipeline.report import ReleaseReport
    from pipeline.steps.release import Engine

    ctx = _context(config_path, environment=environment)
    engine = Engine(ctx, environment, ReleaseReport("smoke", environment, ""))
    engine.smoke(engine.rollout())


@cli.command()
def demo() -> None:
    """A full release cycle on this machine against local AWS, registry and GitHub (no accounts needed)."""
    from pipeline import extras

    extras.require("local", "demo")
    from local_ground.demo import run_demo

    root = Path(__file__).resolve().parent.parent
    code = run_demo(root, _echo)
    if code != 0:
        raise PipelineError(
            "the demo did not end as intended (1.0.0 running, 1.2.0 rolled back)", hint="Read the output above."
        )


def _write_summary(path: Path | None, report: Any) -> None:
    if path is None:
        return
    from pipeline.report import markdown_summary

    with path.open("a", encoding="utf-8") as out:
        out.write(markdown_summary(report))


@cli.command()
def schema() -> None:
    """Print a JSON Schema of pipeline.toml, for editors (Taplo, Even Better TOML) and checks."""
    import json

    from pipeline.schema import build_schema

    click.echo(json.dumps(build_schema(), indent=2))


def _register_groups() -> None:
    from pipeline.commands.init import init
    from pipeline.commands.local import local

    cli.add_command(init)
    cli.add_command(local)


_register_groups()


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
