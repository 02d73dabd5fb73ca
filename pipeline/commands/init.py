"""`pipeline init`: adopt the pipeline in the git repository here (see pipeline/init.py)."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.init import DEFAULT_HEALTH_PATH, DEFAULT_PORT


@click.command("init")
@click.option("--yes", "-y", is_flag=True, help="Ask nothing: take the flags, else the defaults found.")
@click.option("--name", default=None, help="App name: stack and repository names (default: the folder's name).")
@click.option(
    "--port", type=int, default=None, help=f"Container port (default: the Dockerfile's EXPOSE, else {DEFAULT_PORT})."
)
@click.option(
    "--health-path",
    default=None,
    help=f"Health check path (default: the Dockerfile's HEALTHCHECK, else {DEFAULT_HEALTH_PATH}).",
)
@click.option("--github-repository", default=None, help="OWNER/REPO (default: the origin remote).")
@click.option("--region", default=None, help="AWS region, e.g. us-east-1.")
@click.option("--account", default=None, help="12-digit AWS account id.")
@click.option("--dockerfile", default="Dockerfile", show_default=True, help="Dockerfile, relative to --context.")
@click.option("--context", default=".", show_default=True, help="Build context folder.")
@click.option("--smoke-path", default=None, help="Path the smoke test calls (default: the health path, with GET).")
@click.option("--smoke-request", default=None, help="JSON body the smoke test POSTs to --smoke-path.")
@click.option("--force", is_flag=True, help="Replace files that exist.")
def init(
    yes: bool,
    name: str | None,
    port: int | None,
    health_path: str | None,
    github_repository: str | None,
    region: str | None,
    account: str | None,
    dockerfile: str,
    context: str,
    smoke_path: str | None,
    smoke_request: str | None,
    force: bool,
) -> None:
    """Write pipeline.toml, the workflows and the templates for the git repository here."""
    from pipeline import init as adopt

    root = Path.cwd()
    hints = adopt.dockerfile_hints(root / context / dockerfile)

    def ask(prompt: str, value: object, default: object) -> str:
        if value is not None:
            return str(value)
        if yes:
            if default is None:
                raise click.UsageError(
                    f"--{prompt.lower().replace(' ', '-')} is required with --yes (no default found)"
                )
            return str(default)
        return str(click.prompt(prompt, default=default))

    answers = adopt.Answers(
        name=ask("Name", name, adopt.default_name(root)),
        region=ask("Region", region, "us-east-1"),
        account=ask("Account", account, None),
        github_repository=ask("GitHub repository", github_repository, adopt.github_repository_from_git(root)),
        port=int(ask("Port", port, hints.port or DEFAULT_PORT)),
        health_path=ask("Health path", health_path, hints.health_path or DEFAULT_HEALTH_PATH),
        dockerfile=dockerfile,
        context=context,
        smoke_path=smoke_path,
        smoke_request=smoke_request,
    )
    for path, changed in adopt.write_project(root, answers, force=force):
        click.echo(f"{'wrote' if changed else 'unchanged'} {path}")
    click.echo("next: review and commit these files, then `pipeline bootstrap` once per AWS account")
