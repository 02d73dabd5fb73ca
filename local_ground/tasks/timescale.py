"""One factor that shrinks every AWS duration (health check interval, grace period,
deregistration delay, stop timeout) so a rollout that takes minutes on AWS takes seconds here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TimeScale:
    factor: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.factor <= 1:
            raise ValueError(f"time scale factor must be in (0, 1], not {self.factor}")

    def seconds(self, aws_seconds: float) -> float:
        """How long an AWS duration lasts here, in wall-clock seconds."""
        return aws_seconds * self.factor
