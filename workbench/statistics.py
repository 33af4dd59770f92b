"""Is a difference real? Means with confidence intervals over seeds, and Welch's t-test.

Pure numbers (numpy and scipy), so seed groups, `workbench compare` and notebooks say the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05  # a difference is called real when Welch's test gives p below this


@dataclass(frozen=True)
class Summary:
    """A metric over seeds: n values, their mean and sample standard deviation, and the t-based
    95% confidence interval of the mean (a single value has no interval: both ends are NaN)."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    def describe(self, digits: int = 4) -> str:
        if self.n == 1:
            return f"{self.mean:.{digits}f} (one run)"
        return (f"{self.mean:.{digits}f} ± {self.std:.{digits}f} (n={self.n}, 95% CI "
                f"{self.ci_low:.{digits}f} to {self.ci_high:.{digits}f})")


def summarize(values) -> Summary:
    from scipy import stats

    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise ValueError("no values to summarize")
    mean = float(x.mean())
    if x.size == 1:
        return Summary(1, mean, 0.0, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + CONFIDENCE) / 2, x.size - 1)) * std / math.sqrt(x.size)
    return Summary(int(x.size), mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class Difference:
    """B minus A for one metric, with Welch's confidence interval and test."""

    metric: str
    a: Summary
    b: Summary
    difference: float
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE

    def verdict(self) -> str:
        """The answer in plain words, with the numbers it rests on."""
        seeds = f"{self.a.n} and {self.b.n} seeds" if self.a.n != self.b.n else f"{self.a.n} seeds each"
        if math.isnan(self.p_value):
            return (f"cannot tell: {seeds}; a test needs at least two runs on each side "
                    "(train with --seeds 5)")
        direction = "higher" if self.difference > 0 else "lower"
        if self.significant:
            return (f"a real difference: B is {direction} by {abs(self.difference):.4f} (95% CI {self.ci_low:+.4f} to "
                    f"{self.ci_high:+.4f}); Welch's t-test p = {self.p_value:.2g} < {SIGNIFICANCE} at {seeds}")
        return (f"no real difference at {seeds}: {self.difference:+.4f} is within the seed spread (95% CI "
                f"{self.ci_low:+.4f} to {self.ci_high:+.4f}; Welch's t-test p = {self.p_value:.2g}); "
                "more seeds could still find a smaller one")


def compare(a_values, b_values, metric: str) -> Difference:
    from scipy import stats

    a, b = np.asarray(list(a_values), float), np.asarray(list(b_values), float)
    sa, sb = summarize(a), summarize(b)
    difference = sb.mean - sa.mean
    if a.size < 2 or b.size < 2:
        return Difference(metric, sa, sb, difference, math.nan, math.nan, math.nan)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:  # no spread at all (fully deterministic runs): equal or not, exactly
        p = 1.0 if difference == 0 else 0.0
        return Difference(metric, sa, sb, difference, difference, difference, p)
    dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))  # Welch–Satterthwaite
    half = float(stats.t.ppf((1 + CONFIDENCE) / 2, dof)) * math.sqrt(va + vb)
    p = float(stats.ttest_ind(b, a, equal_var=False).pvalue)
    return Difference(metric, sa, sb, difference, difference - half, difference + half, p)


def improves(current, new, higher_is_better: bool = True) -> tuple[bool, str]:
    """Does `new` (scores over seeds) beat `current`? With two or more scores on a side, only a
    significant difference counts (Welch's test; a one-sample t-test against a single score).
    Returns (better, why in plain words)."""
    from scipy import stats

    current, new = [float(v) for v in current], [float(v) for v in new]
    if not current:
        return True, "no champion yet"
    sign = 1.0 if higher_is_better else -1.0
    gain = sign * (float(np.mean(new)) - float(np.mean(current)))
    if len(current) == 1 and len(new) == 1:
        return gain > 0, f"one run each: {new[0]:.4f} against {current[0]:.4f}"
    if len(current) > 1 and len(new) > 1:
        difference = compare(current, new, "score")
        p, words = difference.p_value, difference.verdict()
    else:
        many, single = (new, current[0]) if len(new) > 1 else (current, new[0])
        if np.std(many) == 0:
            p = 1.0 if float(np.mean(many)) == single else 0.0
        else:
            p = float(stats.ttest_1samp(many, single).pvalue)
        words = f"mean {np.mean(new):.4f} against {np.mean(current):.4f}, one-sample t-test p = {p:.2g}"
    better = gain > 0 and p < SIGNIFICANCE
    return better, ("a significant improvement: " if better else "not a significant improvement: ") + words
