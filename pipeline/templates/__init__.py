"""Pure troposphere + awacs: settings in, CloudFormation templates out. No boto3 here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from troposphere import Template

from pipeline.config import Settings


@dataclass(frozen=True)
class StackSpec:
    """One stack the pipeline manages: its name, the committed template file, and how to build it."""

    kind: str  # registry | ci-access | service
    stack_name: str
    file_name: str
    environment: str | None
    build: Callable[[], Template]


def stack_specs(settings: Settings) -> list[StackSpec]:
    from pipeline.templates import names
    from pipeline.templates.ci_access import build_ci_access
    from pipeline.templates.registry import build_registry
    from pipeline.templates.service import build_service

    specs = [
        StackSpec(
            "registry",
            names.registry_stack(settings),
            names.template_file("registry"),
            None,
            lambda: build_registry(settings),
        ),
        StackSpec(
            "ci-access",
            names.ci_access_stack(settings),
            names.template_file("ci-access"),
            None,
            lambda: build_ci_access(settings),
        ),
    ]
    for env in settings.environment_names:
        specs.append(
            StackSpec(
                "service",
                names.service_stack(settings, env),
                names.template_file("service", env),
                env,
                lambda env=env: build_service(settings, env),  # type: ignore[misc]
            )
        )
    return specs


def render(template: Template) -> str:
    """YAML text of a template; the same template always renders to the same bytes."""
    return str(template.to_yaml(clean_up=False, long_form=False))
