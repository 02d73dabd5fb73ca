"""LocalRegistry: a real docker-registry on loopback that demands a login, and leaves nothing behind."""

from __future__ import annotations

import base64
import errno
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from local_ground import registry as registry_module
from local_ground.registry import LocalRegistry
from pipeline.errors import LocalEnvironmentError

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _status(url: str, credentials: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if credentials:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with _NO_PROXY.open(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _port_is_closed(host: str) -> bool:
    address, port = host.rsplit(":", 1)
    with socket.socket() as sock:
        return sock.connect_ex((address, int(port))) == errno.ECONNREFUSED


def test_requires_the_login_it_was_given() -> None:
    with LocalRegistry(password="s3cret") as registry:
        assert registry.host.startswith("127.0.0.1:")
        assert registry.url == f"http://{registry.host}"
        assert registry.username == "AWS"
        assert _status(f"{registry.url}/v2/") == 401
        assert _status(f"{registry.url}/v2/", ("AWS", "wrong")) == 401
        assert _status(f"{registry.url}/v2/", ("AWS", "s3cret")) == 200


def test_password_is_random_by_default() -> None:
    assert LocalRegistry().password != LocalRegistry().password
    assert len(LocalRegistry().password) >= 24


def test_exit_stops_the_process_closes_the_port_and_removes_the_temp_dir() -> None:
    with LocalRegistry() as registry:
        pid, host, root = registry.pid, registry.host, registry.root
        assert pid is not None and root is not None and (root / "config.yml").is_file()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not a zombie
    assert _port_is_closed(host)
    assert not root.exists()
    with pytest.raises(LocalEnvironmentError):
        _ = registry.host


def test_an_exception_in_the_block_still_stops_it() -> None:
    with pytest.raises(RuntimeError), LocalRegistry() as registry:
        pid = registry.pid
        raise RuntimeError("boom")
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_start_and_stop_take_well_under_a_second() -> None:
    registry = LocalRegistry()
    started = time.monotonic()
    registry.start()
    up = time.monotonic()
    registry.stop()
    down = time.monotonic()
    assert up - started < 1.0
    assert down - up < 1.0


def test_a_registry_that_cannot_start_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "docker-registry"
    fake.write_text("#!/bin/sh\necho 'configuration error: storage driver missing' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(registry_module, "REGISTRY_BINARY", str(fake))
    registry = LocalRegistry()
    with pytest.raises(LocalEnvironmentError, match="storage driver missing"):
        registry.start()
    assert registry.root is None and registry.pid is None
