"""Injected time: steps wait through a Clock, so tests never wait on the wall clock."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class ScaledClock:
    """AWS's time on a ground that scales every AWS duration by `factor` (the local ground): each second
    of `inner` counts as 1/factor AWS seconds, so timeouts and polls given in AWS seconds shrink alike."""

    inner: Clock
    factor: float = 1.0

    def now(self) -> float:
        return self.inner.now() / self.factor

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds * self.factor)


@dataclass
class FakeClock:
    """A clock whose sleeps advance time instantly, for unit tests."""

    t: float = 0.0
    slept: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds
