"""Is a label column believable? Ages in a plausible range, and more than one class per task.

Exports hide surprises in label columns: missing-value codes (-9, 999) among real ages, ages
in days (TCGA's `days_to_birth` is a negative day count) or months, and a cohort in which
every sample has the same sex. Each of them would train and report numbers without a word;
here they stop the run with the samples, the values and the option that fixes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from multihead.data.examples import examples
from multihead.errors import DataError
from multihead.tasks import UNITS, Task

#: values data-entry systems use for "missing" (SPSS, REDCap, registries); only named in
#: messages when they fall outside the plausible range, so a real age of 99 stays an age
_REPEATED_DIGITS = {str(d) * k for d in (7, 8, 9) for k in range(1, 5)}


def looks_like_sentinel(value: float) -> bool:
    """-9, -99, 99, 999, 888, 9999, -1: typical missing-value codes."""
    if not np.isfinite(value) or value != int(value):
        return False
    digits = str(abs(int(value)))
    return digits in _REPEATED_DIGITS or value in (-1, -2)


def _unit_hint(raw: np.ndarray, task: Task) -> str:
    """Which unit would put every value inside the range, if one does and almost none is
    inside it now (one implausible age among many is a typo, not a unit)."""
    low, high = task.valid_range
    present = raw[~np.isnan(raw)]
    now = task.to_years(present)
    if len(present) and ((now >= low) & (now <= high)).mean() > 0.1:
        return ""
    for unit, per_year in UNITS.items():
        if unit == task.unit or not len(present):
            continue
        years = present / per_year
        if years.min() >= max(low, 0) and years.max() <= high:
            return (
                f"; all values fit as {unit} (e.g. {present[0]:g} -> {years[0]:.1f} years): "
                f"set data.tasks.{task.name}.unit={unit}"
            )
    return ""


def check_valid_range(raw: np.ndarray, years: np.ndarray, task: Task, index, source: str) -> None:
    """Values (converted to years) outside `valid_range` are an error naming the samples,
    the sentinel-like values among them and the unit that would fit."""
    if task.valid_range is None:
        return
    low, high = task.valid_range
    outside = ~np.isnan(years) & ((years < low) | (years > high))
    if not outside.any():
        return
    where = f"column {task.column!r} (data.tasks.{task.name})"
    shown = [f"{i}={v:g}" for i, v in zip(index[outside], raw[outside], strict=True)]
    values, counts = np.unique(raw[outside], return_counts=True)
    sentinels = [(v, n) for v, n in zip(values, counts, strict=True) if looks_like_sentinel(v)]
    hint = ""
    if sentinels:
        listed = ", ".join(f"{v:g} ({n} samples)" for v, n in sentinels)
        codes = ", ".join(f"{v:g}" for v, _ in sentinels)
        hint = (
            f"; {listed} look like missing-value codes: declare them with "
            f"data.tasks.{task.name}.missing_codes=[{codes}]"
        )
    hint += _unit_hint(raw, task)
    unit = "" if task.unit == "years" else f" (data.tasks.{task.name}.unit={task.unit})"
    raise DataError(
        f"{source}: {where} has {int(outside.sum())} implausible values outside "
        f"data.tasks.{task.name}.valid_range=[{low:g}, {high:g}] years{unit}: "
        f"{examples(shown)}{hint}; or widen the range (null turns the check off)"
    )


def check_classes_present(
    codes: np.ndarray, tasks: Sequence[Task], samples: pd.DataFrame, source: str
) -> None:
    """Every task needs labelled samples of at least two classes to be learned or measured."""
    for j, task in enumerate(tasks):
        column = codes[:, j]
        labelled = column[column >= 0]
        counts = np.bincount(labelled, minlength=max(task.num_classes, 1))
        present = np.flatnonzero(counts)
        if len(present) >= 2:
            continue
        shown = ", ".join(f"{c!r}: {int(n)}" for c, n in zip(task.classes, counts, strict=True))
        what = (
            f"all {len(labelled)} labelled samples are {task.classes[present[0]]!r}"
            if len(present)
            else "no sample has a label"
        )
        raise DataError(
            f"{source}: task {task.name!r} (column {task.column!r}) has a single class: "
            f"{what} (counts {{{shown}}}, {len(samples)} samples kept); a one-class task can "
            f"be neither learned nor measured: check the column and data.tasks.{task.name}, "
            f"or remove the task with ~data.tasks.{task.name}"
        )
