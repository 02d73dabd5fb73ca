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
from pipeline.commands.grammar import (
    DRY_RUN_OPTION,
    OUTPUT_OPTION,
    HiddenArgument,
    config_option,
    emit_json,
    env_option,
    progress,
    resolve_env,
    write_github_output,
)
from pipeline.errors import InputError, PipelineError

CONFIG_OPTION = config_option()


def _settings(config_path: Path | None) -> Any:
    from pipeline import config

    return config.load(config_path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(version=__version__, prog_name="pipeline")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Ship a model server to Amazon ECS from a git tag, and roll it back."""
    if ctx.invoked_subcommand is None:  # a bare `pipeline` asks what there is: the help, not an error
        click.echo(ctx.get_help())


@cli.command()
@CONFIG_OPTION
@OUTPUT_OPTION
def check(config_path: Path | None, output: str) -> None:
    """Validate pipeline.toml (the build context and Dockerfile included) and print the derived rollout settings."""
    from pipeline import config

    settings = config.load(config_path, image_files=True)  # check also finds the build context and Dockerfile
    rows = [
        {
            "environment": env.name,
            "cpu": env.service.cpu,
            "memory": env.service.memory,
            "min_count": env.service.min_count,
            "max_count": env.service.max_count,
            "https": env.https,
            "drain_seconds": env.service.deregistration_delay,
            "modeled_rollout_seconds": env.service.modeled_rollout_seconds,
        }
        for env in settings.environments
    ]
    if output == "json":
        emit_json({"app": settings.app.name, "valid": True, "environments": rows})
        return
    click.echo(f"{settings.app.name}: {len(settings.environments)} environment(s), settings are valid")
    for row in rows:
        click.echo(
            f"  {row['environment']}: {row['cpu']} cpu / {row['memory']} MiB, {row['min_count']}-{row['max_count']} "
            f"tasks, {'HTTPS' if row['https'] else 'HTTP'}, drain {row['drain_seconds']}s, "
            f"modeled rollout {row['modeled_rollout_seconds']}s"
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
    settings = _settings(config_path)
    folder = out or settings.root / "cloudformation"
    try:
        _synth(settings, folder, check_only)
    except OSError as error:
        where = f" ({error.filename})" if error.filename and str(error.filename) != str(folder) else ""
        raise InputError(
            f"cannot write the templates to {folder}: {error.strerror}{where}",
            hint="Choose a folder you can write (--out), or fix its permissions.",
        ) from None


def _synth(settings: Any, folder: Path, check_only: bool) -> None:
    from pipeline.synth import check_templates, write_templates

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
@click.option(
    "--no-workflows", is_flag=True, help="Skip the workflow checks (zizmor, actionlint, shellcheck, GitHub's schemas)."
)
def lint(config_path: Path | None, sarif: Path | None, no_checkov: bool, no_workflows: bool) -> None:
    """Lint the committed templates (cfn-lint, checkov) and the workflows (zizmor offline, actionlint,
    shellcheck on their run: blocks, GitHub's schemas)."""
    from pipeline import extras
    from pipeline.lint import run_linters

    extras.require("lint", "lint")
    settings = _settings(config_path)
    run_linters(settings.root, sarif=sarif, checkov=not no_checkov, echo=click.echo, workflows=not no_workflows)


# --- the release engine ---------------------------------------------------------------------------

ENV_OPTION = env_option()


def _context(
    config_path: Path | None,
    *,
    wait: bool = False,
    environment: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> Any:
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
    return Context(settings, WallClock(), echo or _echo, github=github, poll=poll, time_scale=scale, wait_if_busy=wait)


def _echo(line: str) -> None:
    click.echo(line)


def _run_and_report(chain: Callable[[], Any], summary: Path | None, output: str, github_output: Path | None) -> None:
    """Run a release or rollback; print its report (and the job summary, and the step outputs) whether it
    succeeds or not. SIGTERM (a cancelled or timed-out job) stops it as Ctrl-C does; the exit code says
    which: 130 or 143."""
    from pipeline.errors import Interrupted, ReleaseFailed
    from pipeline.steps.interrupt import stop_signals

    # Refused before anything changes: a report that cannot be written after a deploy would hide its outcome.
    _appendable(summary, "the job summary", "Check --summary / GITHUB_STEP_SUMMARY.")
    _appendable(github_output, "the step outputs", "Check --github-output / GITHUB_OUTPUT.")
    with stop_signals() as signals:
        try:
            report = chain()
        except (ReleaseFailed, Interrupted) as failed:
            if isinstance(failed, Interrupted):
                failed.exit_code = signals.exit_code
            if failed.report is not None:
                try:
                    _report(failed.report, summary, output, github_output)
                except PipelineError as unwritten:  # the release's own error is the one to end with
                    click.echo(f"warning: {unwritten.one_line()}", err=True)
            raise
        except KeyboardInterrupt:
            stopped = Interrupted(f"stopped by {signals.name} before any deploy started", hint="Nothing was deployed.")
            stopped.exit_code = signals.exit_code
            raise stopped from None
    _report(report, summary, output, github_output)


def _appendable(path: Path | None, what: str, hint: str) -> None:
    """Open `path` for appending once (GitHub creates these files; so does this), or refuse in one line."""
    if path is None:
        return
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as error:
        raise InputError(f"cannot write {what} to {path}: {error.strerror}", hint=hint) from None


def _report(report: Any, summary: Path | None, output: str, github_output: Path | None) -> None:
    from pipeline.report import ReleaseOutcome, report_dict, report_table

    if output == "json":
        emit_json(report_dict(report))
    else:
        click.echo(report_table(report))
    if report.outcome is ReleaseOutcome.PREVIEWED:
        return  # a dry run changed nothing: no job summary, no step outputs
    _write_summary(summary, report)
    write_github_output(github_output, {"url": report.url, "digest": report.digest, "version": report.version})


GITHUB_OUTPUT_OPTION = click.option(
    "--github-output",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GITHUB_OUTPUT",
    default=None,
    help="Append the step outputs url, digest and version here (GitHub sets GITHUB_OUTPUT).",
)


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
@GITHUB_OUTPUT_OPTION
@OUTPUT_OPTION
@DRY_RUN_OPTION
def release(
    version: str,
    environment: str | None,
    config_path: Path | None,
    wait: bool,
    ref: str | None,
    summary: Path | None,
    github_output: Path | None,
    output: str,
    dry_run: bool,
) -> None:
    """Build, push, deploy, roll, smoke-test and record VERSION (a tag such as v1.4.0); roll back on failure.

    With --dry-run nothing is built or pushed: the change set is shown (with the version's digest when it
    is in ECR, else a placeholder digest) and deleted."""
    from pipeline.steps.release import release as run_release
    from pipeline.steps.version import parse_version

    environment = resolve_env("release", environment)
    parse_version(version)  # refuse before touching anything
    ctx = _context(config_path, wait=wait, environment=environment, echo=progress(output))
    _run_and_report(
        lambda: run_release(ctx, environment, version, ref, dry_run=dry_run), summary, output, github_output
    )


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
@GITHUB_OUTPUT_OPTION
@OUTPUT_OPTION
@DRY_RUN_OPTION
@click.option(
    "--resolve",
    is_flag=True,
    help="Only print the version it would deploy (also `version=...` to $GITHUB_OUTPUT when set); "
    "with GitHub configured, no AWS call.",
)
def rollback(
    version: str | None,
    environment: str | None,
    previous: bool,
    config_path: Path | None,
    wait: bool,
    summary: Path | None,
    github_output: Path | None,
    output: str,
    dry_run: bool,
    resolve: bool,
) -> None:
    """Deploy a version already in ECR again (no build): VERSION, or --previous."""
    from pipeline.steps.release import require_one_target, resolve_version
    from pipeline.steps.release import rollback as run_rollback
    from pipeline.steps.version import parse_version

    environment = resolve_env("rollback", environment)
    if version == "previous":
        version, previous = None, True
    require_one_target(version, previous)  # refused before any notice or connection
    if version is not None:
        parse_version(version)
    ctx = _context(config_path, wait=wait, environment=environment, echo=progress(output))
    if resolve:  # rollback.yml checks out this version's tag, then deploys from its templates
        resolved = resolve_version(ctx, environment, version, previous)
        click.echo(resolved)
        write_github_output(github_output, {"version": resolved})
        return
    _run_and_report(
        lambda: run_rollback(ctx, environment, version, previous, dry_run=dry_run), summary, output, github_output
    )


@cli.command()
@env_option(legacy_positional=True)
@CONFIG_OPTION
@OUTPUT_OPTION
def status(environment: str | None, legacy_environment: str | None, config_path: Path | None, output: str) -> None:
    """What runs in the environment now: version, digest, tasks, URL."""
    from pipeline.steps.history import status as read_status

    environment = resolve_env("status", environment, legacy_environment)
    state = read_status(_context(config_path, environment=environment, echo=progress(output)), environment)
    if output == "json":
        emit_json(state.as_dict())
        return
    for key, value in state.as_dict().items():
        click.echo(f"{key:<14} {value}")


@cli.command()
@env_option(legacy_positional=True)
@CONFIG_OPTION
@OUTPUT_OPTION
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True, help="Newest entries to show.")
def history(
    environment: str | None, legacy_environment: str | None, config_path: Path | None, output: str, limit: int
) -> None:
    """The last releases of the environment, newest first."""
    from pipeline.steps.history import history as read_history

    environment = resolve_env("history", environment, legacy_environment)
    entries = read_history(_context(config_path, environment=environment, echo=progress(output)), environment, limit)
    if output == "json":
        emit_json([e.as_dict() for e in entries])
        return
    click.echo(f"{'version':<12} {'state':<14} {'when':<26} digest")
    for e in entries:
        click.echo(f"{e.version:<12} {e.state:<14} {e.when:<26} {e.digest}")


@cli.command()
@env_option(legacy_positional=True)
@CONFIG_OPTION
@click.option("--version", "version", default=None, help="Preview with this version's image (default: what runs now).")
@click.option(
    "--if-deployed",
    is_flag=True,
    help="Say so and exit 0 when the environment is not deployed yet (pull request previews).",
)
@OUTPUT_OPTION
def diff(
    environment: str | None,
    legacy_environment: str | None,
    config_path: Path | None,
    version: str | None,
    if_deployed: bool,
    output: str,
) -> None:
    """Show the change set a deploy of the environment would execute, without executing it."""
    from pipeline.steps.push import find_release
    from pipeline.steps.release import running_version
    from pipeline.steps.scaling import kept_desired_count
    from pipeline.steps.version import parse_version
    from pipeline.templates import names

    environment = resolve_env("diff", environment, legacy_environment)
    ctx = _context(config_path, environment=environment, echo=progress(output))
    env = ctx.environment(environment)
    current = running_version(ctx, env.name)
    if version:
        image = find_release(ctx.clients.ecr, ctx.repository, parse_version(version))
        params = {"ImageUri": image.image_uri, "Version": image.version}
    elif current:
        params = {"ImageUri": current.image_uri, "Version": current.version}
    elif if_deployed:
        if output == "json":
            emit_json({"environment": env.name, "deployed": False, "changes": []})
        else:
            click.echo(f"{env.name} is not deployed yet: nothing to preview")
        return
    else:
        raise InputError(f"{env.name} is not deployed yet", hint="Pass --version to preview a first release.")
    body = ctx.committed_template(names.template_file("service", env.name))
    params |= kept_desired_count(ctx, env.name, body, live=False)  # as the stack runs it: no ECS read
    result = ctx.deployer(env.name).deploy(ctx.service_stack(env.name), body, params, execute=False)
    if output == "json":
        emit_json(_deploy_result_dict(env.name, params["Version"], result))


def _deploy_result_dict(environment: str, version: str, result: Any) -> dict[str, Any]:
    return {
        "environment": environment,
        "stack": result.stack_name,
        "version": version,
        "outcome": result.outcome.value,
        "changes": [
            {
                "action": c.action,
                "logical_id": c.logical_id,
                "resource_type": c.resource_type,
                "replacement": c.replacement,
            }
            for c in result.changes
        ],
    }


@cli.command()
@CONFIG_OPTION
@click.option("--wait", is_flag=True, help="Wait for a stack operation already running instead of refusing.")
@OUTPUT_OPTION
def bootstrap(config_path: Path | None, wait: bool, output: str) -> None:
    """Deploy the shared stacks once: the ECR registry and the CI access roles."""
    from pipeline.aws.oidc import ci_access_parameters
    from pipeline.templates import stack_specs

    echo = progress(output)
    ctx = _context(config_path, wait=wait, echo=echo)
    ctx.clients.check_credentials()
    deployer = ctx.deployer()
    done = []
    for spec in stack_specs(ctx.settings):
        if spec.environment is None:
            params = ci_access_parameters(ctx.clients, ctx.settings, echo) if spec.kind == "ci-access" else {}
            result = deployer.deploy(spec.stack_name, ctx.committed_template(spec.file_name), params)
            done.append({"stack": spec.stack_name, "outcome": result.outcome.value})
            echo(f"{spec.stack_name}: {result.outcome.value}")
    if output == "json":
        emit_json(done)


@cli.command("template-diff")
@click.option("--base", required=True, help="Git ref to compare with, e.g. origin/main.")
@click.option("--comment", is_flag=True, help="Post (or update) the result as a pull request comment.")
@CONFIG_OPTION
def template_diff(base: str, comment: bool, config_path: Path | None) -> None:
    """List the resources the committed templates add, change or remove against BASE."""
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
    url = github.upsert_pr_comment(_pull_request_number(Path(event_path)), MARKER, text)
    click.echo(f"commented: {url}")


def _pull_request_number(event_path: Path) -> int:
    """The pull request's number from GitHub's event payload (GITHUB_EVENT_PATH)."""
    import json

    try:
        event = json.loads(event_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not a JSON document"
        raise InputError(
            f"GITHUB_EVENT_PATH {event_path}: cannot be read ({reason})",
            hint="Run --comment in a GitHub Actions job, which writes that file.",
        ) from None
    pull_request = event.get("pull_request") if isinstance(event, dict) else None
    number = pull_request.get("number") if isinstance(pull_request, dict) else None
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise InputError(
            f"GITHUB_EVENT_PATH {event_path}: the event is not a pull request (no pull_request.number)",
            hint="Run --comment from a pull_request workflow.",
        )
    return number


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
@click.argument("version")
@click.argument("legacy_version", required=False, cls=HiddenArgument)
@ENV_OPTION
@CONFIG_OPTION
@click.option("--wait", is_flag=True, help="Wait for a stack operation already running instead of refusing.")
@OUTPUT_OPTION
@DRY_RUN_OPTION
def deploy(
    version: str,
    legacy_version: str | None,
    environment: str | None,
    config_path: Path | None,
    wait: bool,
    output: str,
    dry_run: bool,
) -> None:
    """Deploy VERSION (already in ECR) to the environment's stack, by digest; no rollout check."""
    from pipeline.report import ReleaseReport
    from pipeline.steps.push import find_release
    from pipeline.steps.release import Engine
    from pipeline.steps.version import parse_version

    if legacy_version is not None:  # the old `pipeline deploy ENV VERSION`
        environment = resolve_env("deploy", environment, version)
        version = legacy_version
    environment = resolve_env("deploy", environment)
    number = parse_version(version)
    ctx = _context(config_path, wait=wait, environment=environment, echo=progress(output))
    ctx.clients.check_credentials()
    image = find_release(ctx.clients.ecr, ctx.repository, number)
    engine = Engine(ctx, environment, ReleaseReport("deploy", environment, number, digest=image.digest))
    engine.refuse_if_busy()
    if dry_run:
        engine.preview(image)
    else:
        engine.deploy(image)
        progress(output)(f"{engine.stack_name}: runs {image.version} ({image.digest})")
    if output == "json":
        emit_json(
            {
                "environment": environment,
                "stack": engine.stack_name,
                "version": image.version,
                "digest": image.digest,
                "url": engine.report.url,
                "outcome": "previewed" if dry_run else "deployed",
                "changes": engine.report.changes,
            }
        )


@cli.command()
@env_option(legacy_positional=True)
@CONFIG_OPTION
@OUTPUT_OPTION
def roll(environment: str | None, legacy_environment: str | None, config_path: Path | None, output: str) -> None:
    """Watch the environment's ECS rollout (with its strategy) until it completes, fails or times out."""
    from pipeline.report import ReleaseReport
    from pipeline.steps.release import Engine

    environment = resolve_env("roll", environment, legacy_environment)
    ctx = _context(config_path, environment=environment, echo=progress(output))
    engine = Engine(ctx, environment, ReleaseReport("roll", environment, ""))
    result = engine.roll(engine.rollout())
    if output == "json":
        emit_json({"environment": environment, "outcome": result.outcome.value, "seconds": round(result.seconds, 3)})
        return
    click.echo(f"rollout completed in {result.seconds:.0f}s")


@cli.command()
@env_option(legacy_positional=True)
@CONFIG_OPTION
@OUTPUT_OPTION
def smoke(environment: str | None, legacy_environment: str | None, config_path: Path | None, output: str) -> None:
    """Smoke-test the environment through its URL: the health path, then a sample prediction."""
    from pipeline.report import ReleaseReport
    from pipeline.steps.release import Engine

    environment = resolve_env("smoke", environment, legacy_environment)
    ctx = _context(config_path, environment=environment, echo=progress(output))
    engine = Engine(ctx, environment, ReleaseReport("smoke", environment, ""))
    result = engine.smoke(engine.rollout())
    if output == "json":
        emit_json(
            {
                "environment": environment,
                "url": engine.report.url,
                "attempts": result.attempts,
                "seconds": round(result.seconds, 3),
                "response": result.response,
            }
        )


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
            "the demo did not end as intended (1.0.0 running, 1.2.0 and 1.3.0 rolled back)",
            hint="Read the output above.",
        )


def _write_summary(path: Path | None, report: Any) -> None:
    if path is None:
        return
    from pipeline.report import markdown_summary

    try:
        with path.open("a", encoding="utf-8") as out:
            out.write(markdown_summary(report))
    except OSError as error:
        raise InputError(
            f"cannot write the job summary to {path}: {error.strerror}", hint="Check --summary / GITHUB_STEP_SUMMARY."
        ) from None


@cli.command()
def schema() -> None:
    """Print a JSON Schema of pipeline.toml, for editors (Taplo, Even Better TOML) and checks."""
    import json

    from pipeline.schema import build_schema

    click.echo(json.dumps(build_schema(), indent=2))


def _register_groups() -> None:
    from pipeline.commands.init import init
    from pipeline.commands.local import local
    from pipeline.commands.operate import completion, destroy, logs

    cli.add_command(init)
    cli.add_command(local)
    for command in (logs, destroy, completion):
        cli.add_command(command)


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
    except click.UsageError as err:
        # One line, as every other error: what is wrong and where the help is.
        where = (
            f"pipeline {err.ctx.command_path.split(' ', 1)[1]}"
            if err.ctx and " " in err.ctx.command_path
            else "pipeline"
        )
        message = " ".join(err.format_message().split())
        stop = "" if message.endswith((".", "?", "!")) else "."
        click.echo(f"error: {message}{stop} Run `{where} --help`.", err=True)
        sys.exit(err.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as error:
        # Last resort: a botocore error no step translated is still one line, never a traceback.
        # botocore not loaded means it cannot be one (and synth must not load boto3 to find out).
        if "botocore.exceptions" not in sys.modules:
            raise
        from botocore.exceptions import BotoCoreError

        from pipeline.aws.clients import botocore_error

        if not isinstance(error, BotoCoreError):
            raise
        translated = botocore_error(error)
        click.echo(f"error: {translated.one_line()}", err=True)
        sys.exit(translated.exit_code)
    sys.exit(0)
