"""`pipeline local`: which settings file it serves, its state file, and bad input, each refused in one line.

Every test keeps the state in its own XDG_CACHE_HOME: never the user's ~/.cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_ground import session
from local_ground.environ import IDENTITY_SWITCH, identity_enforced
from pipeline.errors import ConfigError

PIPELINE = str(Path(sys.executable).parent / "pipeline")
# What the user's shell may hold that would change which settings or switches these tests see.
CLEARED = ("PIPELINE_CONFIG", IDENTITY_SWITCH, session.TIME_SCALE_ENV, "XDG_CACHE_HOME")


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's cache folder, for the CLI it runs and for the session functions it calls here."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A repository as `pipeline init` leaves it, its settings moved to custom/custom.toml (none at its root)."""
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "Dockerfile").write_text("FROM scratch\nEXPOSE 8000\n", encoding="utf-8")
    init = [PIPELINE, "init", "--yes", "--name", "demo", "--port", "8000", "--health-path", "/healthz"]
    init += ["--github-repository", "o/r", "--region", "us-east-1", "--account", "123456789012"]
    subprocess.run(init, cwd=root, check=True, capture_output=True, env=_environ({}))
    (root / "custom").mkdir()
    (root / "pipeline.toml").rename(root / "custom" / "custom.toml")
    (root / "Dockerfile").rename(root / "custom" / "Dockerfile")  # image.context "." is the settings' folder
    return root


def _environ(extra: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in CLEARED}, **extra}


def cli(
    cwd: Path, *args: str, cache: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, its state under `cache` (never the real ~/.cache)."""
    environ = _environ({session.TIME_SCALE_ENV: "0.01", "XDG_CACHE_HOME": str(cache), **(env or {})})
    return subprocess.run([PIPELINE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environ)


@pytest.fixture()
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A real process that is no local ground; a stale state file may name its pid."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]


# --- the settings file: --config and $PIPELINE_CONFIG, as every other command reads them ---------------


def test_the_named_settings_file_is_the_one_the_ground_serves(project: Path) -> None:
    custom = project / "custom" / "custom.toml"
    settings, _, _ = session.check_inputs(project, custom)
    assert settings.app.github_repository == "o/r"
    with pytest.raises(ConfigError) as missing:
        session.check_inputs(project, None)
    assert missing.value.key == str(project / "pipeline.toml")


@pytest.mark.slow
def test_exec_runs_against_the_settings_file_named_by_config_or_pipeline_config(project: Path, cache: Path) -> None:
    custom = project / "custom" / "custom.toml"
    # The command sees the same file, so its own `pipeline ...` reads those settings too.
    script = f'test "$PIPELINE_CONFIG" = {custom} && pipeline check >/dev/null'
    by_option = cli(project, "local", "exec", "--config", str(custom), "--", "sh", "-c", script, cache=cache)
    assert by_option.returncode == 0, by_option.stderr
    by_variable = cli(
        custom.parent, "local", "exec", "--", "sh", "-c", script, cache=cache, env={"PIPELINE_CONFIG": "custom.toml"}
    )
    assert by_variable.returncode == 0, by_variable.stderr


@pytest.mark.parametrize("how", ["option", "variable"])
@pytest.mark.parametrize("command", [("exec", "--", "true"), ("up", "--detach")])
def test_a_missing_settings_file_is_named_as_given(
    project: Path, cache: Path, how: str, command: tuple[str, ...]
) -> None:
    given = "custom/nope.toml"
    option = ["--config", given] if how == "option" else []
    env = {"PIPELINE_CONFIG": given} if how == "variable" else {}
    result = cli(project, "local", command[0], *option, *command[1:], cache=cache, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: {given}: settings file not found. Check the path (--config / PIPELINE_CONFIG)."
    ]
    assert not cache.exists()  # refused before anything started: no log, no state


# --- the state file: only the ground it names is ever signalled ---------------------------------------


def _state_file(project: Path, cache: Path, state: object) -> Path:
    path = cache / "ecs-model-pipeline" / "local" / session.state_path(project / "custom").name
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(state), encoding="utf-8")
    return path


@pytest.mark.parametrize("recorded_start", [False, True])
def test_down_leaves_a_process_that_is_not_the_ground_alone(
    project: Path, cache: Path, bystander: subprocess.Popen[bytes], recorded_start: bool
) -> None:
    """The ground crashed (or the machine rebooted) and its pid went to another process: even one started
    at the time the file records is not signalled, its command line is not the ground's."""
    state: dict[str, object] = {"pid": bystander.pid, "root": str(project), "environ": {}}
    if recorded_start:
        state["started"] = _start_time(bystander.pid)
    path = _state_file(project, cache, state)
    result = cli(project, "local", "down", "--config", "custom/custom.toml", cache=cache)
    assert result.returncode == 0, result.stderr  # no ground runs here, as `down` was asked to make sure
    assert result.stderr.splitlines() == [f"stale state file (pid {bystander.pid} is not a local ground): removed"]
    assert result.stdout == ""
    assert bystander.poll() is None, "down signalled a process that is not the ground"
    assert not path.exists()


def _fake_ground(state_file: Path) -> subprocess.Popen[bytes]:
    """A process whose command line is a detached ground's (`python -m local_ground.session ROOT STATE`)."""
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "-m", session.GROUND_MODULE, "root", str(state_file)]
    return subprocess.Popen(argv)


def test_down_stops_the_ground_the_state_names_and_only_at_its_start_time(project: Path, cache: Path) -> None:
    path = _state_file(project, cache, {})
    ground = _fake_ground(path)
    try:
        # The same command line, started at another time: a later process that happens to look alike.
        path.write_text(json.dumps({"pid": ground.pid, "started": "1", "environ": {}}), encoding="utf-8")
        assert session.read_state(project / "custom") is None and not path.exists()
        assert ground.poll() is None
        path.write_text(json.dumps({"pid": ground.pid, "started": _start_time(ground.pid), "environ": {}}))
        lines: list[str] = []
        assert session.down(project / "custom", lines.append) is True
        assert lines == [f"local ground stopped (pid {ground.pid})"]
        assert ground.wait(timeout=10) == -signal.SIGTERM
        assert not path.exists()
    finally:
        ground.kill()
        ground.wait()


@pytest.mark.parametrize("text", ["[]", "garbage", '"text"', '{"pid": "12"}', '{"pid": 4194305}', "{}"])
def test_a_state_file_that_names_no_ground_is_removed_in_one_line(project: Path, cache: Path, text: str) -> None:
    path = _state_file(project, cache, None)
    path.write_text(text, encoding="utf-8")
    result = cli(project, "local", "down", "--config", "custom/custom.toml", cache=cache)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["stale state file (it names no local ground): removed"]
    assert not path.exists()


@pytest.mark.parametrize("pid", [0, -1, True])
def test_a_pid_that_would_signal_a_group_is_never_signalled(
    project: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, pid: object
) -> None:
    """os.kill(0, ...) signals our own process group, os.kill(-1, ...) every process we may: in process,
    with os.kill replaced, so a regression cannot take the machine down with it."""
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda p, s: sent.append((p, s)))
    path = _state_file(project, cache, {"pid": pid, "environ": {}})
    notes: list[str] = []
    assert session.down(project / "custom", lambda line: None, note=notes.append) is False
    assert sent == [] and not path.exists()
    assert notes == ["stale state file (it names no local ground): removed"]


def test_a_cache_home_that_is_a_file_is_one_line(project: Path, tmp_path: Path) -> None:
    file = tmp_path / "not-a-folder"
    file.write_text("", encoding="utf-8")
    for cache in (file, file / "below"):
        for command in (("down",), ("up", "--detach")):
            result = cli(project, "local", *command, "--config", "custom/custom.toml", cache=cache)
            assert result.returncode == 2, result.stderr
            assert result.stderr.splitlines() == [
                f"error: XDG_CACHE_HOME: {file} is not a folder. Point it at a folder, or unset it."
            ]


# --- the identity switch ----------------------------------------------------------------------------


def test_the_identity_switch_takes_on_or_off_and_refuses_anything_else() -> None:
    for text in ("", "on", "ON", " 1 ", "true", "yes"):
        assert identity_enforced({IDENTITY_SWITCH: text}) is True
    assert identity_enforced({}) is True
    for text in ("off", "Off", "0", "false", "no"):
        assert identity_enforced({IDENTITY_SWITCH: text}) is False
    with pytest.raises(ConfigError) as bogus:
        identity_enforced({IDENTITY_SWITCH: "bogus"})
    assert bogus.value.key == IDENTITY_SWITCH


@pytest.mark.parametrize("command", [("exec", "--", "true"), ("up", "--detach")])
def test_a_bogus_identity_switch_is_refused_before_the_ground_starts(
    project: Path, cache: Path, command: tuple[str, ...]
) -> None:
    env = {IDENTITY_SWITCH: "bogus"}
    result = cli(project, "local", command[0], "--config", "custom/custom.toml", *command[1:], cache=cache, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: {IDENTITY_SWITCH}: 'bogus' is neither on nor off. Use off to stop enforcing identity, or unset it."
    ]
    assert not cache.exists()


# --- a detached start that fails ---------------------------------------------------------------------


def test_a_failed_detached_start_names_its_log_and_quotes_its_one_line(project: Path, cache: Path) -> None:
    # No docker-registry (nor anything else) on PATH: the ground's own start fails, after the inputs passed.
    result = cli(
        project, "local", "up", "--detach", "--config", "custom/custom.toml", cache=cache, env={"PATH": "/nonexistent"}
    )
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    log = session.state_path(project / "custom").with_suffix(".log")
    assert line.startswith("error: the local ground did not start: ") and line.endswith(f"See {log}.")
    assert "is not installed" in line and "pipeline.errors" not in line and "error: error" not in line
    assert log.is_file()
