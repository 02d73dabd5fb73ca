"""Optional extras: commands that need one say which, in one line, instead of a traceback."""

from __future__ import annotations

import importlib.util

from pipeline.errors import MissingExtraError

# extra -> the modules it brings that the commands import
EXTRAS: dict[str, tuple[str, ...]] = {
    "local": ("moto", "yaml", "cfnlint"),
    "lint": ("cfnlint", "check_jsonschema"),
}


def require(extra: str, command: str) -> None:
    """Refuse `command` before it starts when the extra's modules are not importable."""
    missing = [module for module in EXTRAS[extra] if importlib.util.find_spec(module) is None]
    if missing:
        raise MissingExtraError(
            f"`pipeline {command}` needs the {extra} extra ({', '.join(missing)} not installed)",
            hint=f"Install it: pip install 'ecs-model-pipeline[{extra}]'",
        )
