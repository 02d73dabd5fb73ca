"""cloudwatch_percentile_statistics: GetMetricData and GetMetricStatistics answer percentile statistics
(`p99`, `p95.5`) as CloudWatch does ("CloudWatch statistics definitions": pNN.NN, the value below which
NN.NN% of the period's data points fall). moto 5.2.5 fails such a request (HTTP 500: no value to
serialize).

Nearest rank over the period's raw data points (CloudWatch computes them from the samples it holds).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from moto.cloudwatch.models import Statistics

from ._base import Extension, Patch

PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class CloudWatchPercentileStatistics(Extension):
    name = "cloudwatch_percentile_statistics"

    def patches(self) -> Iterable[Patch]:
        original = Statistics.get_statistics_for_type

        def get_statistics_for_type(stats: Statistics, stat: str) -> Any:
            match = PERCENTILE.match(stat)
            if match is None:
                return original(stats, stat)
            return percentile([float(v) for v in stats.metric_single_values_list], float(match[1]) / 100)

        yield Statistics, "get_statistics_for_type", get_statistics_for_type
