"""One error tree: every exception class the pipeline defines is a PipelineError in pipeline/errors.py,
and the tree at the top of that file lists each one."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pipeline
from pipeline import errors


def pipeline_modules() -> list[str]:
    skip = {"pipeline.__main__", "pipeline.errors"}
    return [m.name for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.") if m.name not in skip]


def test_every_public_exception_class_lives_in_errors_and_derives_from_pipeline_error() -> None:
    outside = []
    for name in pipeline_modules():
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name and not cls_name.startswith("_"):
                outside.append(f"{name}.{cls_name}")
    assert outside == [], "define errors in pipeline/errors.py, under PipelineError"
    defined = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == "pipeline.errors"]
    assert all(issubclass(c, errors.PipelineError) for c in defined)


def test_the_tree_lists_every_error() -> None:
    defined = {c.__name__ for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == "pipeline.errors"}
    tree = (errors.__doc__ or "").split("\n\n", 1)[1]
    listed = {line.lstrip("│├└─ ").split()[0] for line in tree.splitlines() if line.strip()}
    assert listed == defined
