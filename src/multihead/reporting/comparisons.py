"""Every variant against one reference variant, paired over training seeds.

Seed `s` of two variants starts from the same initial weights and sees the same batch order
(the split is fixed by `data.seed`), so the per-seed difference removes most seed-to-seed
noise: a paired t-test on the differences is the right test, and with few seeds the only
honest one. All tests of one report form one family for Holm's correction; ties (differences
within float32 rounding on every seed) are not tests and are left out of the family.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from multihead.reporting.key_metrics import higher_is_better, key_columns, label
from multihead.reporting.runs import ok_runs
from multihead.reporting.stats import holm, paired_test

DEFAULT_REFERENCE = "fused+bce"
ALPHA = 0.05


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
