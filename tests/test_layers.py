"""The package's layers import one way (README, "Layout"): a module never imports a layer above it,
and nothing in pipeline/ imports the local ground (or moto) at module level."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pipeline"
# layer -> modules it must never import (anywhere in the file)
FORBIDDEN = {
    "pipeline.config": ("pipeline.templates", "pipeline.aws", "pipeline.steps", "pipeline.cli", "boto3"),
    "pipeline.templates": ("pipeline.aws", "pipeline.steps", "pipeline.github", "pipeline.cli", "boto3", "botocore"),
    "pipeline.aws": ("pipeline.steps", "pipeline.cli", "pipeline.github"),
    "pipeline.images": ("pipeline.steps", "pipeline.cli"),
    "pipeline.github": ("pipeline.steps", "pipeline.cli"),
    "pipeline.steps": ("pipeline.cli",),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree: ast.AST, *, top_level_only: bool) -> list[str]:
    nodes = ast.iter_child_nodes(tree) if top_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_imports_no_layer_above_it(path: Path) -> None:
    name = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    banned = next((rules for layer, rules in FORBIDDEN.items() if name == layer or name.startswith(layer + ".")), ())
    wrong = [m for m in imports(tree, top_level_only=False) if any(m == b or m.startswith(b + ".") for b in banned)]
    assert wrong == [], f"{name} imports {wrong}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_product_never_imports_the_local_ground_at_module_level(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = imports(tree, top_level_only=True)
    assert [m for m in top if m.split(".")[0] in ("local_ground", "moto", "unittest")] == []


@pytest.mark.parametrize(
    "path",
    sorted([*PACKAGE.rglob("*.py"), *(ROOT / "local_ground").rglob("*.py")]),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_test_doubles_in_shipped_code(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert [m for m in imports(tree, top_level_only=False) if m.split(".")[0] == "unittest"] == []


TEST_MODULES = sorted((ROOT / "tests").rglob("*.py"))


@pytest.mark.parametrize("path", TEST_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_test_imports_a_conftest_or_a_test_module(path: Path) -> None:
    """`from conftest import ...` gets whichever conftest.py pytest loaded last, so it breaks with the files
    a run is given (test_rollouts.py once imported tests/steps' conftest), and a bare `test_...` import
    resolves only while pytest has put that folder on sys.path. Shared helpers live in modules of their
    own, imported by their package name."""
    found = imports(ast.parse(path.read_text(encoding="utf-8")), top_level_only=False)
    bare = [name for name in found if name == "conftest" or name.startswith("test_")]
    assert bare == [], f"{path.name} imports {bare}; move what it needs to a helper module"
