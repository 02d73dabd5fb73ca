"""build: the model server image, tagged with the release version, by Docker Buildx or buildah.

Buildx is what GitHub runners have (a Docker engine, a registry layer cache); buildah builds
daemonless, which is what this project's own machines have. `image.builder = "auto"` picks Buildx
when a Docker engine answers, else buildah.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline.config import Settings
from pipeline.errors import BuildError, ConfigError, PushError

Echo = Callable[[str], None]


class ImageBuilder(Protocol):
    name: str

    def build(self, context: Path, dockerfile: Path, tag: str, build_args: dict[str, str], echo: Echo) -> str:
        """Build; returns a local image reference that push() accepts."""

    def push(self, image: str, destination: str, username: str, password: str, tls_verify: bool) -> str:
        """Push to `host/repo:tag`; returns the manifest digest (sha256:...)."""


@dataclass
class BuildahBuilder:
    platform: str | None = None  # e.g. linux/arm64; None: the host's
    name: str = "buildah"

    def build(self, context: Path, dockerfile: Path, tag: str, build_args: dict[str, str], echo: Echo) -> str:
        from pipeline.images import buildah

        buildah.build(
            context,
            dockerfile,
            tag,
            build_args=build_args,
            on_output=lambda line: echo(f"  | {line}"),
            platform=self.platform,
        )
        return tag

    def push(self, image: str, destination: str, username: str, password: str, tls_verify: bool) -> str:
        from pipeline.images import buildah

        return buildah.push(image, destination, username, password, tls_verify=tls_verify)


@dataclass
class BuildxBuilder:
    """Docker Buildx: builds into the local engine, pushes with docker, layer cache in a registry repository."""

    cache_ref: str | None = None
    platform: str | None = None  # e.g. linux/arm64; None: the engine's
    name: str = "buildx"

    def build(self, context: Path, dockerfile: Path, tag: str, build_args: dict[str, str], echo: Echo) -> str:
        command = ["docker", "buildx", "build", "--load", "--provenance=false", "--file", str(dockerfile), "--tag", tag]
        if self.platform:
            command += ["--platform", self.platform]
        for key, value in build_args.items():
            command += ["--build-arg", f"{key}={value}"]
        if self.cache_ref:
            command += [
                "--cache-from",
                f"type=registry,ref={self.cache_ref}",
                "--cache-to",
                f"type=registry,ref={self.cache_ref},mode=max,image-manifest=true,oci-mediatypes=true",
            ]
        code = _stream(command + [str(context)], echo)
        if code != 0:
            raise BuildError(
                f"docker buildx build of {tag} failed (exit {code})",
                hint="The build output above shows the failing step.",
            )
        return tag

    def push(self, image: str, destination: str, username: str, password: str, tls_verify: bool) -> str:
        from pipeline.images.auth import docker_config, registry_host

        subprocess.run(["docker", "tag", image, destination], check=True, capture_output=True)
        # The token goes through stdin into a private DOCKER_CONFIG that is gone after the push.
        with docker_config(registry_host(destination), username, password) as env:
            pushed = subprocess.run(["docker", "push", destination], capture_output=True, text=True, env=env)
        if pushed.returncode != 0:
            raise PushError(
                f"docker push {destination} failed: {pushed.stderr.strip().splitlines()[-1:]}",
                hint="Retry; check the registry.",
            )
        inspect = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", destination],
            capture_output=True,
            text=True,
        )
        digests = json.loads(inspect.stdout or "[]")
        repo = destination.rsplit(":", 1)[0]
        digest = next((d.split("@", 1)[1] for d in digests if d.startswith(repo + "@")), "")
        if not digest:
            raise PushError(f"docker push {destination} reported no digest", hint="Retry the push.")
        return digest


def docker_engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "buildx", "version"], capture_output=True)
    if probe.returncode != 0:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def pick_builder(settings: Settings, cache_ref: str | None = None) -> ImageBuilder:
    choice = settings.image.builder
    target = PLATFORMS[settings.image.architecture]
    if choice == "buildx" or (choice == "auto" and docker_engine_available()):
        return BuildxBuilder(cache_ref=cache_ref, platform=target)
    if shutil.which("buildah") is None:
        raise ConfigError(
            "image.builder",
            f"no image builder available ({'buildah' if choice == 'buildah' else 'neither a Docker engine nor buildah'} found)",
            hint="Install buildah or Docker with Buildx.",
        )
    return BuildahBuilder(platform=target)


# image.architecture -> the OCI platform the image is built for.
PLATFORMS = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}
# platform.machine() spellings -> image.architecture.
MACHINES = {"x86_64": "X86_64", "amd64": "X86_64", "aarch64": "ARM64", "arm64": "ARM64"}
# The binfmt_misc handler that runs another architecture's programs here (QEMU user emulation).
EMULATORS = {"X86_64": "qemu-x86_64", "ARM64": "qemu-aarch64"}


def missing_emulator(
    architecture: str, machine: str | None = None, binfmt: Path = Path("/proc/sys/fs/binfmt_misc")
) -> str | None:
    """Why this machine cannot run `architecture` programs (None when it can): not its CPU, and no
    enabled QEMU binfmt handler for it."""
    machine = machine or platform.machine()
    if MACHINES.get(machine.lower()) == architecture:
        return None
    handler = binfmt / EMULATORS[architecture]
    try:
        if handler.read_text().startswith("enabled"):
            return None
    except OSError:
        pass
    return f"this {machine} machine has no {EMULATORS[architecture]} binfmt handler to run them"


def check_architecture(
    architecture: str, machine: str | None = None, binfmt: Path = Path("/proc/sys/fs/binfmt_misc")
) -> None:
    """Refuse to build for a CPU this machine cannot run: the Dockerfile's RUN steps and the pre-push
    check execute the image's programs, which need that CPU or an enabled QEMU binfmt handler."""
    missing = missing_emulator(architecture, machine, binfmt)
    if missing:
        raise ConfigError(
            "image.architecture",
            f"{architecture} images cannot be built and checked here: {missing}",
            hint="Build on a machine of that CPU (GitHub: runs-on: ubuntu-24.04-arm for ARM64), or register "
            "QEMU's handlers (docker/setup-qemu-action; Debian: qemu-user-static).",
        )


def local_tag(settings: Settings, version: str) -> str:
    return f"localhost/{settings.app.name}:{version}"


def build_image(
    settings: Settings, version: str, builder: ImageBuilder, echo: Echo, build_args: dict[str, str] | None = None
) -> str:
    context = (settings.root / settings.image.context).resolve()
    dockerfile = context / settings.image.dockerfile
    if not dockerfile.is_file():
        raise ConfigError(
            "image.dockerfile",
            f"{dockerfile} does not exist",
            hint="Point image.context and image.dockerfile at the model server.",
        )
    check_architecture(settings.image.architecture)
    tag = local_tag(settings, version)
    echo(f"building {tag} with {builder.name} from {context}")
    args = {"MODEL_VERSION": version, **dict(settings.image.build_args), **(build_args or {})}
    return builder.build(context, dockerfile, tag, args, echo)


def _stream(command: list[str], echo: Echo) -> int:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None  # nosec B101 # stdout=PIPE makes it a stream
    for line in process.stdout:
        echo(f"  | {line.rstrip()}")
    return process.wait()
