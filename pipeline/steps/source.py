"""The tree a release builds is the commit its tag names.

A version pushed to ECR is immutable, so `release v1.4.0` must not build whatever the working tree holds:
in a git repository the tag (or `--ref`) must exist and HEAD must be that commit, as it is in `release.yml`
(actions/checkout of the pushed tag). Files git does not track (model weights a step downloaded, wheels)
stay in the build context: only the commit is checked. Outside git there is nothing to compare; the
release says so and builds the folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.errors import InputError
from pipeline.git import git_output, work_tree_top


def check_source(root: Path, ref: str, echo: Callable[[str], None]) -> None:
    """Refuse a build of `ref` from a checkout of another commit (or of no such ref) in one line."""
    top = work_tree_top(root)
    if top is None:
        echo(f"notice: {root} is not in a git repository; building the folder as it is as {ref}")
        return
    tagged = git_output(root, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}")
    if tagged is None:
        raise InputError(
            f"no git tag or ref {ref} in {top}; a release builds the commit its tag names",
            hint=f"Tag the commit to release (git tag {ref}) and release that, or pass --ref.",
        )
    head = git_output(root, "rev-parse", "HEAD")
    if head != tagged:
        at = head[:12] if head else "no commit"
        raise InputError(
            f"{top} is checked out at {at}, not at {ref} ({tagged[:12]}): the image would hold another commit",
            hint=f"Check out {ref} (git checkout {ref}) and release from there.",
        )
