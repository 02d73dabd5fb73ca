"""What every chained step needs, built once by the CLI (or a test) and passed down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.clock import Clock
from pipeline.config import Environment, Settings
from pipeline.errors import DeployError
from pipeline.templates import names

if TYPE_CHECKING:
    from pipeline.aws.clients import Clients
    from pipeline.github import GitHubRecorder
    from pipeline.steps.build import ImageBuilder

Echo = Callable[[str], None]


@dataclass
class Context:
    settings: Settings
    clients: Clients
    clock: Clock
    echo: Echo
    github: GitHubRecorder | None = None
    builder: Callable[[], ImageBuilder] | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    poll: float = 5.0  # seconds between AWS polls (the local AWS scales them down)
    wait_if_busy: bool = False

    @property
    def repository(self) -> str:
        return names.repository_name(self.settings)

    def environment(self, name: str) -> Environment:
        return self.settings.environment(name)

    def service_stack(self, env: str) -> str:
        return names.service_stack(self.settings, env)

    def committed_template(self, file_name: str) -> str:
        """Deploys use the reviewed, committed template, and refuse one that is stale."""
        from pipeline.synth import check_templates

        folder = self.settings.root / "cloudformation"
        stale = check_templates(self.settings, folder)
        if file_name in stale:
            raise DeployError(
                f"cloudformation/{file_name} is stale or missing",
                hint="Run `pipeline synth`, review and commit it, then deploy.",
            )
        return (folder / file_name).read_text(encoding="utf-8")
