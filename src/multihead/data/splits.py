"""Train/val/test splits stratified on the joint task labels, fixed by the data seed alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from multihead.data.labels import MISSING
from multihead.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


def strata_from_labels(labels: np.ndarray, task_names: list[str], min_count: int) -> np.ndarray:
    """Joint label strata; strata too small to split fall back to the first task's label.

    Rare (age bin, sex) combinations would otherwise make a stratified split impossible;
    falling back keeps the split stratified on what the data can support.
    """
    joint = np.array(["|".join(map(str, row)) for row in labels], dtype=object)
    counts = Counter(joint)
    coarse = np.array([f"{task_names[0]}={row[0]}" for row in labels], dtype=object)
    strata = np.where([counts[s] >= min_count for s in joint], joint, coarse)
    counts = Counter(strata)
    strata = np.where([counts[s] >= min_count for s in strata], strata, "rare")
    counts = Counter(strata)
    if 0 < counts["rare"] < min_count:  # too few even together: join the largest stratum
        strata[strata == "rare"] = counts.most_common(1)[0][0]
    return strata


def _check_class_sizes(
    labels: np.ndarray, task_names: list[str], class_names: Sequence[Sequence[str]] | None
) -> None:
    """Every class of every task needs 3 labelled samples to reach train, val and test."""
    for task_index, name in enumerate(task_names):
        column = labels[:, task_index]
        classes, counts = np.unique(column[column != MISSING], return_counts=True)
        rare = [(int(c), int(n)) for c, n in zip(classes, counts, strict=True) if n < 3]
        if not rare:
            continue
        names = class_names[task_index] if class_names is not None else None
        shown = [
            f"{names[c]!r} ({n} samples)" if names else f"index {c} ({n} samples)" for c, n in rare
        ]
        raise DataError(
            f"task {name!r}: class indices {[c for c, _ in rare]} = {', '.join(shown)} have "
            "fewer than 3 samples, too few to appear in train, val and test; merge them with "
            f"a neighbouring class (binned tasks: widen data.tasks.{name}.bins, give coarser "
            f"data.tasks.{name}.edges or fewer quantiles)"
        )


def stratified_split(
    labels: np.ndarray,
    task_names: list[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    class_names: Sequence[Sequence[str]] | None = None,
) -> dict[str, np.ndarray]:
    """Sorted index arrays per split. Same labels + seed -> same split, whatever the model seed.

    Missing labels (-1) are a stratum of their own, so masked samples spread over the splits.
    """
    n = len(labels)
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            "data.val_fraction and data.test_fraction must be in (0, 1) and sum below 1, "
            f"got {val_fraction} and {test_fraction}"
        )
    min_count = max(3, int(np.ceil(1 / min(val_fraction, test_fraction))))
    if n < 3 * min_count:
        raise DataError(
            f"only {n} samples: a stratified train/val/test split with "
            f"data.val_fraction={val_fraction}, data.test_fraction={test_fraction} needs at "
            f"least {3 * min_count}"
        )
    _check_class_sizes(labels, task_names, class_names)
    strata = strata_from_labels(labels, task_names, min_count)
    idx = np.arange(n)
    rest, test = train_test_split(idx, test_size=test_fraction, stratify=strata, random_state=seed)
    val_share = val_fraction / (1 - test_fraction)
    rest_strata = strata_from_labels(labels[rest], task_names, 2)
    train, val = train_test_split(
        rest, test_size=val_share, stratify=rest_strata, random_state=seed
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
