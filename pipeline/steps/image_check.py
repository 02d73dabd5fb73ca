"""The pre-push image check: start the built image, wait for its health path, send the sample
prediction, and refuse to push an image that fails. buildah runs it daemonless here; on GitHub
runners `docker run` does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipeline.config import Settings
from pipeline.errors import BuildError

Echo = Callable[[str], None]


@dataclass(frozen=True)
class CheckResult:
    seconds_to_healthy: float
    prediction: dict[str, object]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, children first (from /proc)."""
    found: list[int] = []
    queue = [pid]
    while queue:
        current = queue.pop(0)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            queue += kids
    return found


class BuildahContainer:
    """`buildah run` of an image on the host network; stopped as ECS stops a task (SIGTERM, then SIGKILL)."""

    def __init__(self, image: str, env: dict[str, str]) -> None:
        from pipeline.images import buildah

        config = buildah.inspect_config(image)
        command = list(config["Entrypoint"]) + list(config["Cmd"])
        if not command:
            raise BuildError(f"{image} has neither ENTRYPOINT nor CMD", hint="Add CMD to the Dockerfile.")
        made = subprocess.run(buildah.global_args() + ["from", image], capture_output=True, text=True)
        if made.returncode != 0:
            raise BuildError(f"cannot start {image}: {made.stderr.strip().splitlines()[-1:]}", hint="Is the image built?")
        self.container = made.stdout.strip().splitlines()[-1]
        env_args = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
        self.process = subprocess.Popen(
            buildah.global_args() + ["run", "--isolation", "chroot", *env_args, self.container, "--", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
        )

    def exited(self) -> int | None:
        return self.process.poll()

    def output(self) -> str:
        if self.process.poll() is None or self.process.stdout is None:
            return ""
        return self.process.stdout.read()[-2000:]

    def stop(self, grace: float = 10.0) -> None:
        from pipeline.images import buildah

        if self.process.poll() is None:
            # `buildah run` kills rather than forwards SIGTERM: signal the image's own process.
            inner = descendants(self.process.pid)
            for pid in inner[-1:] or [self.process.pid]:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                for pid in [*descendants(self.process.pid), self.process.pid]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        subprocess.run(buildah.global_args() + ["rm", self.container], capture_output=True)


class DockerContainer:
    """`docker run` of an image (GitHub runners), its port published on loopback."""

    def __init__(self, image: str, port: int, container_port: int) -> None:
        run = subprocess.run(
            ["docker", "run", "--detach", "--publish", f"127.0.0.1:{port}:{container_port}", "--env", f"PORT={container_port}", image],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            raise BuildError(f"cannot start {image}: {run.stderr.strip()}", hint="Is the image built and the Docker engine up?")
        self.container = run.stdout.strip()

    def exited(self) -> int | None:
        state = subprocess.run(["docker", "inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", self.container], capture_output=True, text=True).stdout.split()
        return None if not state or state[0] == "true" else int(state[1])

    def output(self) -> str:
        return subprocess.run(["docker", "logs", "--tail", "20", self.container], capture_output=True, text=True).stdout

    def stop(self, grace: float = 10.0) -> None:
        subprocess.run(["docker", "stop", "--time", str(int(grace)), self.container], capture_output=True)
        subprocess.run(["docker", "rm", "--force", self.container], capture_output=True)


def check_image(
    settings: Settings,
    image: str,
    echo: Echo,
    *,
    runtime: str = "buildah",
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """Run the image as a task would run it and ask it what the smoke test asks the service."""
    service = settings.service
    port = free_port()
    deadline_seconds = timeout if timeout is not None else service.warmup + 30
    echo(f"checking {image}: starting it on 127.0.0.1:{port}")
    container: BuildahContainer | DockerContainer
    if runtime == "docker":
        container = DockerContainer(image, port, service.container_port)
    else:
        container = BuildahContainer(image, {"PORT": str(port)})
    started = clock()
    try:
        base = f"http://127.0.0.1:{port}"
        while True:
            code = container.exited()
            if code is not None:
                raise BuildError(f"image check: {image} exited with code {code} before becoming healthy: {container.output().strip().splitlines()[-1:]}", hint="Run the image locally and read its log.")
            status, _ = _request("GET", base + service.health_check_path, None)
            if status == 200:
                break
            if clock() - started > deadline_seconds:
                raise BuildError(f"image check: {service.health_check_path} did not answer 200 within {deadline_seconds:.0f}s (last: {status or 'no answer'})", hint="The image would fail its ELB health checks; it is not pushed.")
            sleep(0.2)
        healthy_after = clock() - started
        status, body = _request("POST", base + settings.smoke.path, settings.smoke.request.encode())
        if status != 200:
            raise BuildError(f"image check: POST {settings.smoke.path} answered {status}: {body[:200]!r}", hint="The sample prediction must succeed before the image is pushed.")
        payload = json.loads(body)
        missing = [k for k in settings.smoke.expect_keys if k not in payload]
        if missing:
            raise BuildError(f"image check: the prediction lacks {', '.join(missing)}", hint="Match smoke.expect_keys in pipeline.toml.")
        echo(f"checked {image}: healthy after {healthy_after:.1f}s, prediction has {', '.join(sorted(payload))}")
        return CheckResult(healthy_after, payload)
    finally:
        container.stop()


def _request(method: str, url: str, data: bytes | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback only
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, OSError):
        return 0, b""
