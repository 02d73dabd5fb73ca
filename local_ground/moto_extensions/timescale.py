"""The local AWS's one time factor: every AWS duration (health checks, grace periods, bake times,
alarm periods, CloudFormation waits) lasts ``factor`` times as long here. Set by LocalAWS
(``time_scale=``) and the real-task runner; 1.0 (AWS's own durations) until then."""

from __future__ import annotations

_factor = 1.0


def set_time_scale(factor: float) -> None:
    global _factor
    if not 0 < factor <= 1:
        raise ValueError(f"time scale factor must be in (0, 1], not {factor}")
    _factor = factor


def time_scale() -> float:
    return _factor


def scaled(aws_seconds: float) -> float:
    """How long an AWS duration lasts here, in wall-clock seconds."""
    return aws_seconds * _factor
