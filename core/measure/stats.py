"""Small statistics for repeats: medians, percentiles, Student-t 95 % intervals."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# two-sided 95 % Student-t critical values by degrees of freedom (1..30); 1.96 beyond
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ci95_half_width(values: Sequence[float]) -> float | None:
    """Half-width of the 95 % interval of the mean (Student t); None for fewer than 2 values."""
    n = len(values)
    if n < 2:
        return None
    return t95(n - 1) * statistics.stdev(values) / math.sqrt(n)


def relative_spread(values: Sequence[float]) -> float:
    """(max - min) / median: how much the repeats disagree."""
    mid = median(values)
    return (max(values) - min(values)) / mid if mid else 0.0


def median_ci95_half_width(values: Sequence[float]) -> float | None:
    """Half-width of a distribution-free 95 % interval of the median (binomial order statistics:
    ranks n/2 ± 1.96·√n/2); None for fewer than 6 values, where no such interval exists."""
    n = len(values)
    if n < 6:
        return None
    ordered = sorted(values)
    half_span = 1.96 * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - half_span))
    high = min(n - 1, math.ceil(n / 2 + half_span) - 1)
    return (ordered[high] - ordered[low]) / 2


def t95(degrees_of_freedom: int) -> float:
    """Two-sided 95 % Student-t critical value."""
    if degrees_of_freedom < 1:
        raise ValueError("t needs at least one degree of freedom")
    return _T95[degrees_of_freedom - 1] if degrees_of_freedom <= len(_T95) else 1.96
