"""Statistics of a sweep: intervals over training seeds, the summary table, and every variant
against a reference variant.

Seeds are few (3 is typical), so intervals use Student's t, not the normal approximation.
Metrics come from float32 computations: a difference within `TIE_TOLERANCE` (relative to the
values, at least absolute) on every seed means the two variants made the same predictions,
and is a tie, not a test. `fused` and `split` under one loss are the same function, but
training amplifies their float rounding (one GEMM vs two) into small differences; those are
tested like any other difference, and are far below seed-to-seed variation.

Summary: one row per variant, each key metric as mean and 95% t interval over seeds, best
marked; intervals clipped to the metric's range. Reference rows (majority class, logistic
regression) are single deterministic fits on the same split: a value, no interval, never the
"best" mark.

Comparisons: seed `s` of two variants with the same output shapes starts from the same initial
weights and sees the same batch order (the split is fixed by `data.seed`), so the per-seed
difference removes most seed-to-seed noise: a paired t-test on the differences. All tests of
one report form one family for Holm's correction; ties are left out of the family.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from multihead.metrics.names import bounds, higher_is_better, key_columns, label
from multihead.reporting.runs import VARIANT_KEYS, ok_runs

LEVEL = 0.95
TIE_TOLERANCE = 1e-5
DEFAULT_REFERENCE = "fused+bce"
ALPHA = 0.05
STATS = ("mean", "ci_low", "ci_high", "n")


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


def _variant_row(variant: str, jobs: pd.DataFrame, columns: list[str]) -> dict:
    row: dict = {"variant": variant, "kind": "variant", "n_seeds": int(jobs["seed"].nunique())}
    row.update({k: jobs[k].iloc[0] for k in VARIANT_KEYS})
    for column in columns:
        values = pd.to_numeric(jobs[column], errors="coerce")
        mean, low, high, n = t_interval(values, LEVEL)
        lowest, highest = bounds(column)
        low, high = (min(max(v, lowest), highest) if np.isfinite(v) else v for v in (low, high))
        row.update(dict(zip((f"{column}.{s}" for s in STATS), (mean, low, high, n), strict=True)))
    return row


def _reference_row(reference: pd.Series, columns: list[str]) -> dict:
    row: dict = {"variant": reference["variant"], "kind": "reference", "n_seeds": math.nan}
    for column in columns:
        value = float(reference.get(column, math.nan))
        row.update(
            {
                f"{column}.mean": value,
                f"{column}.ci_low": math.nan,
                f"{column}.ci_high": math.nan,
                f"{column}.n": 1 if np.isfinite(value) else 0,
            }
        )
    return row


def mark_best(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`<metric>.best` is True on the variant(s) with the best mean; means equal within
    `TIE_TOLERANCE` (the same predictions) are ties and are all marked."""
    is_variant = table["kind"] == "variant"
    for column in columns:
        means = table[f"{column}.mean"].where(is_variant)
        best = means.max() if higher_is_better(column) else means.min()
        close = np.isclose(means, best, rtol=TIE_TOLERANCE, atol=TIE_TOLERANCE)
        table[f"{column}.best"] = (is_variant & close) if np.isfinite(best) else False
    return table


def summarise(runs: pd.DataFrame, references: pd.DataFrame | None = None) -> pd.DataFrame:
    """The summary table: variants in order of first appearance, then reference rows.

    Columns: variant, kind, n_seeds, head, loss, weighting, and per key metric
    `<metric>.mean/.ci_low/.ci_high/.n/.best`."""
    done = ok_runs(runs)
    columns = key_columns(done)
    rows = [_variant_row(v, jobs, columns) for v, jobs in done.groupby("variant", sort=False)]
    if references is not None:
        rows += [_reference_row(r, columns) for _, r in references.iterrows()]
    table = pd.DataFrame(rows)
    return mark_best(table, columns) if len(table) else table


def summary_columns(table: pd.DataFrame) -> list[str]:
    """The metric columns of a summary table, in order."""
    return [c[: -len(".mean")] for c in table.columns if c.endswith(".mean")]


def choose_reference(variants: list[str], requested: str) -> tuple[str, str]:
    """The reference variant, and a note when the requested one is not in the sweep."""
    if requested in variants:
        return requested, ""
    if requested.endswith("+fixed") and requested[: -len("+fixed")] in variants:
        return requested[: -len("+fixed")], ""
    if not variants:
        raise ValueError("no finished job to compare")
    return variants[0], (
        f"reference {requested!r} is not in this sweep; comparing against "
        f"{variants[0]!r} instead (choose with --reference)"
    )


def per_seed(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Variants as columns, seeds as rows (a repeated seed is averaged)."""
    done = ok_runs(runs)
    values = pd.to_numeric(done[column], errors="coerce")
    frame = done.assign(value=values)
    return frame.pivot_table(
        index="seed", columns="variant", values="value", aggfunc="mean", dropna=False, sort=False
    )


def _fmt(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.3g}" if abs(x) >= 100 else f"{x:.3f}"


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def sentence(row: pd.Series | dict, alpha: float = ALPHA) -> str:
    """The comparison in plain words, e.g. 'split+ce beats fused+bce on age balanced accuracy
    by 0.040 [0.020, 0.060], p=0.003 (Holm, 3 seeds, d=2.1).'"""
    v, r, what, n = row["variant"], row["reference"], label(row["metric"]), int(row["n"])
    seeds = f"{n} seed" + ("s" if n != 1 else "")
    if n == 0:
        return f"{v} vs {r} on {what}: no seed with both values."
    if row["identical"]:
        return f"{v} and {r} give the same {what} on all {seeds} (difference 0)."
    if n < 2:
        return f"{v} vs {r} on {what}: only 1 paired seed, no test possible."
    diff, low, high = row["diff"], row["ci_low"], row["ci_high"]
    gain = diff if higher_is_better(row["metric"]) else -diff
    stats = f"{_p(row['p_holm'])} (Holm, {seeds}, d={row['effect_size']:.2f})"
    if row["p_holm"] < alpha:
        verb = "beats" if gain > 0 else "is worse than"
        lo, hi = sorted((abs(low), abs(high)))
        return f"{v} {verb} {r} on {what} by {_fmt(abs(diff))} [{_fmt(lo)}, {_fmt(hi)}], {stats}."
    return (
        f"{v} and {r} do not differ clearly on {what}: {v} - {r} = {diff:+.3f} "
        f"[{_fmt(low)}, {_fmt(high)}], {stats}."
    )


def verdict(p_holm: float, gain: float, identical: bool, alpha: float = ALPHA) -> str:
    """better / worse (significant after Holm), unclear, same (a tie) or untested."""
    if identical:
        return "same"
    if not math.isfinite(p_holm):
        return "untested"
    if p_holm >= alpha:
        return "unclear"
    return "better" if gain > 0 else "worse"


def compare(
    runs: pd.DataFrame, reference: str = DEFAULT_REFERENCE, alpha: float = ALPHA
) -> pd.DataFrame:
    """One row per (variant, key metric): paired statistics against `reference`, the
    Holm-adjusted p-value, a verdict (better/worse/unclear/same/untested) and the sentence.
    `reference` must be a label from `runs['variant']` (see `choose_reference`)."""
    done = ok_runs(runs)
    variants = list(dict.fromkeys(done["variant"]))
    rows = []
    tables = {column: per_seed(done, column) for column in key_columns(done)}
    for variant in variants:
        for column, table in tables.items():
            if variant == reference or reference not in table:
                continue
            test = paired_test(table[variant], table[reference])
            rows.append(
                {"variant": variant, "reference": reference, "metric": column, **test.as_dict()}
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["p_holm"] = holm(frame["p"].where(~frame["identical"]))
    gain = np.where([higher_is_better(m) for m in frame["metric"]], frame["diff"], -frame["diff"])
    frame["verdict"] = [
        verdict(p, g, same, alpha)
        for p, g, same in zip(frame["p_holm"], gain, frame["identical"], strict=True)
    ]
    frame["sentence"] = [sentence(row, alpha) for _, row in frame.iterrows()]
    return frame
