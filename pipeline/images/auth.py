"""Registry credentials that never reach a command line, and never outlive the operation.

Any local user reads a process's arguments (/proc/PID/cmdline), and so does a container run with
`buildah run --isolation chroot` (it shares the host's process list); an ECR token is a 12-hour
push/pull credential. So a login goes through stdin (`--password-stdin`) into an auth file in a
private temporary folder (0700, the file 0600), the tools get the file's path, and the folder is
removed when the operation ends: nothing is left in ~/.docker/config.json either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import PushError


@contextmanager
def private_folder(prefix: str) -> Iterator[Path]:
    """A temporary folder only this user can enter (mkdtemp makes it 0700), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_private(path: Path, text: str) -> None:
    """Create `path` as 0600 from the start (no window in which it is readable by others)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def split_creds(creds: str) -> tuple[str, str]:
    """`user:password` (the password may itself hold colons) as its two parts."""
    username, _, password = creds.partition(":")
    return username, password


def registry_host(reference: str) -> str:
    """The registry part of `host/repo:tag`, `docker://host/repo` or `host/repo@sha256:...`."""
    return reference.split("://", 1)[-1].split("/", 1)[0]


@contextmanager
def docker_config(registry: str, username: str, password: str, docker: str = "docker") -> Iterator[dict[str, str]]:
    """An environment whose DOCKER_CONFIG is a private folder logged in to `registry`.

    `docker login --password-stdin` writes the token there instead of ~/.docker/config.json, and
    the folder goes when the block ends. config.json exists from the start: buildah, given
    DOCKER_CONFIG, refuses a folder without one.
    """
    with private_folder("pipeline-docker-") as folder:
        write_private(folder / "config.json", "{}\n")
        env = {**os.environ, "DOCKER_CONFIG": str(folder)}
        login = subprocess.run(
            [docker, "login", "--username", username, "--password-stdin", registry],
            input=password,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if login.returncode != 0:
            raise PushError(
                f"registry {registry} refused the credentials: {login.stderr.strip()}",
                hint="Check the ECR permissions of the role in use.",
            )
        yield env
