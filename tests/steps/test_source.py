"""A release builds the commit its tag names: pipeline/steps/source.py on real git repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.steps.source import check_source


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """Two commits, v1.0.0 on the first and v1.1.0 on the second (HEAD)."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for version in ("1.0.0", "1.1.0"):
        (root / "VERSION").write_text(version)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", version)
        git(root, "tag", f"v{version}")
    return root


def test_a_checkout_of_the_tag_builds(repo: Path) -> None:
    lines: list[str] = []
    (repo / "weights.bin").write_bytes(b"downloaded by an earlier step")  # untracked files stay in the context
    check_source(repo, "v1.1.0", lines.append)
    git(repo, "tag", "-a", "v2.0.0", "-m", "annotated")  # an annotated tag names its commit too
    check_source(repo / ".", "v2.0.0", lines.append)
    assert lines == []


def test_a_tag_that_does_not_exist_is_refused(repo: Path) -> None:
    with pytest.raises(InputError) as refused:
        check_source(repo, "v9.9.9", print)
    assert refused.value.one_line() == (
        f"no git tag or ref v9.9.9 in {repo}; a release builds the commit its tag names. "
        "Tag the commit to release (git tag v9.9.9) and release that, or pass --ref."
    )


def test_a_checkout_of_another_commit_is_refused(repo: Path) -> None:
    head, tagged = git(repo, "rev-parse", "HEAD"), git(repo, "rev-parse", "v1.0.0^{commit}")
    with pytest.raises(InputError) as refused:
        check_source(repo / ".", "v1.0.0", print)
    assert refused.value.one_line() == (
        f"{repo} is checked out at {head[:12]}, not at v1.0.0 ({tagged[:12]}): the image would hold another "
        "commit. Check out v1.0.0 (git checkout v1.0.0) and release from there."
    )
    git(repo, "checkout", "-q", "v1.0.0")
    check_source(repo, "v1.0.0", print)


def test_a_folder_outside_git_is_built_as_it_is_with_a_notice(tmp_path: Path) -> None:
    lines: list[str] = []
    check_source(tmp_path, "v1.0.0", lines.append)
    assert lines == [f"notice: {tmp_path} is not in a git repository; building the folder as it is as v1.0.0"]
