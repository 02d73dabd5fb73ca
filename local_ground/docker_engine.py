"""A throwaway Docker engine: Debian's dockerd started by hand, in a folder of its own, then removed.

GitHub runners build with Docker Buildx and check images with `docker run`; this starts the same
kind of engine here so that path runs for real. Each start gets a fresh data root, exec root, socket,
pidfile and DOCKER_CONFIG (whose cli-plugins holds the Buildx plugin that `make setup` unpacked from
Debian's next release). The engine touches nothing of the host's network: no iptables rules, no IP
forwarding or masquerading, no docker0 bridge (`--bridge=none`); containers use the host network,
as the buildah tasks do. The packaged docker service is never started.

Stopping is by PID (SIGTERM, then SIGKILL), then removing what dockerd leaves behind: the netns bind
mount under its exec root, a docker0 it made, /run/docker if it was not there before, and the folder.
`leftovers()` names anything still there; tests assert it is empty.

    with DockerEngine() as engine:
        os.environ.update(engine.environ())   # docker, buildx and the pipeline now use this engine
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from pipeline.errors import LocalEnvironmentError

# Debian's docker.io puts dockerd in /usr/sbin; elsewhere (GitHub's runners) it is on PATH.
DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
# Debian's client, beside its dockerd (a client elsewhere on PATH may be of another version).
DOCKER_CLIENT = "/usr/bin/docker"
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 15.0
_RUN_DOCKER = Path("/run/docker")


def _cache() -> Path:
    """Where scripts/install-system-packages.sh unpacks what it takes from Debian's next release."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ecs-model-pipeline" / "docker"


def buildx_plugin() -> Path:
    return _cache() / "cli-plugins" / "docker-buildx"


def engine_26() -> Path:
    """docker.io 26 and containerd 1.7 (usr/sbin, usr/bin): the containerd image store, which the
    registry layer cache (`--cache-to type=registry`) needs; bookworm's 20.10 has no such store."""
    return _cache() / "engine-26"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=2)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(2)
        sock.connect(str(self.path))
        self.sock = sock


def _api(sock: Path, method: str, path: str) -> bytes:
    connection = _UnixConnection(sock)
    try:
        connection.request(method, path)
        return connection.getresponse().read()
    finally:
        connection.close()


def kill_containers(sock: Path) -> None:
    """SIGKILL every running container: dockerd's shutdown would wait each one's stop timeout (10 s)."""
    try:
        running = json.loads(_api(sock, "GET", "/containers/json"))
        for container in running:
            _api(sock, "POST", f"/containers/{container['Id']}/kill")
    except (OSError, ValueError):
        pass  # the engine is gone already: stop() cleans up after it


def ping(sock: Path) -> bool:
    """The engine's API answers GET /_ping with OK once it serves requests."""
    connection = _UnixConnection(sock)
    try:
        connection.request("GET", "/_ping")
        return connection.getresponse().read() == b"OK"
    except OSError:
        return False
    finally:
        connection.close()


def _interfaces() -> set[str]:
    """Interfaces an engine could make: its bridge and veth pairs (others on this machine are not ours)."""
    return {name for name in os.listdir("/sys/class/net") if name == "docker0" or name.startswith(("veth", "br-"))}


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first (so they can be unmounted in that order)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(root) or point.startswith(str(root) + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def _processes_using(root: Path) -> dict[int, str]:
    """Processes whose command line names `root`: dockerd, its containerd, shims."""
    ours = str(root).encode()
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes()
        except OSError:
            continue
        if ours in argv:
            found[int(cmdline.parent.name)] = argv.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def _dockerds_running() -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().split(b"\0", 1)[0].endswith(b"dockerd"):
                return True
        except OSError:
            continue
    return False


class DockerEngine:
    """`containerd_store=True` starts docker.io 26 with the containerd image store (the registry layer
    cache needs it); otherwise bookworm's docker.io 20.10 with `storage_driver`."""

    def __init__(self, *, storage_driver: str = "overlay2", containerd_store: bool = False) -> None:
        self.storage_driver = storage_driver
        self.containerd_store = containerd_store
        self.dockerd = str(engine_26() / "usr" / "sbin" / "dockerd") if containerd_store else DOCKERD
        self.root = Path()
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0
        self._interfaces_before: set[str] = set()
        self._run_docker_existed = True

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def config(self) -> Path:
        return self.root / "config"

    def environ(self) -> dict[str, str]:
        """DOCKER_HOST and DOCKER_CONFIG for this engine, and PATH with Debian's client first."""
        return {
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(self.config),
            "PATH": f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def __enter__(self) -> Self:
        for binary, package in ((self.dockerd, "docker.io"), (DOCKER_CLIENT, "docker.io")):
            if not Path(binary).exists():
                raise LocalEnvironmentError(f"{binary} is missing", hint=f"Run `make setup` (it installs {package}).")
        plugin = buildx_plugin()
        if not plugin.exists():
            raise LocalEnvironmentError(
                f"the Buildx plugin is missing at {plugin}", hint="Run `make setup` (it unpacks docker-buildx)."
            )
        started = time.monotonic()
        self._interfaces_before = _interfaces()
        self._run_docker_existed = _RUN_DOCKER.exists()
        # A short path: the socket path must fit in sun_path (108 bytes).
        self.root = Path(tempfile.mkdtemp(prefix="pipeline-docker-", dir="/tmp"))  # nosec B108 # mkdtemp: private 0700 folder
        (self.config / "cli-plugins").mkdir(parents=True)
        (self.config / "cli-plugins" / "docker-buildx").symlink_to(plugin)
        # buildah reads DOCKER_CONFIG too and fails when its config.json is missing.
        (self.config / "config.json").write_text("{}\n")
        (self.root / "bin").mkdir()
        (self.root / "bin" / "docker").symlink_to(DOCKER_CLIENT)
        daemon: dict[str, object] = {"storage-driver": self.storage_driver}
        environ = dict(os.environ)
        if self.containerd_store:
            daemon = {"features": {"containerd-snapshotter": True}}
            # Its own containerd 1.7 and shims, found on PATH by dockerd.
            environ["PATH"] = f"{engine_26() / 'usr' / 'bin'}{os.pathsep}{environ.get('PATH', '')}"
        (self.root / "daemon.json").write_text(json.dumps(daemon) + "\n")
        command = [
            self.dockerd,
            "--config-file", str(self.root / "daemon.json"),
            "--data-root", str(self.root / "data"),
            "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "docker.pid"),
            "--host", f"unix://{self.socket}",
            # Leave the host's network alone: no rules, no forwarding, no bridge.
            "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
            "--bridge=none",
        ]  # fmt: skip
        log = (self.root / "dockerd.log").open("wb")
        try:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=environ
            )
        finally:
            log.close()
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def failure(self) -> str:
        """dockerd's own reason: its last fatal or error line (the log is mostly grpc chatter)."""
        try:
            lines = (self.root / "dockerd.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        marked = [
            line
            for line in lines
            if line.startswith("failed to start daemon") or "level=fatal" in line or "level=error" in line
        ]
        return (marked or lines or ["empty log"])[-1]

    def _wait_until_up(self) -> None:
        assert self.process is not None  # nosec B101 # started just before
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not ping(self.socket):
            if self.process.poll() is not None:
                raise LocalEnvironmentError(
                    f"dockerd exited with code {self.process.returncode} while starting: {self.failure()}",
                    hint="dockerd runs as root; `make setup` installs docker.io and the Buildx plugin.",
                )
            if time.monotonic() > deadline:
                raise LocalEnvironmentError(
                    f"dockerd did not answer on {self.socket} within {_START_TIMEOUT_S:.0f}s: {self.failure()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop dockerd by PID (it stops its containerd and containers), then remove what it left."""
        if self.process is not None and self.process.poll() is None:
            kill_containers(self.socket)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.root == Path():
            return
        # Anything of this engine still running (a containerd or shim that outlived dockerd).
        for pid in _processes_using(self.root):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for point in _mounts_under(self.root):
            subprocess.run(["umount", "--lazy", point], capture_output=True)
        if "docker0" in _interfaces() - self._interfaces_before:
            subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True)
        if not self._run_docker_existed or not _dockerds_running():
            # Only empty folders (plugins/), and only when no other engine still runs (an engine of a
            # parallel test worker may have made it first): never another daemon's files.
            for folder in sorted(_RUN_DOCKER.rglob("*"), key=lambda p: len(p.parts), reverse=True) + [_RUN_DOCKER]:
                try:
                    folder.rmdir()
                except OSError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """What of this engine is still on the machine: processes, mounts, interfaces, files."""
        found = [f"process {pid}: {cmd}" for pid, cmd in _processes_using(self.root).items()]
        found += [f"mount {point}" for point in _mounts_under(self.root)]
        found += [f"interface {name}" for name in sorted(_interfaces() - self._interfaces_before)]
        if self.root.exists():
            found.append(f"folder {self.root}")
        return found
