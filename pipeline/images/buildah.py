"""Thin, typed wrappers around buildah: daemonless builds and pushes (no Docker engine needed).

Always `--storage-driver vfs` and `--isolation chroot`, which work unprivileged-in-a-container where
overlay and runc do not. Storage lives under $PIPELINE_BUILDAH_ROOT when set (tests use one temp store
per session), else under buildah's own default (/var/lib/containers for root).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import BuildError, PushError
from pipeline.images.auth import private_folder, registry_host, write_private

BUILDAH = "buildah"
ROOT_ENV = "PIPELINE_BUILDAH_ROOT"
ManifestFormat = Literal["v2s2", "oci"]
_TAIL_LINES = 20
# The registry's DENIED error code, not a local "permission denied".
_DENIED = re.compile(r"(?<!permission )denied:")
# `login` refused with a status alone, e.g. ECR's 403 for an expired token
_LOGIN_REFUSED = re.compile(r"authenticating creds for .*invalid status code from registry 40[13]")


def global_args() -> list[str]:
    """Options that go before the subcommand: storage driver and, when set, the storage root."""
    args = [BUILDAH, "--storage-driver", "vfs"]
    root = os.environ.get(ROOT_ENV)
    if root:
        args += ["--root", str(Path(root) / "storage"), "--runroot", str(Path(root) / "run")]
    return args


def _env() -> dict[str, str]:
    return {**os.environ, "BUILDAH_ISOLATION": "chroot"}


def _require_buildah(error: type[BuildError | PushError]) -> None:
    if shutil.which(BUILDAH) is None:
        raise error("buildah is not installed", hint="install the buildah package (apt-get install buildah)")


def build(
    context_dir: Path | str,
    dockerfile: Path | str,
    tag: str,
    build_args: Mapping[str, str] | None = None,
    on_output: Callable[[str], None] | None = None,
    platform: str | None = None,
) -> str:
    """Build `dockerfile` in `context_dir` as `tag` (for `platform`, e.g. linux/arm64, when given);
    returns the image id (sha256 hex of its config).

    Each output line goes to `on_output` as it arrives. Built in Docker format so that
    HEALTHCHECK and friends survive and the push needs no conversion to v2s2.
    """
    _require_buildah(BuildError)
    context = Path(context_dir)
    if not context.is_dir():
        raise BuildError(f"build context {context} is not a directory")
    with tempfile.TemporaryDirectory(prefix="pipeline-build-") as scratch:
        iidfile = Path(scratch) / "iid"
        command = global_args() + [
            "build",
            "--isolation", "chroot",
            "--format", "docker",
            "--file", str(dockerfile),
            "--tag", tag,
            "--iidfile", str(iidfile),
        ]  # fmt: skip
        if platform:
            command += ["--platform", platform]
        for key, value in (build_args or {}).items():
            command += ["--build-arg", f"{key}={value}"]
        command.append(str(context))
        code, tail = _stream(command, on_output)
        if code != 0:
            raise BuildError(
                f"image build of {tag} failed: {_error_line(tail)}",
                hint="the build output above shows the failing step",
            )
        return iidfile.read_text().strip().removeprefix("sha256:")


@contextmanager
def login(registry: str, username: str, password: str, tls_verify: bool = True) -> Iterator[Path]:
    """An auth file logged in to `registry`, for `--authfile`; removed when the block ends.

    The password goes through stdin (`--password-stdin`), never the command line, into a file in
    a private folder (0700; the file 0600). A refused login raises PushError naming the registry.
    """
    _require_buildah(PushError)
    with private_folder("pipeline-auth-") as folder:
        authfile = folder / "auth.json"
        write_private(authfile, "{}\n")
        command = global_args() + [
            "login",
            "--authfile", str(authfile),
            "--username", username,
            "--password-stdin",
            f"--tls-verify={'true' if tls_verify else 'false'}",
            registry,
        ]  # fmt: skip
        done = subprocess.run(command, input=password, capture_output=True, text=True, env=_env(), check=False)
        if done.returncode != 0:
            raise _push_error(registry, done.stderr)
        yield authfile


def push(
    image: str,
    destination: str,
    username: str,
    password: str,
    tls_verify: bool = True,
    manifest_format: ManifestFormat = "v2s2",
    retries: int = 3,
    retry_delay_s: float = 2.0,
) -> str:
    """Push `image` to `destination` (`host/repo:tag`); returns the manifest digest (`sha256:...`).

    The digest is sha256 of the manifest bytes as pushed, which is what the registry reports as
    Docker-Content-Digest and what ECR calls imageDigest. v2s2 by default: every ECR client and
    ECS accept it, and a Docker-format build pushes it unchanged. `retries` and
    `retry_delay_s` cover network blips. buildah 1.28 makes 3 tries whatever `--retry` says and
    treats a 0 delay as its 2 s default, so tests pass a small positive delay instead.
    The credentials reach buildah through a private auth file (see `login`), never its arguments.
    """
    _require_buildah(PushError)
    target = destination if "://" in destination else f"docker://{destination}"
    with login(registry_host(destination), username, password, tls_verify) as authfile:
        digestfile = authfile.parent / "digest"
        command = global_args() + [
            "push",
            "--format", manifest_format,
            "--digestfile", str(digestfile),
            "--authfile", str(authfile),
            "--retry", str(retries),
            "--retry-delay", f"{max(1, round(retry_delay_s * 1000))}ms",
            f"--tls-verify={'true' if tls_verify else 'false'}",
            image,
            target,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, env=_env(), check=False)
        if done.returncode != 0:
            raise _push_error(destination, done.stderr)
        return digestfile.read_text().strip()


def inspect_config(image: str) -> dict[str, Any]:
    """The run settings of `image`: Cmd, Entrypoint, Env, ExposedPorts, WorkingDir, User."""
    data = _inspect(image)
    config = (data.get("Docker") or {}).get("config") or data["OCIv1"].get("config") or {}
    return {
        "Cmd": config.get("Cmd") or [],
        "Entrypoint": config.get("Entrypoint") or [],
        "Env": config.get("Env") or [],
        "ExposedPorts": config.get("ExposedPorts") or {},
        "WorkingDir": config.get("WorkingDir") or "",
        "User": config.get("User") or "",
    }


def remove(image: str) -> None:
    """Remove `image` from local storage; an image that is already gone is fine."""
    _require_buildah(BuildError)
    done = subprocess.run(
        global_args() + ["rmi", "--force", image],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    if done.returncode != 0 and "image not known" not in done.stderr:
        raise BuildError(f"could not remove image {image}: {_error_line(done.stderr.splitlines())}")


def _inspect(image: str) -> dict[str, Any]:
    _require_buildah(BuildError)
    done = subprocess.run(
        global_args() + ["inspect", "--type", "image", image],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    if done.returncode != 0:
        raise BuildError(
            f"cannot inspect image {image}: {_error_line(done.stderr.splitlines())}",
            hint=f"is it built in this buildah store? ({ROOT_ENV}={os.environ.get(ROOT_ENV, '')})",
        )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _stream(command: list[str], on_output: Callable[[str], None] | None) -> tuple[int, list[str]]:
    """Run `command`, handing each output line to `on_output`; returns exit code and last lines."""
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
        env=_env(),
    ) as process:
        assert process.stdout is not None  # nosec B101 # stdout=PIPE makes it a stream
        for raw in process.stdout:
            line = raw.rstrip("\n")
            tail.append(line)
            if on_output is not None:
                on_output(line)
        code = process.wait()
    return code, list(tail)


def _error_line(lines: list[str]) -> str:
    """The most telling line of buildah's output: its `Error:` line, else the last non-empty one."""
    for line in reversed(lines):
        if line.startswith(("Error:", "error ")):
            return line.removeprefix("Error:").strip()
    return next((line.strip() for line in reversed(lines) if line.strip()), "no output")


def _push_error(destination: str, stderr: str) -> PushError:
    detail = _error_line(stderr.splitlines())
    lowered = stderr.lower()
    host = destination.split("://", 1)[-1].split("/", 1)[0]
    refused = ("unauthorized", "authentication required", "invalid username/password")  # the last from `login`
    if any(word in lowered for word in refused) or _DENIED.search(lowered) or _LOGIN_REFUSED.search(lowered):
        return PushError(
            f"registry refused the credentials for {host}: {detail}",
            hint="get a fresh login (ECR tokens last 12 hours) for the right account and region",
        )
    if "tag invalid" in lowered:
        return PushError(
            f"the tag already exists and the repository's tags are immutable: {detail}",
            hint="release under a new version tag; an ECR tag is never overwritten",
        )
    if "name unknown" in lowered:
        return PushError(
            f"the repository does not exist in {host}: {detail}",
            hint="deploy the registry stack first",
        )
    if "server gave http response to https client" in lowered:
        return PushError(
            f"{host} speaks plain HTTP: {detail}",
            hint="push with tls_verify=False to a local registry",
        )
    if "connection refused" in lowered or "no such host" in lowered:
        return PushError(f"cannot reach the registry {host}: {detail}", hint="is the registry running?")
    return PushError(f"push to {destination} failed: {detail}")
