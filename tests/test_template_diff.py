from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.template_diff import MARKER, diff_templates, markdown

BASE = """Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
  Topic:
    Type: AWS::SNS::Topic
"""
HEAD = """Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 60
  Bucket:
    Type: AWS::S3::Bucket
"""


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "cloudformation").mkdir()
    (tmp_path / "cloudformation" / "app.yaml").write_text(BASE)
    (tmp_path / "cloudformation" / "old.yaml").write_text(BASE)
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    (tmp_path / "cloudformation" / "app.yaml").write_text(HEAD)
    (tmp_path / "cloudformation" / "old.yaml").unlink()
    (tmp_path / "cloudformation" / "new.yaml").write_text(HEAD)
    return tmp_path


def test_added_changed_removed(repo: Path) -> None:
    by_file = {c.file_name: c for c in diff_templates(repo, "main")}
    app = by_file["app.yaml"]
    assert app.added == [("Bucket", "AWS::S3::Bucket")]
    assert app.removed == [("Topic", "AWS::SNS::Topic")]
    assert app.changed == [("Queue", "AWS::SQS::Queue", ["VisibilityTimeout"])]
    assert [i for i, _ in by_file["old.yaml"].removed] == ["Queue", "Topic"]
    assert [i for i, _ in by_file["new.yaml"].added] == ["Bucket", "Queue"]


def test_markdown_carries_the_marker_and_rows(repo: Path) -> None:
    text = markdown(diff_templates(repo, "main"), "main")
    assert text.startswith(MARKER)
    assert "| ✏️ changed | `Queue` | AWS::SQS::Queue | VisibilityTimeout |" in text
    assert "| ➕ added | `Bucket` | AWS::S3::Bucket | |" in text


def test_no_changes(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "head")
    assert "No resource changes." in markdown(diff_templates(repo, "HEAD"), "HEAD")


def test_unknown_base_is_refused(repo: Path) -> None:
    with pytest.raises(InputError, match="unknown base 'nope'"):
        diff_templates(repo, "nope")
