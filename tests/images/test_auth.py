"""Registry logins keep the password off every command line and leave no credential behind.

The Docker path runs a stand-in `docker` executable (a real process on PATH that records its
arguments, stdin and DOCKER_CONFIG); the buildah path logs in to the real local registry.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import PushError
from pipeline.images import buildah
from pipeline.images.auth import docker_config, split_creds
from pipeline.steps.build import BuildxBuilder

SECRET = "tok3n:with-colon"
FAKE_DOCKER = """#!{python}
import json, os, sys
config = os.environ.get("DOCKER_CONFIG")
entry = {{"argv": sys.argv[1:], "docker_config": config}}
if config:
    entry["folder_mode"] = oct(os.stat(config).st_mode & 0o777)
    entry["config_exists"] = os.path.isfile(os.path.join(config, "config.json"))
if sys.argv[1:2] == ["login"]:
    entry["stdin"] = sys.stdin.read()
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\\n")
if sys.argv[1:2] == ["login"]:
    if entry["stdin"] != os.environ["FAKE_DOCKER_PASSWORD"]:
        print("Error response from daemon: unauthorized", file=sys.stderr)
        sys.exit(1)
    with open(os.path.join(config, "config.json"), "w") as f:
        json.dump({{"auths": {{sys.argv[-1]: {{"auth": "stored"}}}}}}, f)
if sys.argv[1:3] == ["image", "inspect"]:
    print(json.dumps(["127.0.0.1:5000/app@sha256:" + "a" * 64]))
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    log = tmp_path / "docker.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.setenv("FAKE_DOCKER_PASSWORD", SECRET)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    return log


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_docker_login_reads_the_token_from_stdin_into_a_private_config_that_goes_away(fake_docker: Path) -> None:
    with docker_config("127.0.0.1:5000", "AWS", SECRET) as env:
        folder = Path(env["DOCKER_CONFIG"])
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "config.json").stat().st_mode) == 0o600

    (login,) = calls(fake_docker)
    assert login["argv"] == ["login", "--username", "AWS", "--password-stdin", "127.0.0.1:5000"]
    assert login["stdin"] == SECRET and login["folder_mode"] == "0o700" and login["config_exists"]
    assert not folder.exists()
    assert not (Path(os.environ["HOME"]) / ".docker").exists()  # nothing in ~/.docker/config.json


def test_buildx_push_keeps_the_token_off_every_command_line(fake_docker: Path) -> None:
    digest = BuildxBuilder().push("localhost/app:1.0.0", "127.0.0.1:5000/app:1.0.0", "AWS", SECRET, False)

    assert digest == "sha256:" + "a" * 64
    log = calls(fake_docker)
    assert [c["argv"][0] for c in log] == ["tag", "login", "push", "image"]
    assert all(SECRET not in " ".join(c["argv"]) for c in log)
    login, push = log[1], log[2]
    assert push["docker_config"] == login["docker_config"]  # the push uses the login it just made
    assert not Path(login["docker_config"]).exists()


def test_a_refused_docker_login_is_a_push_error_and_leaves_nothing(fake_docker: Path) -> None:
    with pytest.raises(PushError, match="registry 127.0.0.1:5000 refused the credentials"):
        with docker_config("127.0.0.1:5000", "AWS", "wrong"):
            pass
    (login,) = calls(fake_docker)
    assert not Path(login["docker_config"]).exists()


def test_creds_split_at_the_first_colon() -> None:
    assert split_creds("AWS:a:b") == ("AWS", "a:b")


@pytest.mark.slow
def test_buildah_login_writes_a_private_auth_file_and_removes_it(buildah_root: Path) -> None:
    from local_ground.registry import LocalRegistry

    with LocalRegistry() as registry:
        with buildah.login(registry.host, registry.username, registry.password, tls_verify=False) as authfile:
            assert stat.S_IMODE(authfile.stat().st_mode) == 0o600
            assert stat.S_IMODE(authfile.parent.stat().st_mode) == 0o700
            assert registry.host in json.loads(authfile.read_text())["auths"]
        assert not authfile.parent.exists()

        with pytest.raises(PushError, match=f"registry refused the credentials for {registry.host}"):
            with buildah.login(registry.host, registry.username, "wrong", tls_verify=False):
                pass
