"""The whole local ground in one context manager: AWS (moto + extensions), the registry behind ECR,
GitHub, and (when available) real ECS tasks behind a local load balancer.

    with LocalGround(time_scale=0.02) as ground:
        os.environ.update(ground.environ())   # the pipeline now talks to it through boto3 / PyGithub

The CLI's demo and the end-to-end tests both stand on this; the pipeline itself never imports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from types import TracebackType
from typing import Any, Self

from local_ground.aws import LocalAWS
from local_ground.ecr_bridge import EcrRegistryBridge
from local_ground.github_server import LocalGitHub
from local_ground.moto_extensions import all_extensions
from local_ground.registry import LocalRegistry

Progress = Callable[[str], None]


class LocalGround:
    def __init__(
        self,
        *,
        github_repository: str = "acme/iris-classifier",
        time_scale: float = 0.02,
        run_tasks: bool = True,
        progress: Progress | None = None,
    ) -> None:
        self.github_repository = github_repository
        self.time_scale = time_scale
        self.run_tasks = run_tasks
        self.progress = progress or (lambda _line: None)
        self.registry: LocalRegistry | None = None
        self.bridge: EcrRegistryBridge | None = None
        self.aws: LocalAWS | None = None
        self.github: LocalGitHub | None = None
        self.tasks: Any = None
        self._stack = ExitStack()
        self.startup_seconds = 0.0

    def __enter__(self) -> Self:
        started = time.monotonic()
        try:
            self.registry = self._stack.enter_context(LocalRegistry())
            self.bridge = EcrRegistryBridge(self.registry)
            extensions: list[Any] = [*all_extensions(), self.bridge]
            if self.run_tasks:
                self.tasks = _real_tasks(self.bridge, self.time_scale)
                extensions.append(self.tasks)
            self.aws = self._stack.enter_context(LocalAWS(extensions=extensions))
            self.github = self._stack.enter_context(LocalGitHub(owner_repo=self.github_repository))
        except BaseException:
            self._stack.close()
            raise
        self.startup_seconds = time.monotonic() - started
        self.progress(
            f"local ground up in {self.startup_seconds:.2f}s: AWS {self.aws.endpoint_url}, "
            f"registry {self.bridge.host}, GitHub {self.github.base_url}"
        )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()

    def environ(self) -> dict[str, str]:
        """Everything boto3 and PyGithub need to find this ground, as environment variables."""
        assert self.aws is not None and self.github is not None  # nosec B101 # narrows the type for mypy; set by __enter__
        return {
            **self.aws.environ(),
            "GITHUB_TOKEN": self.github.token,
            "GITHUB_REPOSITORY": self.github.repository,
            "GITHUB_API_URL": self.github.base_url,
            # Polls of AWS shrink with every other AWS duration here.
            "PIPELINE_POLL_SECONDS": f"{max(0.05, 5 * self.time_scale):.3f}",
        }


def _real_tasks(bridge: EcrRegistryBridge, time_scale: float) -> Any:
    """The real-task extension: ECS tasks run from their images behind a local load balancer."""
    from local_ground.tasks import EcsTasksRunForReal

    return EcsTasksRunForReal(bridge, time_scale=time_scale)
