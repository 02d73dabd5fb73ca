"""What every moto extension is: a named set of patches, installed and removed explicitly.

This module is the one place that changes moto's internals: ``Extension.install()`` sets each
attribute its ``patches()`` name (recording what was there), ``uninstall()`` puts it back.
Nothing is patched at import time. ``install()`` reads the attribute it replaces at that
moment, so extensions that wrap the same moto method stack; ``uninstall()`` restores them.
Uninstall in reverse install order (LocalAWS does).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, ClassVar

Patch = tuple[object, str, Any]  # (owner, attribute name, replacement)
_ABSENT = object()


class _Applied:
    """One attribute replaced on a moto object, and what to put back."""

    def __init__(self, owner: object, attribute: str, replacement: Any) -> None:
        self.owner = owner
        self.attribute = attribute
        # Read from the object's own namespace: restoring a class attribute must not pin an inherited one.
        namespace = vars(owner) if isinstance(owner, type) else getattr(owner, "__dict__", {})
        self.original = namespace.get(attribute, _ABSENT)
        setattr(owner, attribute, replacement)

    def undo(self) -> None:
        if self.original is _ABSENT:
            delattr(self.owner, self.attribute)
        else:
            setattr(self.owner, self.attribute, self.original)


class Extension:
    """One AWS behaviour moto 5.2.5 lacks. Subclasses set ``name`` and yield ``patches()``."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self._active: list[_Applied] = []

    @property
    def installed(self) -> bool:
        return bool(self._active)

    def patches(self) -> Iterable[Patch]:
        raise NotImplementedError

    def install(self) -> None:
        if self.installed:
            raise RuntimeError(f"extension {self.name} is already installed")
        for owner, attribute, replacement in self.patches():
            self._active.append(_Applied(owner, attribute, replacement))

    def uninstall(self) -> None:
        for applied in reversed(self._active):
            applied.undo()
        self._active.clear()
        self.reset()

    def reset(self) -> None:
        """Drop state the extension keeps outside moto's backends (moto's reset won't)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}{' installed' if self.installed else ''}>"


class PeriodicExtension(Extension):
    """An extension that also does work on a schedule (AWS evaluates on its own clock): a daemon thread
    calls ``tick()`` every ``tick_seconds`` from install until uninstall."""

    thread_name: ClassVar[str]
    tick_seconds: ClassVar[float]

    def __init__(self) -> None:
        super().__init__()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def patches(self) -> Iterable[Patch]:
        return ()

    @property
    def installed(self) -> bool:
        return super().installed or self._thread is not None

    def install(self) -> None:
        super().install()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def uninstall(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        super().uninstall()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            self.tick()

    def tick(self) -> None:
        raise NotImplementedError


def camel_keys(value: Any, keep: frozenset[str] = frozenset()) -> Any:
    """CloudFormation's PascalCase properties -> the API's camelCase shapes.

    Values under a key in ``keep`` (user-chosen map keys such as log options) are left alone.
    """
    if isinstance(value, dict):
        return {
            key[:1].lower() + key[1:]: (item if key in keep else camel_keys(item, keep)) for key, item in value.items()
        }
    if isinstance(value, list):
        return [camel_keys(item, keep) for item in value]
    return value


def as_int(value: Any) -> int | None:
    """Template numbers may arrive as strings ("8080"); the APIs want integers."""
    return None if value is None else int(value)


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def coerce_ints(value: Any, keys: frozenset[str]) -> Any:
    """Turn numeric strings under ``keys`` (anywhere in the tree) into integers."""
    if isinstance(value, dict):
        return {
            k: (int(v) if k in keys and isinstance(v, str) and v.isdigit() else coerce_ints(v, keys))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [coerce_ints(item, keys) for item in value]
    return value
