"""A sweep read back from its folders: one row per job, finished, failed or missing, and the
per-job files of a variant pooled over its seeds.

This is the public API the report and the notebook share: `load_runs(sweep_dir)` (and
`multihead.run_folder.load_run(job_dir)` for one job). Nothing is re-trained and nothing
touches the network; a job is whatever its files say. A job is a *variant* (head x loss x
weighting, plus any other override that differs between jobs) at one training *seed*.

Counts (confusion matrices, TP/FP/TN/FN) are summed over seeds: every seed is tested on the
same test split, so the sum is "how often, over all seeds" and rates recomputed from it weigh
each seed equally.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from multihead.metrics.names import JOINT
from multihead.run_folder import (
    DEFAULT_WEIGHTING,
    MISSING,
    OK,
    PREDICTIONS_FILE,
    VARIANT_KEYS,
    confusion_file,
    describe,
    is_job_dir,
    load_run,
    override_pairs,
    per_class_file,
    planned_from_sweep_dir,
    read_confusion,
    read_history,
    read_per_class,
    read_predictions,
)

# overrides that never define a variant: the replicates (training seed, data split), and where
# results are logged
NOT_VARIANT_KEYS = (
    "seed",
    "data.seed",
    "data.cv.fold",
    "data.cv.repeat",
    "logger",
    "hydra",
    "paths",
    "callbacks.progress",
)
COUNT_COLUMNS = ("tp", "fp", "tn", "fn", "support")


def _missing_rows(planned: list[list[str]], found: Iterable[int]) -> list[dict[str, Any]]:
    """Planned jobs with no folder at all (a killed sweep, a deleted folder)."""
    seen = set(found)
    rows = []
    for num, overrides in enumerate(planned):
        if num in seen:
            continue
        row = {
            "job": f"{num} (no folder)",
            "num": num,
            "path": None,
            "overrides": " ".join(overrides),
            "override_list": list(overrides),
            "status": MISSING,
            "error": "planned by the sweep but no job folder exists",
        }
        row.update(describe({}, {}, overrides))
        rows.append(row)
    return rows


def varying_keys(override_lists: list[list[str]], exclude: Iterable[str] = ()) -> list[str]:
    """Override keys whose value differs between jobs (other than `exclude` and logging
    choices)."""
    values: dict[str, set[str]] = {}
    for overrides in override_lists:
        pairs = override_pairs(overrides)
        for key in set(values) | set(pairs):
            values.setdefault(key, set()).add(pairs.get(key, "<default>"))
    skip = set(exclude)
    return sorted(
        k
        for k, v in values.items()
        if len(v) > 1 and k not in skip and not k.lstrip("+~").startswith(NOT_VARIANT_KEYS)
    )


def variant_label(head: Any, loss: Any, weighting: Any, extra: str = "") -> str:
    """`fused+bce`, `split+ce+uncertainty` (weighting shown unless fixed), then any extra."""
    parts = [str(p) if isinstance(p, str) and p else "?" for p in (head, loss)]
    if weighting and weighting != DEFAULT_WEIGHTING:
        parts.append(str(weighting))
    return "+".join(parts) + (f" [{extra}]" if extra else "")


def add_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """`variant` column: the label shared by every seed of one configuration."""
    keys = varying_keys(list(frame["override_list"]), exclude=VARIANT_KEYS)

    def extra(overrides: list[str]) -> str:
        pairs = override_pairs(overrides)
        return ",".join(f"{k}={pairs.get(k, '<default>')}" for k in keys)

    frame["variant"] = [
        variant_label(r.head, r.loss, r.weighting, extra(r.override_list))
        for r in frame.itertuples()
    ]
    return frame


def load_runs(sweep_dir: str | Path) -> pd.DataFrame:
    """Every job of a sweep folder, one row each, plus a row per planned job that never got a
    folder; ordered by job number. Columns as in `run_folder.load_run`, plus `variant`.

    A single run's folder (`python train.py` without `-m`) is read as a sweep of one job."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"no sweep folder at {sweep_dir}")
    rows = [load_run(p) for p in sorted(sweep_dir.iterdir()) if is_job_dir(p)]
    planned = planned_from_sweep_dir(sweep_dir)
    if planned is not None:
        rows += _missing_rows(planned, (r["num"] for r in rows if r["num"] is not None))
    if not rows and is_job_dir(sweep_dir):
        rows = [load_run(sweep_dir)]
    if not rows:
        raise FileNotFoundError(
            f"{sweep_dir} holds no job folders: give a sweep folder "
            "(outputs/multirun/DATE, from `python train.py -m ...`) or a run folder"
        )
    frame = pd.DataFrame(rows)
    frame = frame.sort_values("num", key=lambda s: pd.to_numeric(s).fillna(1e9), kind="stable")
    return add_variants(frame.reset_index(drop=True))


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Only the jobs that finished."""
    return runs[runs["status"] == OK]


def metric_names(runs: pd.DataFrame) -> list[str]:
    """Every `task/metric` column present, plus joint accuracy."""
    return [c for c in runs.columns if "/" in c or c == JOINT]


def task_names(runs: pd.DataFrame) -> list[str]:
    """Tasks in the order the jobs wrote them."""
    seen: dict[str, None] = {}
    for column in runs.columns:
        if "/" in column:
            seen.setdefault(column.split("/", 1)[0], None)
    return list(seen)


def variants(runs: pd.DataFrame) -> list[str]:
    """Variants with at least one finished job, in order of first appearance."""
    return list(dict.fromkeys(ok_runs(runs)["variant"]))


def _job_paths(runs: pd.DataFrame, variant: str) -> list[Path]:
    done = ok_runs(runs)
    return [Path(p) for p in done.loc[done["variant"] == variant, "path"]]


def pooled_confusion(runs: pd.DataFrame, variant: str, task: str) -> pd.DataFrame:
    """The variant's confusion matrix for `task`, summed over its seeds."""
    frames = [
        read_confusion(p, task)
        for p in _job_paths(runs, variant)
        if (p / confusion_file(task)).exists()
    ]
    if not frames:
        raise FileNotFoundError(f"no {confusion_file(task)} for variant {variant!r}")
    total = frames[0].copy()
    for frame in frames[1:]:
        total = total.add(frame, fill_value=0)
    return total.astype(int)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).fillna(0.0)


def pooled_per_class(runs: pd.DataFrame, variant: str, task: str) -> pd.DataFrame:
    """Per class TP, FP, TN, FN and support summed over the variant's seeds, with the
    precision, recall and F1 those totals imply, and the number of seeds pooled."""
    paths = [p for p in _job_paths(runs, variant) if (p / per_class_file(task)).exists()]
    if not paths:
        raise FileNotFoundError(f"no {per_class_file(task)} for variant {variant!r}")
    frames = [read_per_class(p, task) for p in paths]
    total = pd.concat(frames).groupby("class", sort=False)[list(COUNT_COLUMNS)].sum()
    total = total.reset_index()
    total["precision"] = _ratio(total["tp"], total["tp"] + total["fp"])
    total["recall"] = _ratio(total["tp"], total["tp"] + total["fn"])
    total["f1"] = _ratio(
        2 * total["precision"] * total["recall"], total["precision"] + total["recall"]
    )
    total.insert(0, "seeds", len(paths))
    return total


def pooled_predictions(runs: pd.DataFrame, variant: str) -> pd.DataFrame:
    """All test predictions of a variant's seeds, with a `seed` column."""
    done = ok_runs(runs)
    frames = [
        read_predictions(row.path).assign(seed=row.seed)
        for row in done[done["variant"] == variant].itertuples()
        if (Path(row.path) / PREDICTIONS_FILE).exists()
    ]
    if not frames:
        raise FileNotFoundError(f"no {PREDICTIONS_FILE} for variant {variant!r}")
    return pd.concat(frames, ignore_index=True)


def pooled_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Validation curves of every finished job: epoch, variant, seed and the `val/...`
    columns; empty when no job has a CSV log."""
    frames = []
    for row in ok_runs(runs).itertuples():
        curves = read_history(row.path)
        if curves is not None:
            frames.append(curves.assign(variant=row.variant, seed=row.seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
