"""The two example model servers as images: build time, image size and cold start, side by side.

    stdlib        examples/model-server   standard library only     GET /health  on 8080
    fastapi-onnx  examples/fastapi-onnx   FastAPI + onnxruntime     GET /healthz on 8000

Both are built with buildah (vfs, chroot) on the local Debian Python base, in a throwaway store.
Cold start is process start to the first 200 from the health path: `buildah run` of the image's
CMD is started and the path polled every POLL seconds; the figure includes `buildah run`'s own
setup, shown alone on the `buildah run overhead` line (`python3 -c pass` in the base image, to exit).
`buildah from` (the vfs copy of the image into a container) happens before and is timed apart.
Sizes come from pushing each image to an OCI layout: its layers as tar bytes and gzipped.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local_ground.python_base import cache_dir, ensure_python_base  # noqa: E402
from pipeline.images import buildah  # noqa: E402

RUNS = 3
POLL = 0.02
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Example:
    name: str
    folder: str
    port: int
    health: str


EXAMPLES = (
    Example("stdlib", "model-server", 8080, "/health"),
    Example("fastapi-onnx", "fastapi-onnx", 8000, "/healthz"),
)


def layer_sizes(image: str, scratch: Path) -> list[tuple[int, int]]:
    """(tar bytes, gzipped bytes) per layer, base first: what the image holds, and what a registry
    stores and a new Fargate task pulls."""
    folder = scratch / f"oci-{image.rsplit('/', 1)[-1].replace(':', '-')}"
    subprocess.run(
        buildah.global_args() + ["push", "--quiet", "--compression-format", "gzip", image, f"oci:{folder}"],
        capture_output=True, check=True, env=buildah._env(),
    )  # fmt: skip
    blobs = folder / "blobs" / "sha256"
    index = json.loads((folder / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":", 1)[1]).read_text())
    sizes = []
    for layer in manifest["layers"]:
        with gzip.open(blobs / layer["digest"].split(":", 1)[1]) as stream:
            tar_bytes = sum(len(chunk) for chunk in iter(lambda: stream.read(1 << 20), b""))
        sizes.append((tar_bytes, int(layer["size"])))
    shutil.rmtree(folder)
    return sizes


def prepared_context(example: Example, scratch: Path) -> Path:
    """The example's folder; for fastapi-onnx a copy with its wheels (downloaded once per machine)."""
    source = ROOT / "examples" / example.folder
    if example.name != "fastapi-onnx":
        return source
    wheels = cache_dir() / "fastapi-onnx-wheels"
    subprocess.run([sys.executable, str(source / "prepare.py"), "--wheels-only", "--wheels", str(wheels)], check=True)
    context = scratch / example.folder
    shutil.copytree(source, context, ignore=shutil.ignore_patterns("wheels", "__pycache__"))
    shutil.copytree(wheels, context / "wheels")
    return context


def healthy_after(command: list[str], port: int, path: str) -> tuple[float, subprocess.Popen[bytes]]:
    """Start `command`; seconds until GET path answers 200."""
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while time.perf_counter() - began < START_TIMEOUT:
        if process.poll() is not None:
            raise RuntimeError(f"{command[-1]} exited with {process.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as answer:
                if answer.status == 200:
                    return time.perf_counter() - began, process
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(POLL)
    raise RuntimeError(f"not healthy within {START_TIMEOUT:.0f}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)  # its own session: buildah run and the server in it
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def cold_starts(image: str, command: list[str], example: Example) -> tuple[list[float], list[float]]:
    """(buildah from seconds, process start to healthy seconds) per run, each in a fresh container."""
    froms, starts = [], []
    for run in range(RUNS):
        began = time.perf_counter()
        container = subprocess.run(
            buildah.global_args() + ["from", "--name", f"bench-{example.name}-{os.getpid()}-{run}", image],
            capture_output=True, text=True, check=True, env=buildah._env(),
        ).stdout.strip()  # fmt: skip
        froms.append(time.perf_counter() - began)
        try:
            port = example.port + 10_000 + run  # no clash with anything on the default ports
            argv = buildah.global_args() + [
                "run", "--isolation", "chroot", "--env", f"PORT={port}", container, "--", *command,
            ]  # fmt: skip
            seconds, process = healthy_after(argv, port, example.health)
            starts.append(seconds)
            stop(process)
        finally:
            subprocess.run(buildah.global_args() + ["rm", container], capture_output=True, env=buildah._env())
    return froms, starts


def run_overhead(base: str) -> float:
    """`buildah run` of a process that exits at once, in the base image: what cold start includes beyond the server."""
    container = subprocess.run(
        buildah.global_args() + ["from", base], capture_output=True, text=True, check=True, env=buildah._env()
    ).stdout.strip()
    try:
        times = []
        for _ in range(RUNS):
            began = time.perf_counter()
            subprocess.run(
                buildah.global_args() + ["run", "--isolation", "chroot", container, "--", "python3", "-c", "pass"],
                check=True, capture_output=True, env=buildah._env(),
            )  # fmt: skip
            times.append(time.perf_counter() - began)
        return statistics.median(times)
    finally:
        subprocess.run(buildah.global_args() + ["rm", container], capture_output=True, env=buildah._env())


def main() -> int:
    if shutil.which("buildah") is None:
        print("buildah is not installed: nothing measured", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-images-") as scratch:
        os.environ[buildah.ROOT_ENV] = str(Path(scratch) / "store")  # never the machine's own store
        try:
            base = ensure_python_base()
            overhead = run_overhead(base.name)
            rows = []
            for example in EXAMPLES:
                context = prepared_context(example, Path(scratch))
                tag = f"localhost/bench-{example.name}:1.0.0"
                began = time.perf_counter()
                buildah.build(context, context / "Dockerfile", tag, {"BASE_IMAGE": base.name, "MODEL_VERSION": "1.0.0"})
                build_seconds = time.perf_counter() - began
                layers = layer_sizes(tag, Path(scratch))
                size, gzipped = [t for t, _ in layers], [g for _, g in layers]
                command = buildah.inspect_config(tag)["Cmd"]
                froms, starts = cold_starts(tag, command, example)
                rows.append((example, build_seconds, size, gzipped, froms, starts))
        finally:
            subprocess.run(buildah.global_args() + ["rm", "--all"], capture_output=True, env=buildah._env())
            subprocess.run(buildah.global_args() + ["rmi", "--all", "--force"], capture_output=True, env=buildah._env())
    print(f"base image {base.name}; buildah run overhead (python3 -c pass) {overhead:.2f}s")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {RUNS} cold starts each, median (max)")
    print(
        f"{'example':<14} {'build':>7} {'image':>8} {'added':>8} {'gzipped':>8} {'added':>8}"
        f" {'buildah from':>14} {'cold start':>16}"
    )
    for example, build_seconds, size, gzipped, froms, starts in rows:
        print(
            f"{example.name:<14} {build_seconds:>6.1f}s {sum(size) / 1e6:>6.1f}MB {sum(size[1:]) / 1e6:>6.2f}MB"
            f" {sum(gzipped) / 1e6:>6.1f}MB {sum(gzipped[1:]) / 1e6:>6.2f}MB"
            f" {statistics.median(froms):>7.2f}s ({max(froms):.2f})"
            f" {statistics.median(starts):>8.2f}s ({max(starts):.2f})"
        )
    print("image: the layers' tar bytes; gzipped: as pushed to a registry; added: beyond the base image's layer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
