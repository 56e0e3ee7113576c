"""Statistics over training seeds: t intervals, paired t-tests and Holm's correction.

Seeds are few (3 is typical), so intervals use Student's t, not the normal approximation.
Metrics come from float32 computations: two designs that are mathematically the same (fused
and split heads under the same loss) differ by rounding only, and a t-test on rounding noise
can look "significant". Differences within `TIE_TOLERANCE` (relative to the values, at least
absolute) are therefore ties.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
TIE_TOLERANCE = 1e-5


def _clean(values) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    return array[np.isfinite(array)]


def t_interval(values, level: float = LEVEL) -> tuple[float, float, float, int]:
    """Mean and its two-sided `level` t interval; the interval is NaN below 2 values."""
    x = _clean(values)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


@dataclass(frozen=True)
class PairedTest:
    """`variant - reference` over the seeds both have; `effect_size` is the mean difference in
    units of the differences' standard deviation (Cohen's d_z). `identical` (a tie on every
    seed) and fewer than 2 pairs leave `t` and `p` NaN."""

    n: int
    reference_mean: float
    variant_mean: float
    diff: float
    ci_low: float
    ci_high: float
    t: float
    p: float
    effect_size: float
    identical: bool

    def as_dict(self) -> dict:
        return asdict(self)


def paired_test(variant, reference, level: float = LEVEL) -> PairedTest:
    """Two-sided paired t-test (scipy's `ttest_rel`) on pairs where both values are finite."""
    a, b = np.asarray(variant, dtype=float), np.asarray(reference, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    diffs = a - b
    scale = np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
    identical = bool(n > 0 and np.all(np.abs(diffs) <= TIE_TOLERANCE * scale))
    if identical:
        diffs = np.zeros(n)
    mean, low, high, _ = t_interval(diffs, level)
    t_stat = p_value = effect = math.nan
    if identical:  # a tie is not a test: no t, no p
        low = high = effect = 0.0
    elif n >= 2:
        spread = diffs.std(ddof=1)
        result = stats.ttest_rel(a, b)
        t_stat, p_value = float(result.statistic), float(result.pvalue)
        effect = float(mean / spread) if spread > 0 else math.copysign(math.inf, mean)
    return PairedTest(
        n,
        float(b.mean()) if n else math.nan,
        float(a.mean()) if n else math.nan,
        mean,
        low,
        high,
        t_stat,
        p_value,
        effect,
        identical,
    )


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values; NaN entries (no test) stay NaN and do not count."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = len(tested)
    running = 0.0
    for rank, index in enumerate(tested[np.argsort(p[tested], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted
