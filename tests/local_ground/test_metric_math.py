"""Metric math as CloudWatch evaluates it for the 5xx rate alarm: IF, FILL, arithmetic, comparisons,
no datapoint where an operand has none, and nothing but these ever evaluated."""

from __future__ import annotations

import pytest

from local_ground.moto_extensions.metric_math import UnsupportedExpression, evaluate

RATE = "IF(requests >= 50, 100 * FILL(errors, 0) / requests, 0)"


@pytest.mark.parametrize(
    ("requests", "errors", "expected"),
    [
        (100.0, 10.0, 10.0),  # 10% of a busy minute
        (100.0, None, 0.0),  # no 5xx published that minute: FILL makes it 0
        (12.0, 10.0, 0.0),  # a handful of requests cannot trip it
        (None, 3.0, None),  # no requests at all: no datapoint (TreatMissingData decides)
        (50.0, 50.0, 100.0),
    ],
)
def test_the_5xx_rate(requests: float | None, errors: float | None, expected: float | None) -> None:
    assert evaluate(RATE, {"requests": requests, "errors": errors}) == expected


def test_division_by_zero_is_no_datapoint() -> None:
    assert evaluate("a / b", {"a": 1.0, "b": 0.0}) is None


@pytest.mark.parametrize("expression", ["__import__('os')", "a.b", "[a]", "SUM(a)", "a if a else b", "unknown + 1"])
def test_anything_else_is_refused_not_run(expression: str) -> None:
    with pytest.raises(UnsupportedExpression):
        evaluate(expression, {"a": 1.0, "b": 2.0})
