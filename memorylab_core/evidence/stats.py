"""Small-sample statistics for noise-aware promotion, with the standard library only.

MemoryLab may not import numpy or scipy, so the Student t distribution is computed here from the
regularized incomplete beta function (continued fraction, modified Lentz method). The functions are
what :mod:`memorylab_core.promotion` needs and no more: a one-sided Welch test between two groups of
runs, the t quantile for interval estimates, and a pooled standard deviation over replicate groups.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_CF_MAX_ITER = 300
_CF_EPS = 1e-14
_TINY = 1e-300


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def sample_var(values: Sequence[float]) -> float | None:
    """Unbiased sample variance, or None for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    m = mean(values)
    return sum((v - m) ** 2 for v in values) / (n - 1)


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (converges fast for x < (a+1)/(a+b+2))."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _CF_MAX_ITER + 1):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + num / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _CF_EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_cf(a, b, x) / a
    return 1.0 - front * _beta_cf(b, a, 1.0 - x) / b


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (``inf`` = standard normal)."""
    if math.isinf(df):
        return normal_cdf(t)
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_ppf(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (bisection on :func:`t_cdf`; plenty fast for reports)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {p}")
    lo, hi = -1.0, 1.0
    while t_cdf(lo, df) > p:
        lo *= 2.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Group:
    """Summary of one group of runs: mean, variance of one run, size, and the variance's degrees of freedom.

    ``var_df`` is ``n - 1`` when the variance is the group's own sample variance; a group too small for
    that borrows the ledger's noise level and its degrees of freedom (``inf`` when the noise level is a
    configured constant, i.e. treated as known).
    """

    mean: float
    var: float
    n: int
    var_df: float


@dataclass(frozen=True)
class WelchResult:
    """One-sided Welch test that group ``a`` has a higher mean than group ``b``."""

    diff: float  # mean(a) - mean(b)
    se: float  # standard error of diff
    t: float
    df: float
    p_value: float  # P(T >= t) under "no difference"

    def interval(self, level: float = 0.9) -> tuple[float, float]:
        """Two-sided ``level`` confidence interval for the difference."""
        q = t_ppf(0.5 + level / 2.0, self.df)
        return self.diff - q * self.se, self.diff + q * self.se


def welch_greater(a: Group, b: Group) -> WelchResult:
    """Welch's unequal-variance t-test of H1: mean(a) > mean(b), with Welch-Satterthwaite df."""
    wa, wb = a.var / a.n, b.var / b.n
    se2 = wa + wb
    diff = a.mean - b.mean
    if se2 <= 0.0:
        p = 0.0 if diff > 0 else 1.0
        return WelchResult(diff, 0.0, math.copysign(math.inf, diff) if diff else 0.0, math.inf, p)
    denom = sum(w * w / df for w, df in ((wa, a.var_df), (wb, b.var_df)) if not math.isinf(df) and df > 0)
    df = se2 * se2 / denom if denom > 0 else math.inf
    se = math.sqrt(se2)
    t = diff / se
    return WelchResult(diff, se, t, df, 1.0 - t_cdf(t, df))


def pooled_sd(groups: Sequence[Sequence[float]]) -> tuple[float | None, int]:
    """Pooled within-group standard deviation and its degrees of freedom (sum of n_i - 1)."""
    ss, df = 0.0, 0
    for values in groups:
        if len(values) < 2:
            continue
        m = mean(values)
        ss += sum((v - m) ** 2 for v in values)
        df += len(values) - 1
    if df == 0:
        return None, 0
    return math.sqrt(ss / df), df


def _upper_mills(a: float) -> float:
    """phi(a) / (1 - Phi(a)): the mean excess of a standard normal truncated to (a, inf), plus a."""
    tail = 0.5 * math.erfc(a / math.sqrt(2.0))
    if tail < 1e-300:
        return a + 1.0 / a  # asymptotic for very large a
    return math.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi) / tail


def truncated_mle(observed: float, se: float, threshold: float, floor_se: float = 6.0) -> float:
    """Conditional MLE of mu for X ~ N(mu, se^2) that was only reported because X > threshold.

    This is the winner's-curse correction: it solves E[X | X > threshold; mu] = observed for mu (the
    conditional mean is increasing in mu). An observation barely above the threshold says little, so
    the estimate is floored at ``observed - floor_se * se``. Observations not above the threshold, or
    a zero ``se``, are returned unchanged.
    """
    if se <= 0 or observed <= threshold:
        return observed

    def excess(mu: float) -> float:
        return mu + se * _upper_mills((threshold - mu) / se) - observed

    lo, hi = observed - floor_se * se, observed
    if excess(lo) >= 0:
        return lo
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if excess(mid) < 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def selection_corrected(observed: float, se: float, threshold: float) -> float:
    """A winner's-curse corrected estimate: the mean of the naive value and :func:`truncated_mle`.

    The conditional MLE alone over-corrects observations just above the threshold (it can run far
    below zero); averaging it with the naive value keeps most of the correction with much less
    spread, and is close to unbiased over the range of effects a night of experiments produces.
    """
    return 0.5 * (observed + truncated_mle(observed, se, threshold))
