"""What every running task and service controller shares: time scale, target groups, process
registry, where images are pulled from, and the account and region they live in."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .containers import ProcessRegistry
from .targets import TargetGroups
from .timescale import TimeScale

# An ECR image URI: ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY(:TAG|@DIGEST)
_ECR = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<rest>.+)$")


# Checks a task must pass before its containers start: (task definition, task id, account, region) ->
# the stopped reason when it may not start, else None. The identity enforcement adds the execution
# role's (local_ground.iam.execution_role) while installed.
StartCheck = Callable[[Any, str, str, str], "str | None"]
_start_checks: list[StartCheck] = []


def add_start_check(check: StartCheck) -> None:
    _start_checks.append(check)


def remove_start_check(check: StartCheck) -> None:
    if check in _start_checks:
        _start_checks.remove(check)


def ecr_repository(image: str) -> tuple[str, str, str] | None:
    """(account, region, repository name) of an ECR image URI; None for any other image."""
    match = _ECR.match(image)
    if match is None:
        return None
    name = match["rest"].split("@", 1)[0].split(":", 1)[0]
    return match["account"], match["region"], name


class RegistryFront(Protocol):
    """The ECR data plane (EcrRegistryBridge): where ECR image URIs are pulled from here."""

    @property
    def host(self) -> str: ...
    def login(self) -> tuple[str, str]: ...


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Pull:
    reference: str
    creds: str | None
    tls_verify: bool
    error: str | None = None  # why ECS could not pull it (the task then fails to start)


@dataclass
class Runtime:
    scale: TimeScale
    targets: TargetGroups
    processes: ProcessRegistry
    registry: RegistryFront | None
    log_dir: Path
    account_id: str
    region: str
    # Whether IAM is enforced now (the ground's identity switch): secrets are then read as the execution role.
    identity_enforced: Callable[[], bool] = field(default_factory=lambda: _never)

    def start_refusal(self, task_definition: Any, task_id: str) -> str | None:
        """Why ECS would stop this task before its containers start (the first check that says so)."""
        for check in list(_start_checks):
            reason = check(task_definition, task_id, self.account_id, self.region)
            if reason:
                return reason
        return None

    def pull_of(self, image: str) -> Pull:
        """An ECR URI of this account and region is pulled through the bridge (plain HTTP, ECR login);
        one of another account or region names a registry this ground does not have (on AWS: another
        registry, needing its own permissions), so the pull fails as ECS reports it; anything else
        is pulled as written."""
        match = _ECR.match(image)
        if match is None or self.registry is None:
            return Pull(image, None, True)
        if (match["account"], match["region"]) != (self.account_id, self.region):
            host = image.split("/", 1)[0]
            return Pull(
                image,
                None,
                True,
                error=f"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve "
                f"ref {image}: {host}/{match['rest'].split('@')[0].split(':')[0]}: not found",
            )
        registry = self.registry
        username, password = registry.login()  # a fresh ECR token per pull, as ECS gets one with the execution role
        return Pull(f"{registry.host}/{match['rest']}", f"{username}:{password}", False)
