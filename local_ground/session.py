"""`pipeline local`: the local ground for the repository in a folder, as a user runs it.

    pipeline local up              start AWS, registry and GitHub; print what to export; run until Ctrl-C
    pipeline local up --detach     the same in the background (state in the user's cache folder)
    pipeline local down            stop what `up --detach` started
    pipeline local exec -- CMD     start, run CMD with that environment, stop, exit with CMD's code

The local GitHub knows the repository's git tags (at their commits), AWS durations are scaled as in
the demo, and the pipeline talks to all of it through the ordinary variables (AWS_ENDPOINT_URL,
GITHUB_API_URL, ...), so `pipeline bootstrap`, `release`, `status` and `rollback` run unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from local_ground.environ import identity_enforced
from pipeline import config
from pipeline.errors import ConfigError, LocalEnvironmentError, PipelineError

Echo = Callable[[str], None]
TIME_SCALE = 0.02  # AWS's waits x 0.02: a 30 s health check interval takes 0.6 s here
TIME_SCALE_ENV = "LOCAL_GROUND_TIME_SCALE"
DETACHED_START_SECONDS = 60.0
CONFIG_ENV = "PIPELINE_CONFIG"  # what `--config` of every pipeline command falls back to
GROUND_MODULE = "local_ground.session"  # `python -m` runs the detached ground; `down` looks for it by name


@dataclass(frozen=True)
class GitTag:
    name: str
    sha: str


def git_tags(root: Path) -> list[GitTag]:
    """The repository's tags and the commits they point at (none outside a git repository)."""
    listed = subprocess.run(
        ["git", "-C", str(root), "for-each-ref", "--format=%(refname:short) %(objectname) %(*objectname)", "refs/tags"],
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0:
        return []
    tags = []
    for line in listed.stdout.splitlines():
        name, sha, *peeled = line.split()
        tags.append(GitTag(name, peeled[0] if peeled else sha))  # an annotated tag's commit, not the tag object
    return tags


def time_scale(environ: Mapping[str, str]) -> float:
    """The ground's factor: $LOCAL_GROUND_TIME_SCALE (the suite runs its grounds at 0.01), else 0.02.
    Every AWS duration and the pipeline's own waits shrink alike, so only a busy machine can tell."""
    return config.factor_from(
        environ, TIME_SCALE_ENV, TIME_SCALE, hint=f"Use e.g. {TIME_SCALE:g} (the default), or unset it."
    )


def settings_file(root: Path, config_path: Path | None) -> Path:
    """The settings the ground serves: --config or $PIPELINE_CONFIG as given, else `root`'s pipeline.toml."""
    return config_path if config_path is not None else root / config.DEFAULT_PATH


def check_inputs(root: Path, config_path: Path | None) -> tuple[config.Settings, float, bool]:
    """The settings, time scale and identity switch; a bad one is refused before anything starts."""
    scale = time_scale(os.environ)
    enforce_identity = identity_enforced(os.environ)
    return config.load(settings_file(root, config_path)), scale, enforce_identity


@contextmanager
def running(root: Path, echo: Echo, config_path: Path | None = None) -> Iterator[dict[str, str]]:
    """The local ground for the project at `root`; yields the environment that points at it."""
    settings, scale, enforce_identity = check_inputs(root, config_path)
    from local_ground.ground import LocalGround

    with LocalGround(
        github_repository=settings.app.github_repository,
        time_scale=scale,
        progress=lambda line: echo(line),
        enforce_identity=enforce_identity,
    ) as ground:
        assert ground.github is not None  # nosec B101 # started by LocalGround
        tags = git_tags(root)
        for tag in tags:
            ground.github.create_tag(tag.name, tag.sha)
        if tags:
            echo(f"local GitHub knows {len(tags)} tag(s) of {settings.app.github_repository}")
        environ = {
            **ground.environ(),
            # The settings' region, as a user's own AWS configuration would give it.
            "AWS_REGION": settings.app.region,
            "AWS_DEFAULT_REGION": settings.app.region,
        }
        if config_path is not None:
            # The commands run against the ground read the same settings file, wherever they run.
            environ[CONFIG_ENV] = str(config_path.resolve())
        yield environ


def print_exports(environ: Mapping[str, str], echo: Echo) -> None:
    for key in sorted(environ):
        echo(f"export {key}={_shell_quote(environ[key])}")


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def exec_with_ground(root: Path, argv: Sequence[str], echo: Echo, config_path: Path | None = None) -> int:
    """Start the ground, run `argv` with its environment, stop; CMD's exit code."""
    if not argv:
        raise LocalEnvironmentError("no command given", hint="Use `pipeline local exec -- CMD ...`.")
    with running(root, echo, config_path) as environ:
        # The `pipeline` that runs this one comes first on PATH, so CMD's `pipeline ...` is the same tool.
        scripts = str(Path(sys.executable).parent)
        path = os.pathsep.join([scripts, os.environ.get("PATH", "")])
        try:
            completed = subprocess.run(list(argv), cwd=root, env={**os.environ, **environ, "PATH": path})
        except FileNotFoundError:
            raise LocalEnvironmentError(f"command not found: {argv[0]}", hint="Check the command after `--`.") from None
        except KeyboardInterrupt:
            echo("interrupted; stopping the local ground")
            return 130
    return completed.returncode


def serve_until_stopped(
    root: Path, echo: Echo, state_file: Path | None = None, config_path: Path | None = None
) -> None:
    """Run the ground in the foreground until SIGINT/SIGTERM; write the state file when detached."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with running(root, echo, config_path) as environ:
            if state_file is not None:
                pid = os.getpid()
                # The start time tells this process from a later one given the same pid (after a crash or reboot).
                state = {"pid": pid, "started": _process_start(pid), "root": str(root), "environ": environ}
                _write_state(state_file, state)
            else:
                echo("the local ground is up; in another shell:")
                print_exports(environ, echo)
                echo("Ctrl-C stops it")
            stop.wait()
            echo("stopping the local ground")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if state_file is not None:
            state_file.unlink(missing_ok=True)


def cache_folder() -> Path:
    """$XDG_CACHE_HOME/ecs-model-pipeline/local (~/.cache/... when unset), a folder or none yet."""
    given = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(given or Path.home() / ".cache")
    folder = base / "ecs-model-pipeline" / "local"
    for part in reversed((folder, *folder.parents)):  # a file anywhere on the way stops every use of it
        if part.exists() and not part.is_dir():
            if given and part in (base, *base.parents):
                raise ConfigError(
                    "XDG_CACHE_HOME", f"{part} is not a folder", hint="Point it at a folder, or unset it."
                )
            raise LocalEnvironmentError(
                f"{part} is not a folder", hint="Remove it; the local ground keeps its state there."
            )
    return folder


def state_path(root: Path) -> Path:
    """One state file per project folder, in the user's cache, never in the repository."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_folder() / f"{digest}.json"


def _write_state(path: Path, state: Mapping[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state), encoding="utf-8")
    temporary.chmod(0o600)
    temporary.replace(path)


def _ignore(_line: str) -> None:
    pass


def read_state(root: Path, note: Echo = _ignore) -> dict[str, object] | None:
    """The state of the ground `up --detach` started for `root`, or None. A file no running ground of ours
    owns (garbage, a pid that is gone or now another process's) is removed; `note` says so when it matters."""
    path = state_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise LocalEnvironmentError(
            f"state file {path} cannot be read ({err.strerror})", hint="Remove it if no local ground runs."
        ) from None
    try:
        state = json.loads(text)
    except ValueError:
        state = None
    pid = state.get("pid") if isinstance(state, dict) else None
    if not isinstance(state, dict) or not _valid_pid(pid) or not isinstance(state.get("environ"), dict):
        reason = "it names no local ground"
    elif not _alive(pid):
        path.unlink(missing_ok=True)  # left by a ground that is gone: nothing to say
        return None
    elif not _is_ground(pid, state, path):
        reason = f"pid {pid} is not a local ground"
    else:
        return state
    path.unlink(missing_ok=True)
    note(f"stale state file ({reason}): removed")
    return None


def _valid_pid(pid: object) -> TypeGuard[int]:
    # 0 and -1 would signal our own process group or every process we may signal; True is an int too.
    return isinstance(pid, int) and not isinstance(pid, bool) and pid > 0


def _alive(pid: int) -> bool:
    """Running: a zombie (ended, not yet reaped by its parent) has stopped and counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat_fields(pid)
    return not fields or fields[0] != "Z"  # without /proc, signal 0 is all there is to go by


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (the state) on, or None without it: the command name before them may
    hold spaces and parentheses, so the fields start after its last ")"."""
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace").rpartition(")")[2].split()
    except OSError:
        return None


def _process(pid: int) -> tuple[str, list[str]] | None:
    """When `pid` started and its command line; None when it is gone or not ours to read.

    Linux: /proc (start in clock ticks since boot, /proc/PID/stat field 22); elsewhere ps (its lstart,
    and the command line split at spaces, enough to find the module and the state file in it)."""
    if Path("/proc/self").is_dir():
        fields = _stat_fields(pid)
        try:
            argv = Path("/proc", str(pid), "cmdline").read_bytes().decode("utf-8", errors="replace").split("\0")
        except OSError:
            return None
        return (fields[19], argv) if fields and len(fields) > 19 else None
    shown = [
        subprocess.run(["ps", "-p", str(pid), "-o", f"{column}="], capture_output=True, text=True)
        for column in ("lstart", "command")
    ]
    if any(run.returncode != 0 for run in shown):
        return None
    return shown[0].stdout.strip(), shown[1].stdout.split()


def _process_start(pid: int) -> str | None:
    process = _process(pid)
    return process[0] if process else None


def _is_ground(pid: int, state: Mapping[str, object], state_file: Path) -> bool:
    """Whether `pid` is the ground that writes `state_file`: it runs this module for that file and, when
    the state says when the ground started, started then. A stale file's pid may belong to anything."""
    process = _process(pid)
    if process is None:
        return False
    started, argv = process
    recorded = state.get("started")
    if recorded is not None and recorded != started:
        return False
    return GROUND_MODULE in argv and str(state_file) in argv


def up_detached(
    root: Path,
    echo: Echo,
    *,
    config_path: Path | None = None,
    note: Echo = _ignore,
    timeout: float = DETACHED_START_SECONDS,
) -> dict[str, str]:
    """Start the ground in a background process of its own; return its environment once it is up."""
    check_inputs(root, config_path)  # bad settings are the user's to fix (exit 2), not a failed start
    if read_state(root, note) is not None:
        raise LocalEnvironmentError(
            f"a local ground already runs for {root}", hint="Run `pipeline local down` first, or use it as it is."
        )
    path = state_path(root)
    log = path.with_suffix(".log")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise LocalEnvironmentError(
            f"{path.parent}: cannot be created ({err.strerror})", hint="Set XDG_CACHE_HOME to a folder you may write."
        ) from None
    argv = [sys.executable, "-m", GROUND_MODULE, str(root), str(path)]
    if config_path is not None:
        argv.append(str(config_path.resolve()))
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the user's shell does not reach it
        )
    deadline = time.monotonic() + timeout
    while True:
        state = read_state(root)
        if state is not None:
            environ = state["environ"]
            assert isinstance(environ, dict)  # nosec B101 # read_state checked it
            # stdout holds only the export lines, so `eval "$(pipeline local up --detach)"` works
            note(f"local ground up in the background (pid {process.pid}); `pipeline local down` stops it")
            print_exports(environ, echo)
            return {str(k): str(v) for k, v in environ.items()}
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.terminate()
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] if log.exists() else []
            cause = f": {tail[0].removeprefix('error: ')}" if tail else ""  # _main's one line, or a traceback's last
            raise LocalEnvironmentError(f"the local ground did not start{cause}", hint=f"See {log}.")
        time.sleep(0.1)


def down(root: Path, echo: Echo, *, note: Echo = _ignore, timeout: float = 30.0) -> bool:
    """Stop the background ground of `root`; False when none runs."""
    stale: list[str] = []
    state = read_state(root, stale.append)
    if state is None:
        # A stale file's line says it all; `down` still succeeds: no ground runs for `root`, as asked.
        for line in stale:
            note(line)
        if not stale:
            echo(f"no local ground runs for {root}")
        return False
    pid = state["pid"]
    assert isinstance(pid, int)  # nosec B101 # read_state checked it
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid) and _is_ground(pid, state, state_path(root)):  # the pid may be another's by now
        os.kill(pid, signal.SIGKILL)
    state_path(root).unlink(missing_ok=True)
    echo(f"local ground stopped (pid {pid})")
    return True


def _main(argv: list[str]) -> None:
    """Entry point of the detached process: `python -m local_ground.session ROOT STATE_FILE [CONFIG]`."""
    root, state_file = Path(argv[0]), Path(argv[1])
    config_path = Path(argv[2]) if len(argv) > 2 else None
    try:
        serve_until_stopped(root, lambda line: print(line, flush=True), state_file, config_path)
    except PipelineError as err:
        print(f"error: {err.one_line()}", flush=True)  # the last line of the log: `up --detach` quotes it
        sys.exit(err.exit_code)


if __name__ == "__main__":
    _main(sys.argv[1:])
