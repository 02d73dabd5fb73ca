"""Work a test runs beside the code under test: `BackgroundLoop` (a thread for as long as a `with` block
runs), and `ClientLoop`, production traffic through a service URL recording every answer, so a test can
say what clients saw meanwhile (a rollout, a release)."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Self

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _text(body: bytes) -> str:
    return body.decode().strip()


def get(url: str, read: Callable[[bytes], str] = _text) -> tuple[int, str]:
    """One GET past any proxy: (status, `read(body)`); an HTTP error is its status with an empty body."""
    try:
        with _DIRECT.open(url, timeout=5) as response:
            return response.status, read(response.read())
    except urllib.error.HTTPError as error:
        return error.code, ""


class BackgroundLoop:
    """Runs `_run` in a daemon thread from `with` until the block ends; `_run` loops until `_stop` is set."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        raise NotImplementedError


class ClientLoop(BackgroundLoop):
    """GETs `url` every 10 ms; each answer is (monotonic time, status, `read(body)`). An HTTP error is its
    status with an empty body; a connection that failed, or a body `read` refused, is status 0."""

    def __init__(self, url: str, read: Callable[[bytes], str] = _text) -> None:
        super().__init__()
        self.url = url
        self.read = read
        self.answers: list[tuple[float, int, str]] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = get(self.url, self.read)
            except (OSError, ValueError):
                status, body = 0, ""
            self.answers.append((time.monotonic(), status, body))
            time.sleep(0.01)

    def errors(self) -> list[tuple[float, int, str]]:
        return [answer for answer in self.answers if answer[1] != 200]

    def served_by(self, body: str) -> int:
        """How many answers were `body` (with `read` picking the version: how many that version served)."""
        return sum(1 for _, _, answered in self.answers if answered == body)
