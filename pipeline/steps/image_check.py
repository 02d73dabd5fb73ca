"""The pre-push image check: start the built image, wait for its health path, send the sample
prediction, and refuse to push an image that fails. buildah runs it daemonless here; on GitHub
runners `docker run` does.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import BuildError, SmokeAnswerProblem
from pipeline.images.container import free_port
from pipeline.steps.smoke import read_smoke_answer

Echo = Callable[[str], None]


@dataclass(frozen=True)
class CheckResult:
    seconds_to_healthy: float
    prediction: dict[str, object]


class BuildahContainer:
    """The image run as a task runs it (`pipeline.images.container`), on the host network."""

    def __init__(self, image: str, env: dict[str, str]) -> None:
        from pipeline.errors import ContainerError
        from pipeline.images.container import ContainerProcess, ContainerSpec

        self._scratch = tempfile.TemporaryDirectory(prefix="pipeline-check-")
        self.container = ContainerProcess(
            ContainerSpec("check", image),
            f"pipeline-check-{uuid.uuid4().hex[:12]}",
            Path(self._scratch.name) / "output.log",
        )
        try:
            self.container.pull()
            self.container.start(env)
        except ContainerError as err:
            self.stop()
            raise BuildError(f"cannot start {image}: {err}", hint="Is the image built?") from None

    def exited(self) -> int | None:
        return self.container.exit_code()

    def output(self) -> str:
        return self.container.output(2000)

    def stop(self, grace: float = 10.0) -> None:
        self.container.stop(grace)
        self.container.remove()
        self._scratch.cleanup()


class DockerContainer:
    """`docker run` of an image (GitHub runners) as the buildah check runs it: on the host network with
    its own $PORT, so a server bound to loopback answers and no bridge or port proxy is needed. `--init`
    forwards SIGTERM to the server (a shell or busybox as PID 1 would ignore it until the kill)."""

    def __init__(self, image: str, port: int) -> None:
        run = subprocess.run(
            # HOST: on the host network the candidate listens on loopback only, never on every interface.
            [
                "docker",
                "run",
                "--detach",
                "--init",
                "--network",
                "host",
                "--env",
                f"PORT={port}",
                "--env",
                "HOST=127.0.0.1",
                image,
            ],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            raise BuildError(
                f"cannot start {image}: {run.stderr.strip()}", hint="Is the image built and the Docker engine up?"
            )
        self.container = run.stdout.strip()

    def exited(self) -> int | None:
        state = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", self.container],
            capture_output=True,
            text=True,
        ).stdout.split()
        return None if not state or state[0] == "true" else int(state[1])

    def output(self) -> str:
        # The container's stderr comes back on ours: a server that fails to start says why there.
        logs = ["docker", "logs", "--tail", "20", self.container]
        return subprocess.run(logs, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout

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
        container = DockerContainer(image, port)
    else:
        # The host's network: listen on loopback only, never on every interface (the example server honours HOST).
        container = BuildahContainer(image, {"PORT": str(port), "HOST": "127.0.0.1"})
    started = clock()
    try:
        base = f"http://127.0.0.1:{port}"
        while True:
            code = container.exited()
            if code is not None:
                raise BuildError(
                    f"image check: {image} exited with code {code} before becoming healthy: {container.output().strip().splitlines()[-1:]}",
                    hint="Run the image locally and read its log.",
                )
            status, _ = _request("GET", base + service.health_check_path, None)
            if status == 200:
                break
            if clock() - started > deadline_seconds:
                raise BuildError(
                    f"image check: {service.health_check_path} did not answer 200 within {deadline_seconds:.0f}s (last: {status or 'no answer'})",
                    hint="The image would fail its ELB health checks; it is not pushed.",
                )
            sleep(0.2)
        healthy_after = clock() - started
        smoke = settings.smoke
        status, body = _request(
            smoke.method, base + smoke.path, smoke.request.encode() if smoke.method == "POST" else None
        )
        try:
            payload = read_smoke_answer(smoke, status, body)
        except SmokeAnswerProblem as problem:
            raise BuildError(
                f"image check: {problem.message}",
                hint="The smoke request must succeed, as pipeline.toml's [smoke] describes it, before the image is pushed.",
            ) from None
        echo(f"checked {image}: healthy after {healthy_after:.1f}s, prediction has {', '.join(sorted(payload))}")
        return CheckResult(healthy_after, payload)
    finally:
        container.stop()


def _request(method: str, url: str, data: bytes | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # nosec B310 # the url is http://127.0.0.1:PORT, built by check_image
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, OSError):
        return 0, b""
