"""Every container the local AWS started, so uninstall can end them all (none may outlive it).

Running one container is `pipeline.images.container.ContainerProcess`, shared with the pre-push check.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from pipeline.images.container import ContainerError, ContainerProcess


class ProcessRegistry:
    """Every container this local AWS started, so uninstall can end them all (none may outlive it)."""

    def __init__(self) -> None:
        self._containers: set[ContainerProcess] = set()
        self._lock = threading.Lock()
        self._closed = False

    def run(self, container: ContainerProcess, environment: Mapping[str, str]) -> None:
        """Start `container` and keep it; refused once kill_all has run, so nothing starts after it."""
        with self._lock:
            if self._closed:
                raise ContainerError("CannotStartContainerError: the local AWS is shutting down")
            self._containers.add(container)
            container.start(environment)

    def discard(self, container: ContainerProcess) -> None:
        with self._lock:
            self._containers.discard(container)

    def live_pids(self) -> list[int]:
        with self._lock:
            containers = list(self._containers)
        return [c.pid for c in containers if c.pid is not None and c.exit_code() is None]

    def kill_all(self) -> None:
        with self._lock:
            self._closed = True
            containers, self._containers = list(self._containers), set()
        for container in containers:
            container.kill()
            container.remove()
