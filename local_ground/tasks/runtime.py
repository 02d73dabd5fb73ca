"""What every running task and service controller shares: time scale, target groups, process
registry, where images are pulled from, and the account and region they live in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .containers import ProcessRegistry
from .targets import TargetGroups
from .timescale import TimeScale

# An ECR image URI: ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY(:TAG|@DIGEST)
_ECR = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/(?P<rest>.+)$")


class RegistryFront(Protocol):
    """The ECR data plane (EcrRegistryBridge): where ECR image URIs are pulled from here."""

    @property
    def host(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...


@dataclass(frozen=True)
class Pull:
    reference: str
    creds: str | None
    tls_verify: bool


@dataclass
class Runtime:
    scale: TimeScale
    targets: TargetGroups
    processes: ProcessRegistry
    registry: RegistryFront | None
    log_dir: Path
    account_id: str
    region: str

    def pull_of(self, image: str) -> Pull:
        """An ECR URI is pulled through the bridge (plain HTTP, ECR login); anything else as written."""
        match = _ECR.match(image)
        if match is None or self.registry is None:
            return Pull(image, None, True)
        registry = self.registry
        return Pull(f"{registry.host}/{match['rest']}", f"{registry.username}:{registry.password}", False)
