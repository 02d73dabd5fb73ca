"""Runs last in this folder: no `buildah run` of a task in this session's store is left over."""

from __future__ import annotations

from pathlib import Path


def test_no_task_process_outlives_the_tests(buildah_store: Path) -> None:
    ours = str(buildah_store).encode()
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"buildah") and b"run" in argv and any(ours in a for a in argv):
            left.append(b" ".join(argv).decode(errors="replace"))
    assert left == []
