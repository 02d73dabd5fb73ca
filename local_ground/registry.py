"""A real OCI registry on loopback: Debian's `docker-registry` (distribution v2) with htpasswd auth.

ECR always requires a login, so the local registry does too. Each instance owns a temp dir holding
its config, htpasswd file, storage and log; leaving the context stops the process and removes it all.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

import yaml

from pipeline.errors import LocalEnvironmentError
from pipeline.images.container import free_port

REGISTRY_BINARY = "docker-registry"
HTPASSWD_BINARY = "htpasswd"
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0
_PORT_ATTEMPTS = 3  # a free port can be taken between probing and binding; retry on a new one


def _htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd entry; distribution only accepts bcrypt, and apache2-utils makes it.

    The password goes in on stdin (-i), never as an argument any local user could read."""
    if shutil.which(HTPASSWD_BINARY) is None:
        raise LocalEnvironmentError("htpasswd is not installed", hint="install the apache2-utils package")
    done = subprocess.run(
        [HTPASSWD_BINARY, "-Bin", username],
        input=password,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise LocalEnvironmentError(f"htpasswd failed: {done.stderr.strip()}")
    return done.stdout.strip() + "\n"


def _registry_config(root: Path, port: int) -> dict[str, object]:
    return {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "data")},
            "delete": {"enabled": True},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            "secret": secrets.token_hex(16),
            # Location headers without scheme/host, so a front on another port works unchanged.
            "relativeurls": True,
        },
        "auth": {"htpasswd": {"realm": "local-registry", "path": str(root / "htpasswd")}},
    }


class LocalRegistry:
    """`with LocalRegistry() as registry:` a running registry at `registry.host` with basic auth."""

    def __init__(self, username: str = "AWS", password: str | None = None) -> None:
        self._username = username
        self._password = password or secrets.token_urlsafe(24)
        self._root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    # -- what callers use ---------------------------------------------------------------------
    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._require_port()}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def username(self) -> str:
        return self._username

    @property
    def password(self) -> str:
        return self._password

    @property
    def root(self) -> Path | None:
        """The temp dir holding config, htpasswd, storage and log while running."""
        return self._root

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if shutil.which(REGISTRY_BINARY) is None:
            raise LocalEnvironmentError("docker-registry is not installed", hint="install the docker-registry package")
        self._root = Path(tempfile.mkdtemp(prefix="pipeline-registry-"))
        try:
            (self._root / "htpasswd").write_text(_htpasswd_line(self._username, self._password))
            last_error: LocalEnvironmentError | None = None
            for _ in range(_PORT_ATTEMPTS):
                try:
                    self._launch(free_port())
                    return
                except LocalEnvironmentError as error:
                    last_error = error
                    self._kill()
            assert last_error is not None  # nosec B101 # the loop ran at least once
            raise last_error
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._kill()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
        self._port = None

    # -- internals ----------------------------------------------------------------------------
    def _launch(self, port: int) -> None:
        assert self._root is not None  # nosec B101 # start() made the root first
        config = self._root / "config.yml"
        config.write_text(yaml.safe_dump(_registry_config(self._root, port)))
        log = self._root / "registry.log"
        with log.open("wb") as sink:  # a file, not a pipe: a full pipe would block the registry
            self._process = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # ^C in a terminal reaches us, not the registry directly
            )
        self._port = port
        self._wait_until_up(port, log)

    def _wait_until_up(self, port: int, log: Path) -> None:
        assert self._process is not None  # nosec B101 # _launch() started the process first
        deadline = time.monotonic() + _START_TIMEOUT_S
        delay = 0.005
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise self._start_error(f"exited with code {self._process.returncode}", log)
            if _answers_401(port):
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        raise self._start_error(f"did not answer within {_START_TIMEOUT_S:.0f} s", log)

    def _start_error(self, what: str, log: Path) -> LocalEnvironmentError:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
        return LocalEnvironmentError(
            f"local registry {what} on 127.0.0.1:{self._port}: {tail or 'no output'}",
            hint="check that docker-registry runs: docker-registry --version",
        )

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _require_port(self) -> int:
        if self._port is None:
            raise LocalEnvironmentError("the local registry is not running")
        return self._port


# Loopback must never go through an http_proxy from the environment.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers_401(port: int) -> bool:
    """Up means the API answers and asks for credentials, which proves auth is configured too."""
    try:
        _NO_PROXY.open(f"http://127.0.0.1:{port}/v2/", timeout=1)
    except urllib.error.HTTPError as error:
        return error.code == 401
    except OSError:
        return False
    return False  # 200 without credentials: auth is off, which would make tests lie
