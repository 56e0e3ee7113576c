"""Turn sample-sheet columns into class indices, one column per task (-1 = missing)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from multihead.errors import DataError
from multihead.tasks import Task

MISSING = -1


def _examples(values: Sequence, limit: int = 5) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _require_column(samples: pd.DataFrame, task: Task, source: str) -> pd.Series:
    if task.column not in samples.columns:
        raise DataError(
            f"{source}: label column {task.column!r} for task {task.name!r} not found; "
            f"available columns: {list(samples.columns)}"
        )
    return samples[task.column]


def encode_binned(values: pd.Series, task: Task, source: str) -> np.ndarray:
    """Bin continuous values (years) into the task's classes; the last edge is inclusive."""
    numeric = pd.to_numeric(values, errors="coerce")
    bad = values[numeric.isna() & values.notna()]
    if len(bad):
        raise DataError(
            f"{source}: column {task.column!r} has non-numeric values for samples "
            f"{_examples([f'{i}={v}' for i, v in bad.items()])}"
        )
    edges = np.asarray(task.edges, dtype=float)
    x = numeric.to_numpy(dtype=float)
    present = ~np.isnan(x)
    outside = present & ((x < edges[0]) | (x > edges[-1]))
    if outside.any():
        ids = [f"{i}={v:g}" for i, v in zip(values.index[outside], x[outside])]
        raise DataError(
            f"{source}: column {task.column!r} has {int(outside.sum())} values outside the bins "
            f"[{edges[0]:g}, {edges[-1]:g}] (data.tasks.{task.name}.bins): {_examples(ids)}"
        )
    codes = np.full(len(x), MISSING, dtype=np.int64)
    codes[present] = np.clip(np.searchsorted(edges, x[present], side="right") - 1, 0,
                             len(edges) - 2)
    return codes


def encode_categorical(values: pd.Series, task: Task, source: str) -> np.ndarray:
    """Map values to class indices by exact (string) match with the configured classes."""
    lookup = {c: i for i, c in enumerate(task.classes)}
    as_str = values.astype("string")
    unknown = sorted(set(as_str.dropna()) - set(lookup))
    if unknown:
        raise DataError(
            f"{source}: column {task.column!r} has values not among the classes "
            f"{list(task.classes)} of task {task.name!r}: distinct unknown values {unknown[:20]}"
        )
    codes = as_str.map(lookup).astype("Int64").fillna(MISSING).to_numpy(dtype=np.int64)
    return codes


def encode_labels(samples: pd.DataFrame, tasks: Sequence[Task], source: str) -> np.ndarray:
    """Class indices, shape (n_samples, n_tasks); missing labels are refused for now."""
    columns = []
    for task in tasks:
        values = _require_column(samples, task, source)
        codes = encode_binned(values, task, source) if task.is_binned else encode_categorical(
            values, task, source)
        missing = codes == MISSING
        if missing.any():
            raise DataError(
                f"{source}: column {task.column!r} has {int(missing.sum())} missing labels: "
                f"samples {_examples(list(samples.index[missing]))}"
            )
        columns.append(codes)
    return np.stack(columns, axis=1)


def continuous_targets(samples: pd.DataFrame, tasks: Sequence[Task]) -> np.ndarray:
    """The raw value (years) behind each binned task, NaN elsewhere: for error-in-years metrics."""
    out = np.full((len(samples), len(tasks)), np.nan, dtype=np.float32)
    for j, task in enumerate(tasks):
        if task.is_binned:
            out[:, j] = pd.to_numeric(samples[task.column], errors="coerce").to_numpy(float)
    return out
