"""The statistics of honest numbers: a mean with its 95% interval over seeds, and whether two
configs trained with the same seeds differ (a paired t-test). scipy.stats is imported where it is
used: it is half a second of import that only a sweep's end pays."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

LEVEL = 0.95  # the intervals' confidence
ALPHA = 1 - LEVEL  # a paired test's p below this: the two configs are distinguishable
METHOD = "paired t-test"  # what paired() computes, as the verdict names it


def interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, tuple[float, float]]:
    """The mean of values and its Student-t interval: mean ± t(level, n-1) * s / sqrt(n), s the
    sample standard deviation; (mean, (mean, mean)) for one value, NaNs where a value is not finite."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)  # (n,)
    mean = float(x.mean())
    if x.size < 2 or not np.isfinite(x).all():
        return mean, (mean, mean) if x.size == 1 else (math.nan, math.nan)
    half = float(stats.t.ppf((1 + level) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, (mean - half, mean + half)


def paired(a: Sequence[float], b: Sequence[float]) -> float:
    """The two-sided p-value of a paired t-test of a against b, value i of each from the same seed:
    1.0 when every difference is 0 or a value is not finite, 0.0 when every one is the same other
    number (every seed says the same, so no spread to test against)."""
    from scipy import stats

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)  # (n,)
    if d.size < 2 or not np.isfinite(d).all() or not d.any():
        return 1.0
    if np.all(d == d[0]):
        return 0.0
    return float(stats.ttest_rel(a, b).pvalue)
