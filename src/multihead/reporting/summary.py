"""One row per variant: each key metric as mean and 95% t interval over seeds, best marked.

Intervals are clipped to the metric's range (a rate stays within [0, 1]); with 3 seeds an
unclipped t interval often runs past it.

Reference rows (majority class, logistic regression) are single deterministic fits on the same
split, so they have a value but no interval, and they never take the "best" mark: the mark
answers "which of the designs we are choosing between", the references answer "is any of
them worth it".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from multihead.reporting.key_metrics import bounds, higher_is_better, key_columns
from multihead.reporting.runs import VARIANT_KEYS, ok_runs
from multihead.reporting.stats import LEVEL, TIE_TOLERANCE, t_interval

STATS = ("mean", "ci_low", "ci_high", "n")


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
    """`<metric>.best` is True on the variant(s) with the best mean; means equal up to float32
    rounding (fused and split under one loss) are ties and are all marked."""
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
