"""Write the synthesized templates to disk, or find which committed ones are stale."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Settings
from pipeline.templates import render, stack_specs


def synthesize(settings: Settings) -> dict[str, str]:
    """File name -> template text for every stack."""
    return {spec.file_name: render(spec.build()) for spec in stack_specs(settings)}


def write_templates(settings: Settings, folder: Path) -> list[tuple[Path, bool]]:
    """Write each template; report whether it changed. Files no stack produces are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = synthesize(settings)
    results = []
    for name, text in wanted.items():
        path = folder / name
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        if changed:
            path.write_text(text, encoding="utf-8")
        results.append((path, changed))
    for leftover in sorted(folder.glob("*.yaml")):
        if leftover.name not in wanted:
            leftover.unlink()
            results.append((leftover, True))
    return results


def check_templates(settings: Settings, folder: Path) -> list[str]:
    """Names of templates that are missing, different, or no longer produced."""
    wanted = synthesize(settings)
    stale = [
        name
        for name, text in wanted.items()
        if not (folder / name).exists() or (folder / name).read_text(encoding="utf-8") != text
    ]
    stale += [p.name for p in sorted(folder.glob("*.yaml")) if p.name not in wanted]
    return stale
