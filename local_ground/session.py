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

from pipeline import config
from pipeline.errors import LocalEnvironmentError

Echo = Callable[[str], None]
TIME_SCALE = 0.02  # AWS's waits x 0.02: a 30 s health check interval takes 0.6 s here
TIME_SCALE_ENV = "LOCAL_GROUND_TIME_SCALE"
DETACHED_START_SECONDS = 60.0


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


@contextmanager
def running(root: Path, echo: Echo) -> Iterator[dict[str, str]]:
    """The local ground for the project at `root`; yields the environment that points at it."""
    from local_ground.ground import LocalGround

    scale = time_scale(os.environ)  # a bad value is refused before anything starts
    settings = config.load(root / config.DEFAULT_PATH)
    with LocalGround(
        github_repository=settings.app.github_repository,
        time_scale=scale,
        progress=lambda line: echo(line),
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
        yield environ


def print_exports(environ: Mapping[str, str], echo: Echo) -> None:
    for key in sorted(environ):
        echo(f"export {key}={_shell_quote(environ[key])}")


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def exec_with_ground(root: Path, argv: Sequence[str], echo: Echo) -> int:
    """Start the ground, run `argv` with its environment, stop; CMD's exit code."""
    if not argv:
        raise LocalEnvironmentError("no command given", hint="Use `pipeline local exec -- CMD ...`.")
    with running(root, echo) as environ:
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


def serve_until_stopped(root: Path, echo: Echo, state_file: Path | None = None) -> None:
    """Run the ground in the foreground until SIGINT/SIGTERM; write the state file when detached."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with running(root, echo) as environ:
            if state_file is not None:
                _write_state(state_file, {"pid": os.getpid(), "root": str(root), "environ": environ})
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


def state_path(root: Path) -> Path:
    """One state file per project folder, in the user's cache, never in the repository."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ecs-model-pipeline" / "local"
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache / f"{digest}.json"


def _write_state(path: Path, state: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state), encoding="utf-8")
    temporary.chmod(0o600)
    temporary.replace(path)


def read_state(root: Path) -> dict[str, object] | None:
    path = state_path(root)
    try:
        state: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    pid = state.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        path.unlink(missing_ok=True)  # left by a process that is gone
        return None
    return state


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def up_detached(root: Path, echo: Echo, *, timeout: float = DETACHED_START_SECONDS) -> dict[str, str]:
    """Start the ground in a background process of its own; return its environment once it is up."""
    if read_state(root) is not None:
        raise LocalEnvironmentError(
            f"a local ground already runs for {root}", hint="Run `pipeline local down` first, or use it as it is."
        )
    path = state_path(root)
    log = path.with_suffix(".log")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_ground.session", str(root), str(path)],
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
            assert isinstance(environ, dict)  # nosec B101 # written by serve_until_stopped
            echo(f"local ground up in the background (pid {process.pid}); `pipeline local down` stops it")
            print_exports(environ, echo)
            return {str(k): str(v) for k, v in environ.items()}
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.terminate()
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise LocalEnvironmentError(
                f"the local ground did not start{': ' + tail[0] if tail else ''}", hint=f"See {log}."
            )
        time.sleep(0.1)


def down(root: Path, echo: Echo, *, timeout: float = 30.0) -> bool:
    """Stop the background ground of `root`; False when none runs."""
    state = read_state(root)
    if state is None:
        echo(f"no local ground runs for {root}")
        return False
    pid = state["pid"]
    assert isinstance(pid, int)  # nosec B101 # read_state checked it
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    state_path(root).unlink(missing_ok=True)
    echo(f"local ground stopped (pid {pid})")
    return True


def _main(argv: list[str]) -> None:
    """Entry point of the detached process: `python -m local_ground.session ROOT STATE_FILE`."""
    root, state_file = Path(argv[0]), Path(argv[1])
    serve_until_stopped(root, lambda line: print(line, flush=True), state_file)


if __name__ == "__main__":
    _main(sys.argv[1:])
