"""One container run for real from an image: `buildah from` (pulling it when needed), `buildah run
--isolation chroot` on the host network, stopped as ECS stops a task (SIGTERM, stop timeout, SIGKILL),
then removed. The pre-push image check and the local AWS's tasks both run images through this.

Measured with buildah 1.28: SIGTERM to the `buildah run` process does not reach the container, buildah
kills it outright ("subprocess exited on terminated"), so a graceful stop signals the container's own
main process (the first process below `buildah run` that is not buildah's), as ECS signals PID 1.
`buildah run` exits with the container's exit code, or 1 after a signal (then read from its output).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ContainerError, PushError
from pipeline.images import buildah
from pipeline.images.auth import registry_host, split_creds

_POLL = 0.01  # bounded polling of real processes only
# Go's names for the signals that end a container, as `buildah run` reports them.
_SIGNALS = {
    "terminated": signal.SIGTERM,
    "killed": signal.SIGKILL,
    "interrupt": signal.SIGINT,
    "hangup": signal.SIGHUP,
    "aborted": signal.SIGABRT,
    "segmentation fault": signal.SIGSEGV,
}


def free_port() -> int:
    """A free 127.0.0.1 port (for a container's $PORT, or a local server)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class ContainerSpec:
    """What a task definition's container definition asks for, with the image already pullable here."""

    name: str
    image: str
    environment: Mapping[str, str] = field(default_factory=dict)
    entry_point: Sequence[str] | None = None
    command: Sequence[str] | None = None
    essential: bool = True
    user: str | None = None  # the container definition's `user` (buildah run --user)


def children(pid: int) -> list[int]:
    """Children of every thread: Go programs such as buildah fork from any of their threads."""
    found: list[int] = []
    for thread in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (thread / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        for child in children(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


def _is_buildah(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return True
    return os.path.basename(argv0).startswith(b"buildah")


class ContainerProcess:
    """One working container and its `buildah run` process."""

    def __init__(
        self, spec: ContainerSpec, working_name: str, log_path: Path, creds: str | None = None, tls_verify: bool = True
    ) -> None:
        """`creds` (`user:password`) reach buildah through a private auth file, never its arguments."""
        self.spec = spec
        self.working_name = working_name
        self.log_path = log_path
        self._creds = creds
        self._tls_verify = tls_verify
        self._process: subprocess.Popen[bytes] | None = None
        self._created = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def pull(self) -> None:
        """`buildah from`: pull the image if missing and make the working container."""
        command = buildah.global_args() + [
            "from",
            "--name",
            self.working_name,
            f"--tls-verify={'true' if self._tls_verify else 'false'}",
        ]
        if not self._creds:
            self._from(command)
            return
        username, password = split_creds(self._creds)
        try:
            with buildah.login(registry_host(self.spec.image), username, password, self._tls_verify) as authfile:
                self._from(command + ["--authfile", str(authfile)])
        except PushError as error:  # the login itself was refused
            raise ContainerError(f"CannotPullContainerError: {error}") from None

    def _from(self, command: list[str]) -> None:
        done = subprocess.run(
            command + [self.spec.image],
            capture_output=True,
            text=True,
            env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
            check=False,
        )
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise ContainerError(f"CannotPullContainerError: {lines[-1] if lines else 'pull failed'}")
        self._created = True

    def set_secret_environment(self, values: Mapping[str, str]) -> None:
        """Secrets into the working container's environment, never onto a command line: `buildah config
        --env NAME` takes NAME's value from its own environment. Call after pull(), before start()."""
        if not values:
            return
        command = buildah.global_args() + ["config"]
        for name in sorted(values):
            command += ["--env", name]
        done = subprocess.run(
            command + [self.working_name],
            capture_output=True,
            text=True,
            env={**os.environ, **values, "BUILDAH_ISOLATION": "chroot"},
            check=False,
        )
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise ContainerError(f"CannotStartContainerError: {lines[-1] if lines else 'secrets not set'}")

    def argv(self) -> list[str]:
        """ECS semantics: entryPoint/command override the image's ENTRYPOINT/CMD (buildah run applies neither)."""
        config = buildah.inspect_config(self.spec.image)
        entry = list(self.spec.entry_point) if self.spec.entry_point is not None else list(config["Entrypoint"])
        if self.spec.command is not None:
            cmd = list(self.spec.command)
        else:
            cmd = [] if self.spec.entry_point is not None else list(config["Cmd"])
        if not entry + cmd:
            raise ContainerError(f"CannotStartContainerError: no command for container {self.spec.name}")
        return entry + cmd

    def start(self, environment: Mapping[str, str]) -> None:
        """Run the container on the host network; returns at once (the process is registered by the caller)."""
        argv = self.argv()
        command = buildah.global_args() + ["run", "--isolation", "chroot"]
        if self.spec.user:
            command += ["--user", self.spec.user]
        for key, value in {**self.spec.environment, **environment}.items():
            command += ["--env", f"{key}={value}"]
        command += [self.working_name, "--", *argv]
        with self._lock, open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
                start_new_session=True,
            )

    def main_pid(self) -> int | None:
        """The container's own first process (ECS's PID 1), once buildah has started it."""
        if self._process is None:
            return None
        return next((p for p in descendants(self._process.pid) if not _is_buildah(p)), None)

    def wait_started(self, timeout: float) -> bool:
        """Bounded wait until the container's process runs (False: it exited or never appeared)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exit_code() is not None:
                return False
            if self.main_pid() is not None:
                return True
            time.sleep(_POLL)
        return False

    def exit_code(self) -> int | None:
        """None while running; else the container's exit code (128+signal when a signal ended it)."""
        if self._process is None:
            return None
        code = self._process.poll()
        if code is None:
            return None
        if code == 1:
            output = self.output()
            for name, number in _SIGNALS.items():
                if f"subprocess exited on {name}" in output:
                    return 128 + int(number)
        return code

    def output(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-limit:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, stop_timeout: float) -> int | None:
        """SIGTERM to the container's main process, up to `stop_timeout` to exit, then SIGKILL."""
        process = self._process
        if process is None or process.poll() is not None:
            return self.exit_code()
        main = self.main_pid()
        try:
            os.kill(main if main is not None else process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.exit_code()

    def kill(self) -> None:
        """SIGKILL everything under `buildah run`, then the process itself; waits for it (bounded)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        for pid in reversed(descendants(process.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def remove(self) -> None:
        """Remove the working container (the pulled image stays, as on a container instance)."""
        if not self._created:
            return
        subprocess.run(buildah.global_args() + ["rm", self.working_name], capture_output=True, check=False)
        self._created = False
