"""No secret on any command line while a release builds, checks, pushes, deploys and pulls.

A thread reads every process's /proc/PID/cmdline (what any local user, or a container sharing the
host's process list, can read) for the whole release on the local ground, and fails on the ECR
token, the registry password or the GitHub token. The buildah path; the Docker path runs the same
watch through a release with Buildx on a real engine (tests/docker/test_buildx_release.py).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.clock import WallClock
from pipeline.github import GitHubRecorder
from pipeline.steps.build import BuildahBuilder
from pipeline.steps.context import Context
from pipeline.steps.deploy import Deployer
from pipeline.steps.release import ReleaseOutcome, release
from pipeline.templates import stack_specs
from tests.client_loop import BackgroundLoop

pytestmark = pytest.mark.slow


class CommandLineWatch(BackgroundLoop):
    """Polls /proc/*/cmdline in a thread; remembers every command line that holds a secret."""

    def __init__(self, secrets: dict[str, str], issued: Callable[[], list[str]] | None = None) -> None:
        super().__init__()
        self.secrets = {name: value.encode() for name, value in secrets.items() if value}
        # Every ECR token is fresh (one per push or pull): `issued` names those handed out so far.
        self.issued = issued or (lambda: [])
        self.leaks: list[tuple[str, str]] = []
        self.seen: set[tuple[str, ...]] = set()  # the words of what ran, to prove the watch saw the work

    def _run(self) -> None:
        while not self._stop.is_set():
            for password in self.issued():
                token = base64.b64encode(f"AWS:{password}".encode()).decode()
                self.secrets.setdefault(f"ECR token {password[:4]}...", token.encode())
                self.secrets.setdefault(f"ECR token password {password[:4]}...", password.encode())
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                words = argv.decode(errors="replace").split("\0")
                self.seen.add((Path(words[0]).name, *words[1:12]))
                for name, secret in self.secrets.items():
                    if secret in argv:
                        self.leaks.append((name, argv.replace(b"\0", b" ").decode(errors="replace")[:300]))


def test_a_release_puts_no_token_or_password_on_any_command_line(ground: Any, project: Any) -> None:
    ecr = boto3.client("ecr", region_name="us-east-1")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    username, password = base64.b64decode(token).decode().split(":", 1)
    secrets = {
        "ECR token": token,
        "registry password": password,
        "registry's own password": ground.registry.password,
        "GitHub token": os.environ["GITHUB_TOKEN"],
    }
    ground.github.create_tag("v1.0.0")
    deployer = Deployer(boto3.client("cloudformation", region_name="us-east-1"), WallClock(), lambda _: None, poll=0.05)
    for spec in stack_specs(project.settings):
        if spec.environment is None:
            deployer.deploy(spec.stack_name, (project.root / "cloudformation" / spec.file_name).read_text(), {})
    context = Context(
        project.settings,
        WallClock(),
        lambda _: None,
        github=GitHubRecorder.from_environ(os.environ),
        builder=BuildahBuilder,
        poll=0.05,
    )

    with CommandLineWatch(secrets, ground.bridge.issued_passwords) as watch:
        report = release(context, "staging", "v1.0.0")

    assert report.outcome is ReleaseOutcome.RELEASED
    assert not watch.leaks, f"secrets on command lines: {watch.leaks}"
    assert len(watch.secrets) > len(secrets) + 2  # the push's and the tasks' pulls' own tokens were watched for
    # The watch saw the steps that used to carry the token: the push, the login, the tasks' pull.
    for step in ("push", "login", "from"):
        assert any(seen[0] == "buildah" and step in seen for seen in watch.seen), step
