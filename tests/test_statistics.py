"""The numbers behind seed groups and `workbench compare`, against textbook values."""

import math

import pytest
from scipy import stats

from workbench.statistics import compare, summarize


def test_summary_is_the_t_interval_of_the_mean():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert (s.n, s.mean) == (4, 2.5) and s.std == pytest.approx(1.2909944)
    half = stats.t.ppf(0.975, 3) * s.std / 2
    assert (s.ci_low, s.ci_high) == (pytest.approx(2.5 - half), pytest.approx(2.5 + half))
    one = summarize([0.7])
    assert one.std == 0 and math.isnan(one.ci_low) and "one run" in one.describe()


def test_a_clear_shift_is_real_and_noise_is_not():
    a = [0.80, 0.82, 0.81, 0.79, 0.83]
    shifted = compare(a, [x + 0.1 for x in a], "test_accuracy")
    assert shifted.significant and shifted.difference == pytest.approx(0.1)
    assert shifted.ci_low < 0.1 < shifted.ci_high and "a real difference" in shifted.verdict()
    assert shifted.p_value == pytest.approx(stats.ttest_ind([x + 0.1 for x in a], a, equal_var=False).pvalue)
    noise = compare(a, [0.81, 0.80, 0.83, 0.82, 0.79], "test_accuracy")
    assert not noise.significant and "no real difference at 5 seeds each" in noise.verdict()


def test_deterministic_runs_and_single_runs_are_said_plainly():
    same = compare([0.9, 0.9], [0.9, 0.9], "m")
    assert same.p_value == 1.0 and not same.significant
    assert compare([0.9, 0.9], [0.8, 0.8], "m").significant
    single = compare([0.9], [0.8], "m")
    assert math.isnan(single.p_value) and "cannot tell" in single.verdict() and "--seeds" in single.verdict()


def test_improves_needs_significance_when_either_side_has_seeds():
    from workbench.statistics import improves

    assert improves([], [0.5])[0]
    assert improves([0.80], [0.81])[0] and not improves([0.81], [0.80])[0]
    assert not improves([0.80, 0.82, 0.81], [0.81, 0.83, 0.80])[0]   # within the spread
    assert improves([0.80, 0.81, 0.79], [0.90, 0.91, 0.89])[0]
    assert not improves([0.90, 0.91, 0.89], [0.80, 0.81, 0.79])[0]  # significant, but worse
    assert improves([2.0, 2.1, 1.9], [1.0, 1.1, 0.9], higher_is_better=False)[0]
    assert improves([0.80], [0.90, 0.91, 0.89])[0]                    # one-sample test against one score
    better, why = improves([0.85], [0.84, 0.87, 0.86])
    assert not better and "not a significant improvement" in why
