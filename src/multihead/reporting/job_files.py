"""Readers for the per-job files a run writes, pooled over a variant's seeds.

Counts (confusion matrices, TP/FP/TN/FN) are summed over seeds: every seed is tested on the
same test split, so the sum is "how often, over all seeds" and rates recomputed from it weigh
each seed equally.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from multihead.reporting.runs import ok_runs

COUNT_COLUMNS = ("tp", "fp", "tn", "fn", "support")


def _job_paths(runs: pd.DataFrame, variant: str) -> list[Path]:
    done = ok_runs(runs)
    return [Path(p) for p in done.loc[done["variant"] == variant, "path"]]


def variants(runs: pd.DataFrame) -> list[str]:
    """Variants with at least one finished job, in order of first appearance."""
    return list(dict.fromkeys(ok_runs(runs)["variant"]))


def read_confusion(job_dir: str | Path, task: str) -> pd.DataFrame:
    """Rows true class, columns predicted class, as the job wrote it."""
    return pd.read_csv(Path(job_dir) / f"confusion_{task}.csv", index_col=0)


def pooled_confusion(runs: pd.DataFrame, variant: str, task: str) -> pd.DataFrame:
    """The variant's confusion matrix for `task`, summed over its seeds."""
    frames = [
        read_confusion(p, task)
        for p in _job_paths(runs, variant)
        if (p / f"confusion_{task}.csv").exists()
    ]
    if not frames:
        raise FileNotFoundError(f"no confusion_{task}.csv for variant {variant!r}")
    total = frames[0].copy()
    for frame in frames[1:]:
        total = total.add(frame, fill_value=0)
    return total.astype(int)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).fillna(0.0)


def pooled_per_class(runs: pd.DataFrame, variant: str, task: str) -> pd.DataFrame:
    """Per class TP, FP, TN, FN and support summed over the variant's seeds, with the
    precision, recall and F1 those totals imply, and the number of seeds pooled."""
    paths = [p for p in _job_paths(runs, variant) if (p / f"per_class_{task}.csv").exists()]
    if not paths:
        raise FileNotFoundError(f"no per_class_{task}.csv for variant {variant!r}")
    frames = [pd.read_csv(p / f"per_class_{task}.csv", dtype={"class": str}) for p in paths]
    total = pd.concat(frames).groupby("class", sort=False)[list(COUNT_COLUMNS)].sum()
    total = total.reset_index()
    total["precision"] = _ratio(total["tp"], total["tp"] + total["fp"])
    total["recall"] = _ratio(total["tp"], total["tp"] + total["fn"])
    total["f1"] = _ratio(
        2 * total["precision"] * total["recall"], total["precision"] + total["recall"]
    )
    total.insert(0, "seeds", len(paths))
    return total


def read_predictions(job_dir: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(job_dir) / "predictions.csv", dtype={"sample_id": str})


def task_probabilities(predictions: pd.DataFrame, task: str) -> tuple[np.ndarray, list[str]]:
    """The `task_p[class]` columns as an (n, k) array, with the class names in order."""
    prefix = f"{task}_p["
    columns = [c for c in predictions.columns if c.startswith(prefix)]
    return predictions[columns].to_numpy(float), [c[len(prefix) : -1] for c in columns]


def pooled_predictions(runs: pd.DataFrame, variant: str) -> pd.DataFrame:
    """All test predictions of a variant's seeds, with a `seed` column."""
    done = ok_runs(runs)
    frames = []
    for row in done[done["variant"] == variant].itertuples():
        path = Path(row.path) / "predictions.csv"
        if path.exists():
            frames.append(read_predictions(row.path).assign(seed=row.seed))
    if not frames:
        raise FileNotFoundError(f"no predictions.csv for variant {variant!r}")
    return pd.concat(frames, ignore_index=True)


def read_curves(job_dir: str | Path) -> pd.DataFrame | None:
    """Per-epoch validation values from `csv/metrics.csv` (CSV logger), one row per epoch;
    None when the job ran without the CSV logger."""
    path = Path(job_dir) / "csv" / "metrics.csv"
    if not path.exists():
        return None
    frame = pd.read_csv(path)
    val = [c for c in frame.columns if c.startswith("val/")]
    if "epoch" not in frame or not val:
        return None
    return frame.dropna(subset=val, how="all").groupby("epoch", as_index=False)[val].last()


def pooled_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Validation curves of every finished job: epoch, variant, seed and the `val/...`
    columns; empty when no job has a CSV log."""
    frames = []
    for row in ok_runs(runs).itertuples():
        curves = read_curves(row.path)
        if curves is not None:
            frames.append(curves.assign(variant=row.variant, seed=row.seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
