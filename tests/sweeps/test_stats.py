"""sweeps.stats: the mean and 95% interval over seeds, and the paired t-test of two configs."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from sweeps.stats import interval, paired


def test_the_interval_is_students_t_interval_of_the_mean():
    values = [0.21, 0.18, 0.25, 0.19, 0.22]
    mean, (low, high) = interval(values)
    expected = scipy_stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert mean == pytest.approx(np.mean(values)) and (low, high) == pytest.approx(expected)
    # by hand: t(0.975, 4) = 2.776, s = 0.02739, half = 2.776 * 0.02739 / sqrt(5) = 0.0340
    assert high - mean == pytest.approx(0.0340, abs=1e-4)


def test_one_value_has_no_spread_and_a_non_finite_one_no_interval():
    assert interval([0.3]) == (0.3, (0.3, 0.3))
    mean, (low, high) = interval([0.3, math.nan])
    assert math.isnan(mean) and math.isnan(low) and math.isnan(high)


def test_the_paired_test_is_scipys_and_its_degenerate_cases_are_decided():
    a, b = [0.20, 0.22, 0.19, 0.25, 0.21], [0.21, 0.24, 0.19, 0.27, 0.22]
    assert paired(a, b) == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue)
    assert paired(a, a) == 1.0  # the same values: nothing tells them apart
    assert paired([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]) == 0.0  # every seed 1 apart: always the same order
    assert paired([1.0, math.nan], [2.0, 3.0]) == 1.0
