"""Build the busybox test images (healthy, unhealthy, crashing) with buildah, in well under a second.

The busybox binary is copied from the host (Debian's busybox-static) into a temp build context at
test time, so no binary is committed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.images import buildah

IMAGES_DIR = Path(__file__).resolve().parent
TestImage = Literal["healthy", "unhealthy", "crashing"]
TEST_IMAGES: tuple[TestImage, ...] = ("healthy", "unhealthy", "crashing")


@dataclass(frozen=True)
class BuiltImage:
    name: TestImage
    tag: str  # local reference, e.g. localhost/pipeline-test-healthy:latest
    image_id: str


def static_busybox() -> Path:
    """The host's busybox, which must be static to run in a FROM-scratch image."""
    found = shutil.which("busybox")
    if found is None:
        raise RuntimeError("busybox not found: apt-get install busybox-static")
    path = Path(found).resolve()
    # A dynamic busybox has an ELF interpreter (PT_INTERP); `ldd` says so without running it.
    ldd = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
    if "not a dynamic executable" not in ldd.stdout + ldd.stderr:
        raise RuntimeError(f"{path} is dynamically linked: apt-get install busybox-static")
    return path


def build_test_image(
    name: TestImage,
    tag: str | None = None,
    on_output: Callable[[str], None] | None = None,
) -> BuiltImage:
    """Build tests/images/<name> with the host's busybox; returns its local tag and image id."""
    source = IMAGES_DIR / name
    if not (source / "Containerfile").is_file():
        raise ValueError(f"no test image named {name!r}; choose one of {TEST_IMAGES}")
    tag = tag or f"localhost/pipeline-test-{name}:latest"
    with tempfile.TemporaryDirectory(prefix=f"pipeline-test-image-{name}-") as scratch:
        context = Path(scratch) / "context"
        shutil.copytree(source, context)
        shutil.copy2(static_busybox(), context / "busybox")
        image_id = buildah.build(context, context / "Containerfile", tag, on_output=on_output)
    return BuiltImage(name=name, tag=tag, image_id=image_id)


def buildah_runs_in(root: Path) -> list[str]:
    """Command lines of `buildah run` processes still using the store under `root`."""
    ours = str(root).encode()
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"buildah") and b"run" in argv and any(ours in a for a in argv):
            left.append(b" ".join(argv).decode(errors="replace"))
    return left


@contextmanager
def buildah_store(root: Path) -> Iterator[Path]:
    """Point the buildah wrappers at a store under `root` for the duration, then remove it.

    On the way out no `buildah run` (a task, a pre-push check) may still use the store: whatever
    the order the tests ran in, a leftover process fails the session here.
    """
    previous = os.environ.get(buildah.ROOT_ENV)
    os.environ[buildah.ROOT_ENV] = str(root)
    try:
        yield root
        left = buildah_runs_in(root)
        assert left == [], f"buildah run processes outlived the tests: {left}"
    finally:
        if previous is None:
            os.environ.pop(buildah.ROOT_ENV, None)
        else:
            os.environ[buildah.ROOT_ENV] = previous
        shutil.rmtree(root, ignore_errors=True)
