"""Statistics whose unit of replication is the data split, not the training seed.

A *split* is one train/val/test assignment: `data.seed`, and with cross-validation the
partition (`data.cv.repeat`) and test fold (`data.cv.fold`). Training seeds within a split are
averaged first; their spread is shown as initialisation noise, never used as the error of a
comparison (seeds share one test set, so they cannot see the test set's sampling noise).

- **Two or more splits**: every comparison is paired over the splits both sides have. The
  corrected resampled t-test (Nadeau & Bengio 2003) inflates the variance of the mean
  difference to (1/J + n_test/n_train) s^2, because splits share training samples (for
  repeated K-fold this is the correction of Bouckaert & Frank 2004); the Bayesian correlated
  t-test (Corani & Benavoli 2015) uses the same Student posterior, t(J-1, mean, that scale),
  and gives P(better), P(practically equal: within the metric's ROPE) and P(worse).
- **One split**: a paired bootstrap over the test samples (`BOOTSTRAP_RESAMPLES`, seeded): both
  sides are scored on the same resampled samples, so the interval includes the test set's
  sampling noise; the shares of resampled differences above, inside and below the ROPE take
  the place of the posterior probabilities.
- **No variance**: a difference of exactly 0 on every split (identical predictions) is a tie;
  the same non-zero difference on every split cannot be tested: both are said in words, never
  as an infinite statistic or a zero-width interval.

Primary comparisons (one key metric per task plus joint accuracy; Holm over that family only):
every variant against the reference variant, and the best network against the best linear
reference. Everything else is secondary, with a Holm family of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from multihead.metrics.names import (
    JOINT,
    ROPE,
    bounds,
    higher_is_better,
    key_columns,
    label,
    metric_of,
    primary_columns,
)
from multihead.reporting.runs import ok_runs

ALPHA = 0.05
TIE_TOLERANCE = 1e-5  # a difference within float32 rounding, relative to the values
DEFAULT_REFERENCE = "fused+bce"
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
STATS = ("mean", "ci_low", "ci_high", "n")
NETWORK, REFERENCE = "network", "reference"
#: metrics a bootstrap can recompute from a predictions table
BOOTSTRAPPABLE = frozenset({"accuracy", "balanced_accuracy", "mae_years", JOINT})
Predictions = Callable[[str, str], list[pd.DataFrame]]  # (variant, split) -> one frame per seed


def no_spread(values) -> bool:
    """True when values are equal up to float rounding (their sum's last bits)."""
    x = np.asarray(values, dtype=float)
    return len(x) < 2 or float(np.ptp(x)) <= 1e-12 * max(1.0, float(np.abs(x).max()))


def _clean(values) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    return array[np.isfinite(array)]


def t_interval(values, level: float = 1 - ALPHA) -> tuple[float, float, float, int]:
    """Mean and its two-sided `level` Student-t interval; NaN below 2 values or when the
    values do not vary (no zero-width interval)."""
    x = _clean(values)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if no_spread(x):
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


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


# ------------------------------------------------------------------ one row per split


def evaluations(runs: pd.DataFrame, references: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (variant, split): a network's metrics averaged over its seeds (with
    `n_seeds` and `<metric>.seed_sd`, the spread between seeds), then reference rows."""
    done = ok_runs(runs)
    columns = key_columns(done)
    rows = []
    for (variant, split), jobs in done.groupby(["variant", "split"], sort=False):
        row = {
            "variant": variant,
            "kind": NETWORK,
            "split": split,
            "data_key": jobs["data_key"].iloc[0],
            "n_seeds": int(jobs["seed"].nunique()),
        }
        for size in ("n_train", "n_val", "n_test"):
            row[size] = pd.to_numeric(jobs.get(size), errors="coerce").mean()
        for column in columns:
            values = pd.to_numeric(jobs[column], errors="coerce")
            row[column] = values.mean()
            row[f"{column}.seed_sd"] = values.std(ddof=1) if values.notna().sum() > 1 else np.nan
        rows.append(row)
    frame = pd.DataFrame(rows)
    if references is not None and len(references):
        refs = references.assign(n_seeds=np.nan)
        frame = pd.concat([frame, refs], ignore_index=True)
    return frame


def test_share(evals: pd.DataFrame) -> float:
    """n_test / n_train of the corrected t-test (training part = train + validation: what
    the model saw before test), averaged over the splits."""
    train = pd.to_numeric(evals["n_train"], errors="coerce") + pd.to_numeric(
        evals.get("n_val", 0), errors="coerce"
    ).fillna(0)
    share = pd.to_numeric(evals["n_test"], errors="coerce") / train
    share = share[np.isfinite(share) & (share > 0)]
    return float(share.mean()) if len(share) else math.nan


# --------------------------------------------------------------------- the tests


def corrected_t(diffs: np.ndarray, share: float, alpha: float = ALPHA) -> dict[str, float]:
    """Corrected resampled t-test on per-split differences: mean, its 1-alpha interval, t, p
    and the posterior scale (the same for the Bayesian correlated t-test). Needs >= 2
    differences that vary."""
    j = len(diffs)
    mean = float(np.mean(diffs))
    scale = math.sqrt((1 / j + share) * float(np.var(diffs, ddof=1)))
    t_stat = mean / scale
    p = float(2 * stats.t.sf(abs(t_stat), j - 1))
    half = float(stats.t.ppf(1 - alpha / 2, j - 1)) * scale
    return {
        "diff": mean,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "t": t_stat,
        "p": p,
        "scale": scale,
        "df": j - 1,
    }


def posterior_shares(gain_loc: float, scale: float, df: float, rope: float) -> tuple[float, ...]:
    """P(gain < -rope), P(|gain| <= rope), P(gain > rope) under t(df, gain_loc, scale)."""
    below = float(stats.t.cdf(-rope, df, loc=gain_loc, scale=scale))
    above = float(stats.t.sf(rope, df, loc=gain_loc, scale=scale))
    return below, max(0.0, 1 - below - above), above


def resample_indices(n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED):
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_metric(frame: pd.DataFrame, column: str, idx: np.ndarray) -> np.ndarray:
    """`column` (`task/metric` or joint accuracy) of a predictions table on every resample
    (rows of `idx`); NaN where a resample has no labelled sample."""
    metric = metric_of(column)
    if metric == JOINT:
        tasks = [c[: -len("_true")] for c in frame.columns if c.endswith("_true")]
        labelled = np.all([frame[f"{t}_true"].notna().to_numpy() for t in tasks], axis=0)
        right = np.all(
            [(frame[f"{t}_true"] == frame[f"{t}_pred"]).to_numpy() for t in tasks], axis=0
        )
        return _mean_where(right.astype(float), labelled, idx)
    task = column.split("/", 1)[0]
    true = frame[f"{task}_true"]
    labelled = true.notna().to_numpy()
    if metric == "mae_years":
        error = (frame[f"{task}_pred_value"] - frame[f"{task}_true_value"]).abs().to_numpy()
        return _mean_where(error, labelled & np.isfinite(error), idx)
    right = (true == frame[f"{task}_pred"]).to_numpy().astype(float)
    if metric == "accuracy":
        return _mean_where(right, labelled, idx)
    # balanced accuracy: mean recall over the classes present in each resample's labels
    codes, classes = pd.factorize(true)
    recalls = []
    for k in range(len(classes)):
        recalls.append(_mean_where(right, codes == k, idx))
    return np.nanmean(np.vstack(recalls), axis=0) if recalls else np.full(len(idx), np.nan)


def _mean_where(values: np.ndarray, mask: np.ndarray, idx: np.ndarray) -> np.ndarray:
    weights = mask[idx].astype(float)
    total = (np.where(mask, values, 0.0)[idx] * weights).sum(axis=1)
    count = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def aligned(frames: Sequence[pd.DataFrame], order: pd.Index) -> list[pd.DataFrame]:
    return [f.set_index("sample_id").reindex(order).reset_index() for f in frames]


def paired_bootstrap(
    variant: Sequence[pd.DataFrame],
    reference: Sequence[pd.DataFrame],
    column: str,
    alpha: float = ALPHA,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, float] | None:
    """Both sides (each a list of one predictions table per training seed, averaged) scored
    on the same resampled test samples; None when they share no sample."""
    if not variant or not reference:
        return None
    order = pd.Index(variant[0]["sample_id"]).intersection(pd.Index(reference[0]["sample_id"]))
    if len(order) == 0:
        return None
    idx = resample_indices(len(order), resamples, seed)
    full = np.arange(len(order))[None, :]

    def score(frames, rows):
        return np.nanmean(
            [bootstrap_metric(f, column, rows) for f in aligned(frames, order)], axis=0
        )

    observed = float(score(variant, full)[0] - score(reference, full)[0])
    diffs = score(variant, idx) - score(reference, idx)
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) == 0:
        return None
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * (min((diffs <= 0).sum(), (diffs >= 0).sum()) + 1) / (len(diffs) + 1))
    return {
        "diff": observed,
        "ci_low": float(low),
        "ci_high": float(high),
        "p": float(p),
        "draws": diffs,
    }


# ------------------------------------------------------------------------ summary


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


def _interval(values: np.ndarray, share: float, alpha: float) -> tuple[float, float, float, int]:
    """Mean over splits and its corrected-t interval (NaN below 2 splits or no variation)."""
    x = _clean(values)
    if len(x) == 0:
        return math.nan, math.nan, math.nan, 0
    if no_spread(x) or not np.isfinite(share):
        return float(x.mean()), math.nan, math.nan, len(x)
    out = corrected_t(x, share, alpha)
    return out["diff"], out["ci_low"], out["ci_high"], len(x)


def summarise(
    evals: pd.DataFrame,
    predictions: Predictions | None = None,
    alpha: float = ALPHA,
    linear: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per variant, networks in order of appearance, then references. Per key
    metric: mean over splits, a 1-alpha interval (corrected t over >= 2 splits; a bootstrap
    over the test samples with one split), the number of splits, the mean seed spread, and
    `.best` on the best network or linear reference (never a network a reference beats)."""
    columns = key_columns(evals)
    share = test_share(evals)
    rows = []
    for variant, part in evals.groupby("variant", sort=False):
        kind = part["kind"].iloc[0]
        row: dict = {"variant": variant, "kind": kind, "n_splits": int(part["split"].nunique())}
        row["n_seeds"] = float(part["n_seeds"].mean()) if kind == NETWORK else math.nan
        for column in columns:
            values = pd.to_numeric(part[column], errors="coerce").to_numpy(float)
            mean, low, high, n = _interval(values, share, alpha)
            if n == 1 and predictions is not None and metric_of(column) in BOOTSTRAPPABLE:
                frames = predictions(variant, part["split"].iloc[0])
                low, high = _bootstrap_interval(frames, column, alpha)
            lowest, highest = bounds(column)
            low, high = (min(max(v, lowest), highest) if np.isfinite(v) else v for v in (low, high))
            row.update(
                dict(zip((f"{column}.{s}" for s in STATS), (mean, low, high, n), strict=True))
            )
            spread = part.get(f"{column}.seed_sd")
            row[f"{column}.seed_sd"] = (
                float(pd.to_numeric(spread, errors="coerce").mean())
                if spread is not None
                else math.nan
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    return mark_best(table, columns, linear) if len(table) else table


def _bootstrap_interval(
    frames: list[pd.DataFrame], column: str, alpha: float
) -> tuple[float, float]:
    if not frames:
        return math.nan, math.nan
    order = pd.Index(frames[0]["sample_id"])
    idx = resample_indices(len(order))
    draws = np.nanmean([bootstrap_metric(f, column, idx) for f in aligned(frames, order)], axis=0)
    draws = draws[np.isfinite(draws)]
    if len(draws) == 0 or no_spread(draws):
        return math.nan, math.nan
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def mark_best(table: pd.DataFrame, columns: list[str], linear: Sequence[str] = ()) -> pd.DataFrame:
    """`<metric>.best` on the best mean among networks and linear references; means equal
    within `TIE_TOLERANCE` (the same predictions) are ties and are all marked."""
    eligible = (table["kind"] == NETWORK) | table["variant"].isin(list(linear))
    for column in columns:
        means = table[f"{column}.mean"].where(eligible)
        best = means.max() if higher_is_better(column) else means.min()
        close = np.isclose(means, best, rtol=TIE_TOLERANCE, atol=TIE_TOLERANCE)
        table[f"{column}.best"] = (eligible & close) if np.isfinite(best) else False
    return table


def summary_columns(table: pd.DataFrame) -> list[str]:
    """The metric columns of a summary table, in order."""
    return [c[: -len(".mean")] for c in table.columns if c.endswith(".mean")]


# -------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class Comparison:
    """`variant - reference` on one metric. `method`: corrected t (>= 2 splits), bootstrap
    (1 split), or none; `status`: tested, identical, constant (same non-zero difference on
    every split), too few (no shared split or a metric the bootstrap cannot recompute)."""

    variant: str
    reference: str
    metric: str
    family: str
    n_splits: int
    reference_mean: float
    variant_mean: float
    diff: float
    ci_low: float
    ci_high: float
    p: float
    p_worse: float
    p_equal: float
    p_better: float
    rope: float
    method: str
    status: str

    def as_dict(self) -> dict:
        return asdict(self)


def _per_split(evals: pd.DataFrame, variant: str, column: str) -> pd.Series:
    """One value per split (a split listed twice, which should not happen, is averaged)."""
    part = evals[evals["variant"] == variant]
    values = pd.to_numeric(part[column], errors="coerce")
    return values.groupby(part["split"].to_numpy(), sort=False).mean().dropna()


def _tested(base: dict, out: Mapping, shares: tuple[float, ...], method: str) -> Comparison:
    """A tested comparison: `out` has diff, ci_low, ci_high and p; `shares` are P(worse),
    P(practically equal), P(better)."""
    worse, equal, better = shares
    return Comparison(
        **base,
        diff=out["diff"],
        ci_low=out["ci_low"],
        ci_high=out["ci_high"],
        p=out["p"],
        p_worse=worse,
        p_equal=equal,
        p_better=better,
        method=method,
        status="tested",
    )


def compare_pair(
    evals: pd.DataFrame,
    variant: str,
    reference: str,
    column: str,
    family: str,
    alpha: float = ALPHA,
    rope: Mapping[str, float] = ROPE,
    predictions: Predictions | None = None,
) -> Comparison:
    a, b = _per_split(evals, variant, column), _per_split(evals, reference, column)
    common = a.index.intersection(b.index)
    a, b = a[common], b[common]
    width = float(rope.get(metric_of(column), 0.0))
    sign = 1.0 if higher_is_better(column) else -1.0
    base = dict(
        variant=variant,
        reference=reference,
        metric=column,
        family=family,
        n_splits=len(common),
        rope=width,
        reference_mean=float(b.mean()) if len(b) else math.nan,
        variant_mean=float(a.mean()) if len(a) else math.nan,
    )
    nan = dict(
        ci_low=math.nan,
        ci_high=math.nan,
        p=math.nan,
        p_worse=math.nan,
        p_equal=math.nan,
        p_better=math.nan,
    )
    diffs = (a - b).to_numpy(float)
    scale = np.maximum(1.0, np.maximum(np.abs(a.to_numpy(float)), np.abs(b.to_numpy(float))))
    if len(common) and np.all(np.abs(diffs) <= TIE_TOLERANCE * scale):
        return Comparison(
            **base, diff=0.0, **{**nan, "p_equal": 1.0}, method="none", status="identical"
        )
    if len(common) >= 2:
        if no_spread(diffs):
            return Comparison(
                **base, diff=float(diffs.mean()), **nan, method="none", status="constant"
            )
        out = corrected_t(
            diffs, test_share(evals[evals["variant"].isin([variant, reference])]), alpha
        )
        shares = posterior_shares(sign * out["diff"], out["scale"], out["df"], width)
        return _tested(base, out, shares, "corrected t")
    if len(common) == 1 and predictions is not None and metric_of(column) in BOOTSTRAPPABLE:
        split = common[0]
        out = paired_bootstrap(
            predictions(variant, split), predictions(reference, split), column, alpha
        )
        if out is not None:
            gain = sign * out["draws"]
            if no_spread(gain):
                status = "identical" if gain[0] == 0 else "constant"
                return Comparison(**base, diff=out["diff"], **nan, method="none", status=status)
            worse, better = float((gain < -width).mean()), float((gain > width).mean())
            return _tested(base, out, (worse, 1 - worse - better, better), "bootstrap")
    diff = float(diffs.mean()) if len(diffs) else math.nan
    return Comparison(**base, diff=diff, **nan, method="none", status="too few")


def verdict(row: Mapping, alpha: float = ALPHA) -> str:
    """better / worse (Holm-adjusted p below alpha), practically equal (P(equal) >= 1 -
    alpha), same (identical predictions), unclear, or untested."""
    if row["status"] == "identical":
        return "same"
    if row["status"] != "tested":
        return "untested"
    if row["p_holm"] < alpha:
        gain = row["diff"] if higher_is_better(row["metric"]) else -row["diff"]
        return "better" if gain > 0 else "worse"
    if row["p_equal"] >= 1 - alpha:
        return "practically equal"
    return "unclear"


def fmt(x: float) -> str:
    """A signed number: 3 decimals for rates, fewer for large values."""
    if not np.isfinite(x):
        return "nan"
    return f"{x:+.3g}" if abs(x) >= 100 else f"{x:+.2f}" if abs(x) >= 10 else f"{x:+.3f}"


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def sentence(row: Mapping, alpha: float = ALPHA) -> str:
    """The comparison in plain words, interval signed as `variant - reference`."""
    v, r, what = row["variant"], row["reference"], label(row["metric"])
    n = int(row["n_splits"])
    splits = f"{n} split" + ("s" if n != 1 else "")
    if row["status"] == "identical":
        where = "every split" if n > 1 else "the one split"
        return f"{v} and {r} make the same predictions for {what} on {where} ({splits})."
    if row["status"] == "constant":
        return (
            f"{v} - {r} on {what} is {fmt(row['diff'])} on every split ({splits}): no "
            "variation between splits, too little to test."
        )
    if row["status"] != "tested":
        reason = (
            "no split with both"
            if n == 0
            else "one split, and the bootstrap cannot recompute this metric"
        )
        return f"{v} vs {r} on {what}: not tested ({reason})."
    level = round(100 * (1 - alpha))
    how = (
        "corrected t-test"
        if row["method"] == "corrected t"
        else "paired bootstrap over test samples"
    )
    probs = (
        f"P(better)={row['p_better']:.2f}, P(practically equal, ±{row['rope']:g})="
        f"{row['p_equal']:.2f}, P(worse)={row['p_worse']:.2f}"
    )
    holm_p = _p(row["p_holm"]).removeprefix("p")
    stats_text = f"{how}, {_p(row['p'])}, Holm p{holm_p} ({row['family']}), {splits}"
    words = {
        "better": "beats",
        "worse": "is worse than",
        "practically equal": "is practically equal to",
        "unclear": "does not differ clearly from",
    }[row["verdict"]]
    return (
        f"{v} {words} {r} on {what}: {v} - {r} = {fmt(row['diff'])} "
        f"[{fmt(row['ci_low'])}, {fmt(row['ci_high'])}] ({level}%), {probs}; {stats_text}."
    )


def compare(
    evals: pd.DataFrame,
    reference: str = DEFAULT_REFERENCE,
    alpha: float = ALPHA,
    rope: Mapping[str, float] = ROPE,
    predictions: Predictions | None = None,
    linear: Sequence[str] = (),
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Primary: every network vs `reference`, and the best network vs the best linear
    reference (by the summary's means), on the primary metrics; secondary: every network vs
    `reference` on the other key metrics. Holm within each family."""
    networks = list(dict.fromkeys(evals.loc[evals["kind"] == NETWORK, "variant"]))
    columns = key_columns(evals)
    primary = primary_columns(columns)
    rows = []
    for column in columns:
        family = "primary" if column in primary else "secondary"
        for variant in networks:
            if variant != reference:
                rows.append(
                    compare_pair(
                        evals, variant, reference, column, family, alpha, rope, predictions
                    )
                )
        if family == "primary" and summary is not None and linear:
            pair = best_pair(summary, column, networks, linear)
            if pair is not None:
                rows.append(compare_pair(evals, *pair, column, family, alpha, rope, predictions))
    frame = pd.DataFrame([r.as_dict() for r in rows])
    if frame.empty:
        return frame
    frame["p_holm"] = np.nan
    for family in ("primary", "secondary"):
        mask = frame["family"] == family
        frame.loc[mask, "p_holm"] = holm(frame.loc[mask, "p"])
    frame["verdict"] = [verdict(row, alpha) for _, row in frame.iterrows()]
    frame["sentence"] = [sentence(row, alpha) for _, row in frame.iterrows()]
    return frame


def best_of(summary: pd.DataFrame, column: str, names: Sequence[str]) -> str | None:
    part = summary[summary["variant"].isin(list(names))]
    means = pd.to_numeric(part[f"{column}.mean"], errors="coerce")
    if means.notna().sum() == 0:
        return None
    index = means.idxmax() if higher_is_better(column) else means.idxmin()
    return str(part.loc[index, "variant"])


def best_pair(summary: pd.DataFrame, column: str, networks: Sequence[str], linear: Sequence[str]):
    """(best network, best linear reference) on `column`, or None when either is missing."""
    if f"{column}.mean" not in summary:
        return None
    net, ref = best_of(summary, column, networks), best_of(summary, column, linear)
    return None if net is None or ref is None else (net, ref)
