"""Turn sample-sheet columns into class indices, one column per task (-1 = missing).

Policies decide what happens to real-world gaps: a missing label is an error, drops the
sample, or is masked (the sample still trains and is measured on its other tasks); a binned
value outside the edges is an error, is clipped into the end bins, or drops the sample.
Every count is reported, so nothing is silently lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from multihead.codings import normalise
from multihead.data.examples import examples
from multihead.data.plausibility import check_classes_present, check_valid_range
from multihead.errors import ConfigError, DataError
from multihead.tasks import Task

MISSING = -1
MISSING_POLICIES = ("error", "drop", "mask")
RANGE_POLICIES = ("error", "clip", "drop")


@dataclass(frozen=True)
class LabelPolicy:
    """`data.labels`: what to do with missing labels and with values outside the bins."""

    missing: str = "error"
    out_of_range: str = "error"

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> LabelPolicy:
        cfg = cfg or {}
        policy = cls(str(cfg.get("missing", "error")), str(cfg.get("out_of_range", "error")))
        for key, value, allowed in (
            ("missing", policy.missing, MISSING_POLICIES),
            ("out_of_range", policy.out_of_range, RANGE_POLICIES),
        ):
            if value not in allowed:
                raise ConfigError(f"data.labels.{key}={value!r}: choose one of {list(allowed)}")
        return policy


@dataclass
class TaskCodes:
    """One task's class indices (-1 missing) and the samples to drop for being out of range."""

    codes: np.ndarray
    task: Task
    out_of_range: np.ndarray  # bool, values outside the edges (before the policy acted)
    drop: np.ndarray  # bool, samples this task asks to drop

    @property
    def missing(self) -> np.ndarray:
        return (self.codes == MISSING) & ~self.drop


@dataclass
class EncodedLabels:
    """Labels of the kept samples, the tasks (quantile edges fitted) and what was done."""

    codes: np.ndarray  # int64 (kept samples, tasks)
    keep: np.ndarray  # bool (all samples,)
    tasks: tuple[Task, ...]
    report: dict = field(default_factory=dict)


def _where(task: Task, key: str) -> str:
    return f"column {task.column!r} (data.tasks.{task.name}.{key})"


def _require_column(samples: pd.DataFrame, task: Task, source: str) -> pd.Series:
    if task.column not in samples.columns:
        raise DataError(
            f"{source}: label column {task.column!r} for task {task.name!r} not found "
            f"(data.tasks.{task.name}.column); available columns: {list(samples.columns)}"
        )
    return samples[task.column]


def _numeric(values: pd.Series, task: Task, source: str) -> np.ndarray:
    """Floats with NaN for missing; text that is not a number is an error naming the rows."""
    numeric = pd.to_numeric(values, errors="coerce")
    bad = values[numeric.isna() & values.notna()]
    if len(bad):
        raise DataError(
            f"{source}: {_where(task, 'column')} has {len(bad)} non-numeric values for samples "
            f"{examples([f'{i}={v}' for i, v in bad.items()])}"
        )
    return numeric.to_numpy(dtype=float)


def _readable(edges: np.ndarray) -> np.ndarray:
    """Edges to about 3 significant digits ('18.7-47.4', not '18.7379-47.4381'); the ends
    move outwards only, so every value stays inside the bins."""
    digits = max(0, 2 - int(np.floor(np.log10(max(np.abs(edges).max(), 1e-12)))))
    scale = 10.0**digits
    out = np.round(edges * scale) / scale
    out[0] = np.floor(edges[0] * scale) / scale
    out[-1] = np.ceil(edges[-1] * scale) / scale
    return out


def quantile_edges(x: np.ndarray, task: Task, source: str) -> tuple[float, ...]:
    """Edges at the quantiles of the present values, from their minimum to their maximum."""
    present = x[~np.isnan(x)]
    if len(present) == 0:
        raise DataError(
            f"{source}: {_where(task, 'column')} has no values to fit "
            f"quantile:{task.quantiles} bins"
        )
    edges = _readable(np.quantile(present, np.linspace(0, 1, task.quantiles + 1)))
    repeated = [f"{a:g}" for a, b in zip(edges[:-1], edges[1:], strict=True) if not b > a]
    if repeated:
        raise DataError(
            f"{source}: data.tasks.{task.name}.bins=quantile:{task.quantiles} gives repeated "
            f"edges at {repeated} ({len(present)} values, many equal); use fewer quantiles "
            f"or explicit data.tasks.{task.name}.edges"
        )
    return tuple(float(e) for e in edges)


def encode_binned(
    values: pd.Series, task: Task, source: str, out_of_range: str = "error"
) -> TaskCodes:
    """Bin continuous values into the task's classes; the last edge is inclusive.

    Raw values become years first (missing codes -> missing, `unit` converted) and must lie
    in the task's plausible `valid_range`."""
    raw = _numeric(values, task, source)
    x = task.to_years(raw)
    check_valid_range(raw, x, task, values.index, source)
    if task.needs_edges:
        task = task.with_edges(quantile_edges(x, task, source))
    edges = np.asarray(task.edges, dtype=float)
    present = ~np.isnan(x)
    outside = present & ((x < edges[0]) | (x > edges[-1]))
    if outside.any() and out_of_range == "error":
        ids = [f"{i}={v:g}" for i, v in zip(values.index[outside], x[outside], strict=True)]
        raise DataError(
            f"{source}: {_where(task, 'column')} has {int(outside.sum())} values outside the "
            f"bins [{edges[0]:g}, {edges[-1]:g}] (data.tasks.{task.name}.bins/edges): "
            f"{examples(ids)}; or set data.labels.out_of_range=clip or drop"
        )
    codes = np.full(len(x), MISSING, dtype=np.int64)
    codes[present] = task.bin_of(x[present])
    drop = outside if out_of_range == "drop" else np.zeros(len(x), dtype=bool)
    return TaskCodes(codes, task, outside, drop)


def _lookup(task: Task) -> dict[str, int | None]:
    """Normalised text -> class index (None: a missing label), classes first, then codes."""
    index = {c: i for i, c in enumerate(task.classes)}
    lookup: dict[str, int | None] = {normalise(c): i for c, i in index.items()}
    for raw, target in task.codes:
        lookup.setdefault(raw, index[target] if target else None)
    return lookup


def encode_categorical(values: pd.Series, task: Task, source: str) -> TaskCodes:
    """Map values to class indices; case/spaces ignored, the task's `codes` applied."""
    lookup = _lookup(task)
    present = values.notna().to_numpy()
    keys = [normalise(v) if p else "" for v, p in zip(values.tolist(), present, strict=True)]
    unknown = sorted(
        {
            str(v)
            for v, k, p in zip(values.tolist(), keys, present, strict=True)
            if p and k not in lookup
        }
    )
    if unknown:
        raise DataError(
            f"{source}: {_where(task, 'classes')} has values that are not among the classes "
            f"{list(task.classes)} of task {task.name!r}: distinct unknown values "
            f"{unknown[:20]}{' ...' if len(unknown) > 20 else ''}; map them with "
            f"data.tasks.{task.name}.codes={{value: class}}"
        )
    codes = np.array(
        [
            MISSING if not p or lookup[k] is None else lookup[k]
            for k, p in zip(keys, present, strict=True)
        ],
        dtype=np.int64,
    )
    none = np.zeros(len(codes), dtype=bool)
    return TaskCodes(codes, task, none, none.copy())


def encode_task(
    samples: pd.DataFrame, task: Task, source: str, out_of_range: str = "error"
) -> TaskCodes:
    values = _require_column(samples, task, source)
    if task.is_binned or task.needs_edges:
        return encode_binned(values, task, source, out_of_range)
    return encode_categorical(values, task, source)


def _missing_error(samples: pd.DataFrame, coded: TaskCodes, source: str) -> DataError:
    task, missing = coded.task, coded.missing
    return DataError(
        f"{source}: {_where(task, 'column')} has {int(missing.sum())} missing labels: samples "
        f"{examples(list(samples.index[missing]))}; set data.labels.missing=drop (leave them "
        f"out) or mask (keep them for their other tasks)"
    )


def _task_report(coded: TaskCodes, policy: LabelPolicy, kept: np.ndarray) -> dict[str, int]:
    report = {
        "labelled": int(((coded.codes != MISSING) & kept).sum()),
        "missing": int(coded.missing.sum()),
    }
    if coded.out_of_range.any():
        report[f"out_of_range_{policy.out_of_range}"] = int(coded.out_of_range.sum())
    return report


def label_samples(
    samples: pd.DataFrame, tasks: Sequence[Task], source: str, policy: LabelPolicy = LabelPolicy()
) -> EncodedLabels:
    """Encode every task, then apply the missing-label policy; counts go in the report."""
    coded = [encode_task(samples, t, source, policy.out_of_range) for t in tasks]
    drop = np.zeros(len(samples), dtype=bool)
    for c in coded:
        drop |= c.drop
    missing = np.stack([c.missing for c in coded], axis=1)
    if policy.missing == "error":
        for c in coded:
            if c.missing.any():
                raise _missing_error(samples, c, source)
    elif policy.missing == "drop":
        drop |= missing.any(axis=1)
    else:  # mask: keep a sample while it has at least one label to learn from
        drop |= missing.all(axis=1)
    keep = ~drop
    report = {c.task.name: _task_report(c, policy, keep) for c in coded}
    report["samples"] = {
        "in": int(len(samples)),
        "kept": int(keep.sum()),
        "dropped": int(drop.sum()),
        "missing_policy": policy.missing,
    }
    codes = np.stack([c.codes for c in coded], axis=1)[keep]
    check_classes_present(codes, [c.task for c in coded], samples[keep], source)
    return EncodedLabels(codes, keep, tuple(c.task for c in coded), report)


def continuous_targets(samples: pd.DataFrame, tasks: Sequence[Task]) -> np.ndarray:
    """The value in years behind each binned task, NaN elsewhere: for error-in-years metrics."""
    out = np.full((len(samples), len(tasks)), np.nan, dtype=np.float32)
    for j, task in enumerate(tasks):
        if task.is_binned:
            raw = pd.to_numeric(samples[task.column], errors="coerce").to_numpy(float)
            out[:, j] = task.to_years(raw)
    return out
