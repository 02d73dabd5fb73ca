"""git, asked one question at a time: what the pipeline reads of the repository it runs in."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_output(folder: Path, *args: str) -> str | None:
    """git's answer (stripped stdout), or None when it fails or git is not installed."""
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=False)
    except OSError:  # no git: as outside a repository
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def work_tree_top(folder: Path) -> str | None:
    """The top folder of the git work tree `folder` is in, or None outside one."""
    return git_output(folder, "rev-parse", "--show-toplevel")
