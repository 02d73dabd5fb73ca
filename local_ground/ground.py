"""The whole local ground in one context manager: AWS (moto + extensions), the registry behind ECR,
GitHub, and (when available) real ECS tasks behind a local load balancer.

    with LocalGround(time_scale=0.02) as ground:
        os.environ.update(ground.environ())   # the pipeline now talks to it through boto3 / PyGithub

The CLI's demo and the end-to-end tests both stand on this; the pipeline itself never imports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from local_ground.aws import ACCESS_KEY, LocalAWS
from local_ground.ecr_bridge import EcrRegistryBridge
from local_ground.environ import IDENTITY_SWITCH, identity_enforced
from local_ground.github_server import LocalGitHub
from local_ground.moto_extensions import all_extensions
from local_ground.registry import LocalRegistry

Progress = Callable[[str], None]
__all__ = ["IDENTITY_SWITCH", "LocalGround", "identity_enforced_by_default"]


def identity_enforced_by_default() -> bool:
    """$LOCAL_GROUND_IDENTITY (on unless off); a value that is neither is a ConfigError."""
    return identity_enforced(os.environ)


class LocalGround:
    def __init__(
        self,
        *,
        github_repository: str = "acme/iris-classifier",
        time_scale: float = 0.02,
        run_tasks: bool = True,
        progress: Progress | None = None,
        enforce_identity: bool | None = None,
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
        self.enforce_identity = identity_enforced_by_default() if enforce_identity is None else enforce_identity
        self.identity: Any = None  # the IdentityEnforcement extension, when enforcing
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
            from local_ground.iam.oidc_provider import OidcProviderFromTemplates

            extensions.append(OidcProviderFromTemplates())
            if self.enforce_identity:
                from local_ground.iam.enforcement import IdentityEnforcement

                self.identity = IdentityEnforcement(operator_keys=[ACCESS_KEY])
                extensions.append(self.identity)  # last: outermost around CloudFormation's execution
                if self.tasks is not None:
                    self.tasks.identity = self.identity  # tasks read their secrets as the execution role
            self.aws = self._stack.enter_context(LocalAWS(extensions=extensions, time_scale=self.time_scale))
            self.github = self._stack.enter_context(LocalGitHub(owner_repo=self.github_repository))
            if self.identity is not None:
                # The local STS reaches GitHub's issuer here, as a hosts-file entry would send it.
                self.identity.issuer_hosts[urlsplit(self.github.oidc.issuer).netloc] = self.github.base_url
        except BaseException:
            self._stack.close()
            raise
        self.startup_seconds = time.monotonic() - started
        self.progress(
            f"local ground up in {self.startup_seconds:.2f}s: AWS {self.aws.endpoint_url}, "
            f"registry {self.bridge.host}, GitHub {self.github.base_url}, "
            f"identity {'enforced' if self.identity is not None else 'not enforced'}"
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
            # The pipeline's AWS waits (polls, rollout_timeout, stack waits) shrink by the same one factor.
            "PIPELINE_TIME_SCALE": repr(self.time_scale),
        }


def _real_tasks(bridge: EcrRegistryBridge, time_scale: float) -> Any:
    """The real-task extension: ECS tasks run from their images behind a local load balancer."""
    from local_ground.tasks import EcsTasksRunForReal

    return EcsTasksRunForReal(bridge, time_scale=time_scale)
