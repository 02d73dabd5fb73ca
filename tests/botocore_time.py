"""botocore's retry waits on a scaled clock, for stories that run the ground's AWS time scaled.

botocore sleeps for real between retries (the endpoint's backoff) and, in adaptive mode, while its
client-side token bucket refills. The stories scale every AWS duration; these waits are the client's
side of the same exchange, so they are scaled by the same factor instead of slept away. Only the
clock changes: botocore still decides when, how often and how long (in its own seconds) to wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from botocore.retries import bucket


class ScaledClock(bucket.Clock):
    """botocore's bucket clock, running 1/scale times faster than the wall from its creation."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale, self.start = scale, time.time()

    def sleep(self, amount: float) -> None:
        time.sleep(amount * self.scale)

    def current_time(self) -> float:
        return self.start + (time.time() - self.start) / self.scale


class ScaledCondition:
    """threading.Condition whose timed wait takes `scale` of the (scaled-clock) seconds asked for."""

    def __init__(self, scale: float, lock: Any = None) -> None:
        self.scale, self.condition = scale, threading.Condition(lock)

    def __enter__(self) -> bool:
        return self.condition.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.condition.__exit__(*exc)

    def wait(self, timeout: float | None = None) -> bool:
        return self.condition.wait(None if timeout is None else timeout * self.scale)

    def notify(self, n: int = 1) -> None:
        self.condition.notify(n)

    def notify_all(self) -> None:
        self.condition.notify_all()


@contextmanager
def scaled_retry_waits(monkeypatch: pytest.MonkeyPatch, scale: float) -> Iterator[None]:
    """Within the block, clients created afterwards back off and rate-limit on a clock scaled by `scale`."""
    sleep = time.sleep
    scaled_time = SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    scaled_time.sleep = lambda seconds: sleep(seconds * scale)
    with monkeypatch.context() as patch:
        patch.setattr(botocore.endpoint, "time", scaled_time)
        patch.setattr(bucket, "Clock", lambda: ScaledClock(scale))
        condition = lambda lock=None: ScaledCondition(scale, lock)  # noqa: E731
        patch.setattr(bucket, "threading", SimpleNamespace(Lock=threading.Lock, Condition=condition))
        yield
