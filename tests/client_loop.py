"""Production traffic in a test: a client loop through a service URL for as long as a `with` block runs
(a rollout, a release), recording every answer, so a test can say what clients saw meanwhile."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _text(body: bytes) -> str:
    return body.decode().strip()


class ClientLoop:
    """GETs `url` every 10 ms; each answer is (monotonic time, status, `read(body)`). An HTTP error is its
    status with an empty body; a connection that failed, or a body `read` refused, is status 0."""

    def __init__(self, url: str, read: Callable[[bytes], str] = _text) -> None:
        self.url = url
        self.read = read
        self.answers: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ClientLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with _DIRECT.open(self.url, timeout=5) as response:
                    self.answers.append((time.monotonic(), response.status, self.read(response.read())))
            except urllib.error.HTTPError as error:
                self.answers.append((time.monotonic(), error.code, ""))
            except (OSError, ValueError):
                self.answers.append((time.monotonic(), 0, ""))
            time.sleep(0.01)

    def errors(self) -> list[tuple[float, int, str]]:
        return [answer for answer in self.answers if answer[1] != 200]

    def served_by(self, body: str) -> int:
        """How many answers were `body` (with `read` picking the version: how many that version served)."""
        return sum(1 for _, _, answered in self.answers if answered == body)
