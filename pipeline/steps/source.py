"""The tree a release builds is the commit its tag names.

A version pushed to ECR is immutable, so `release v1.4.0` must not build whatever the working tree holds:
in a git repository the tag (or `--ref`) must exist and HEAD must be that commit, as it is in `release.yml`
(actions/checkout of the pushed tag). Files git does not track (model weights a step downloaded, wheels)
stay in the build context: only the commit is checked. Outside git there is nothing to compare; the
release says so and builds the folder.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import InputError


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except OSError:  # git itself is missing: as outside a repository
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def check_source(root: Path, ref: str, echo: Callable[[str], None]) -> None:
    """Refuse a build of `ref` from a checkout of another commit (or of no such ref) in one line."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None:
        echo(f"notice: {root} is not in a git repository; building the folder as it is as {ref}")
        return
    tagged = _git(root, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}")
    if tagged is None:
        raise InputError(
            f"no git tag or ref {ref} in {top}; a release builds the commit its tag names",
            hint=f"Tag the commit to release (git tag {ref}) and release that, or pass --ref.",
        )
    head = _git(root, "rev-parse", "HEAD")
    if head != tagged:
        at = head[:12] if head else "no commit"
        raise InputError(
            f"{top} is checked out at {at}, not at {ref} ({tagged[:12]}): the image would hold another commit",
            hint=f"Check out {ref} (git checkout {ref}) and release from there.",
        )
