"""What a pull request changes in the templates, resource by resource, against its base branch."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.git import work_tree_top

MARKER = "<!-- ecs-model-pipeline:template-diff -->"


@dataclass
class TemplateChanges:
    file_name: str
    added: list[tuple[str, str]] = field(default_factory=list)  # (logical id, type)
    removed: list[tuple[str, str]] = field(default_factory=list)
    changed: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (logical id, type, properties)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _resources(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    from cfn_flip import to_json

    return dict(json.loads(to_json(text)).get("Resources", {}))


def _base_text(root: Path, base: str, path: str) -> str | None:
    shown = subprocess.run(["git", "show", f"{base}:{path}"], cwd=root, capture_output=True, text=True)
    if shown.returncode == 0:
        return shown.stdout
    if "does not exist" in shown.stderr or "exists on disk, but not in" in shown.stderr:
        return None
    raise InputError(
        f"cannot read {path} at {base}: {shown.stderr.strip().splitlines()[-1] if shown.stderr.strip() else 'git failed'}",
        hint="Fetch the base branch (checkout with fetch-depth: 0).",
    )


def _base_files(root: Path, base: str) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{base}", "cloudformation/"], cwd=root, capture_output=True, text=True
    )
    if listed.returncode != 0:
        if work_tree_top(root) is None:  # else "unknown base" would blame a ref that may well exist
            raise InputError(f"{root} is not in a git repository", hint="Run template-diff in the repository's clone.")
        raise InputError(f"unknown base {base!r}", hint="Pass a branch or commit that exists, e.g. origin/main.")
    return [Path(p).name for p in listed.stdout.split() if p.endswith(".yaml")]


def diff_templates(root: Path, base: str) -> list[TemplateChanges]:
    names = sorted(set(_base_files(root, base)) | {p.name for p in (root / "cloudformation").glob("*.yaml")})
    results = []
    for name in names:
        before = _resources(_base_text(root, base, f"cloudformation/{name}"))
        head_path = root / "cloudformation" / name
        after = _resources(head_path.read_text() if head_path.exists() else None)
        changes = TemplateChanges(name)
        for logical_id in sorted(after.keys() - before.keys()):
            changes.added.append((logical_id, after[logical_id].get("Type", "")))
        for logical_id in sorted(before.keys() - after.keys()):
            changes.removed.append((logical_id, before[logical_id].get("Type", "")))
        for logical_id in sorted(before.keys() & after.keys()):
            old, new = before[logical_id], after[logical_id]
            if old != new:
                old_props, new_props = old.get("Properties", {}), new.get("Properties", {})
                keys = sorted(k for k in old_props.keys() | new_props.keys() if old_props.get(k) != new_props.get(k))
                others = sorted(k for k in old.keys() | new.keys() if k != "Properties" and old.get(k) != new.get(k))
                changes.changed.append((logical_id, new.get("Type", ""), keys + others))
        results.append(changes)
    return results


def markdown(changes: list[TemplateChanges], base: str) -> str:
    lines = [MARKER, f"### CloudFormation changes against `{base}`", ""]
    touched = [c for c in changes if not c.empty]
    if not touched:
        lines.append("No resource changes.")
    for c in touched:
        lines += [f"**{c.file_name}**", "", "| change | resource | type | properties |", "|---|---|---|---|"]
        lines += [f"| ➕ added | `{i}` | {t} | |" for i, t in c.added]
        lines += [f"| ➖ removed | `{i}` | {t} | |" for i, t in c.removed]
        lines += [f"| ✏️ changed | `{i}` | {t} | {', '.join(p)} |" for i, t, p in c.changed]
        lines.append("")
    return "\n".join(lines) + "\n"
