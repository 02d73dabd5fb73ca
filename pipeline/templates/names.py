"""Stack, export and file names: one place so steps and templates agree."""

from __future__ import annotations

from pipeline.config import Settings


def registry_stack(settings: Settings) -> str:
    return f"{settings.app.name}-registry"


def ci_access_stack(settings: Settings) -> str:
    return f"{settings.app.name}-ci-access"


def service_stack(settings: Settings, environment: str) -> str:
    return f"{settings.app.name}-service-{environment}"


def repository_name(settings: Settings) -> str:
    return settings.app.name


def export(settings: Settings, what: str) -> str:
    """Name of a value the registry stack exports for the service stacks."""
    return f"{registry_stack(settings)}-{what}"


def template_file(stack_kind: str, environment: str | None = None) -> str:
    return f"{stack_kind}-{environment}.yaml" if environment else f"{stack_kind}.yaml"
