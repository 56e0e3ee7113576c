"""Train/val/test splits stratified on the joint task labels.

Two designs:
- one split (the default): test and validation shares of the cohort, fixed by `data.seed`;
- K-fold cross-validation (`data.cv.folds=K`): the labelled samples are partitioned into K
  stratified outer folds, fold `data.cv.fold` is the test set and validation is carved out of
  the other folds. `data.cv.repeat` picks the partition with a seed of its own (not
  `data.seed`, which generates the built-in cohort), so repeated K-fold is
  `data.cv.repeat=0,1 data.cv.fold=0,1,2,3,4`. Every sample is in exactly one test fold of a
  partition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from multihead.data.labels import MISSING
from multihead.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")
PARTITION_SALT = 0x5EED_F01D  # keeps partition seeds apart from every other seed in the project
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class CrossValidation:
    """`data.cv`: K outer folds (None: one split), the test fold and the partition."""

    folds: int | None = None
    fold: int = 0
    repeat: int = 0

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> CrossValidation:
        cfg = dict(cfg or {})
        folds, fold, repeat = cfg.get("folds"), cfg.get("fold", 0), cfg.get("repeat", 0)
        if folds is not None and (
            isinstance(folds, bool) or not isinstance(folds, int) or folds < 2
        ):
            raise ConfigError(f"data.cv.folds must be null or an integer >= 2, got {folds!r}")
        if isinstance(fold, bool) or not isinstance(fold, int) or fold < 0:
            raise ConfigError(f"data.cv.fold must be an integer >= 0, got {fold!r}")
        if folds is not None and fold >= folds:
            raise ConfigError(
                f"data.cv.fold={fold} but data.cv.folds={folds}: folds are numbered 0..{folds - 1}"
            )
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 0 <= repeat <= MAX_SEED:
            raise ConfigError(
                f"data.cv.repeat must be an integer in [0, {MAX_SEED}], got {repeat!r}"
            )
        return cls(folds, fold, repeat)

    @property
    def enabled(self) -> bool:
        return self.folds is not None

    def seed(self, *more: int) -> int:
        """The partition's own seed (and, with `more`, seeds derived from it)."""
        state = np.random.SeedSequence([PARTITION_SALT, self.repeat, *more]).generate_state(1)
        return int(state[0])


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


def _class_name(class_names, task_index: int, c: int) -> str:
    names = class_names[task_index] if class_names is not None else None
    return repr(names[c]) if names else f"index {c}"


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
        shown = [f"{_class_name(class_names, task_index, c)} ({n} samples)" for c, n in rare]
        raise DataError(
            f"task {name!r}: class indices {[c for c, _ in rare]} = {', '.join(shown)} have "
            "fewer than 3 samples, too few to appear in train, val and test (at least 3 "
            "labelled samples per class are needed); merge them with "
            f"a neighbouring class (binned tasks: widen data.tasks.{name}.bins, give coarser "
            f"data.tasks.{name}.edges or fewer quantiles)"
        )


def _split(idx: np.ndarray, strata: np.ndarray, share: float, seed: int, what: str):
    """scikit-learn's stratified split; its ValueError (too many strata for too few samples)
    becomes a DataError saying what would work."""
    try:
        return train_test_split(idx, test_size=share, stratify=strata, random_state=seed)
    except ValueError as err:
        raise DataError(
            f"cannot split {len(idx)} samples into {what} stratified on {len(set(strata))} "
            f"label groups ({err}); use fewer classes (coarser bins), more samples, or larger "
            "data.val_fraction / data.test_fraction"
        ) from None


def _strata_fitting(labels: np.ndarray, task_names: list[str], n: int, share: float):
    """Strata for a split of `n` samples with `share` held out: no more strata than either
    side has samples (scikit-learn's requirement), coarser only when needed."""
    held_out = int(np.ceil(share * n))
    strata = strata_from_labels(labels, task_names, 2)
    if len(set(strata)) > min(held_out, n - held_out):
        strata = strata_from_labels(labels, task_names, max(2, int(np.ceil(1 / share))))
    return strata


def _class_counts(labels: np.ndarray, rows: np.ndarray, task: int, c: int) -> int:
    return int((labels[rows, task] == c).sum())


def _repair(
    labels: np.ndarray, splits: dict[str, np.ndarray], seed: int
) -> tuple[list[tuple[int, int, str]], dict[str, np.ndarray]]:
    """Move a sample of each class missing from a split in from a split with two or more,
    swapping it for one whose classes stay present where it leaves; split sizes are kept.
    Returns the (task, class, split) that could not be placed, and the repaired splits."""
    rng = np.random.default_rng(seed)
    splits = {k: v.copy() for k, v in splits.items()}
    failed = []
    for task in range(labels.shape[1]):
        for c in np.unique(labels[:, task][labels[:, task] != MISSING]):
            for target in SPLITS:
                if _class_counts(labels, splits[target], task, c):
                    continue
                if not _swap_in(labels, splits, task, int(c), target, rng):
                    failed.append((task, int(c), target))
    return failed, {k: np.sort(v) for k, v in splits.items()}


def _counts(labels: np.ndarray, rows: np.ndarray) -> list[Counter]:
    return [Counter(labels[rows, t].tolist()) for t in range(labels.shape[1])]


def _swap_keeps_classes(labels: np.ndarray, give: int, take: int, donor, target) -> bool:
    """After `give` and `take` change places, both splits still hold every class they held."""
    for t in range(labels.shape[1]):
        a, b = labels[give, t], labels[take, t]
        if a == b:
            continue
        if a != MISSING and donor[t][a] == 1:
            return False
        if b != MISSING and target[t][b] == 1:
            return False
    return True


def _swap_in(labels, splits, task: int, c: int, target: str, rng) -> bool:
    """One sample of class `c` into `target` in exchange for one of its own (sizes kept)."""
    target_rows = rng.permutation(splits[target])
    target_counts = _counts(labels, splits[target])
    for donor in sorted(SPLITS, key=lambda s: -_class_counts(labels, splits[s], task, c)):
        if donor == target:
            continue
        rows = splits[donor]
        donor_counts = _counts(labels, rows)
        for give in rng.permutation(rows[labels[rows, task] == c]):
            for take in target_rows:
                if _swap_keeps_classes(labels, give, take, donor_counts, target_counts):
                    splits[donor] = np.append(rows[rows != give], take)
                    splits[target] = np.append(splits[target][splits[target] != take], give)
                    return True
    return False


def outer_folds(labels: np.ndarray, task_names: list[str], cv: CrossValidation) -> np.ndarray:
    """The outer fold (0..K-1) of every sample in partition `cv.repeat`, stratified like the
    single split; the same labels and repeat give the same partition."""
    assert cv.folds is not None
    if len(labels) < 3 * cv.folds:
        raise DataError(
            f"only {len(labels)} labelled samples: {cv.folds}-fold cross-validation needs at "
            f"least {3 * cv.folds} (lower data.cv.folds)"
        )
    strata = strata_from_labels(labels, task_names, cv.folds)
    fold_of = np.empty(len(labels), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=cv.folds, shuffle=True, random_state=cv.seed())
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), strata)):
        fold_of[test] = fold
    return fold_of


def inner_folds(
    labels: np.ndarray, rows: np.ndarray, task_names: list[str], k: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """K stratified (train, validation) pairs over `rows` (a job's training and validation
    samples, never its test ones): the folds a tuning trial is scored on."""
    strata = strata_from_labels(labels[rows], task_names, k)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed % MAX_SEED)
    return [
        (np.sort(rows[train]), np.sort(rows[val]))
        for train, val in splitter.split(np.zeros(len(rows)), strata)
    ]


def cv_split(
    labels: np.ndarray,
    task_names: list[str],
    val_fraction: float,
    cv: CrossValidation,
    class_names: Sequence[Sequence[str]] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Sorted index arrays per split for test fold `cv.fold`, and every sample's outer fold."""
    assert cv.folds is not None
    _check_class_sizes(labels, task_names, class_names)
    val_share = val_fraction / (1 - 1 / cv.folds)
    if not 0 < val_share < 1:
        raise ConfigError(
            f"data.val_fraction={val_fraction} leaves nothing to train on with "
            f"data.cv.folds={cv.folds}: it must be below {1 - 1 / cv.folds:.2f}"
        )
    fold_of = outer_folds(labels, task_names, cv)
    idx = np.arange(len(labels))
    test, rest = idx[fold_of == cv.fold], idx[fold_of != cv.fold]
    rest_strata = _strata_fitting(labels[rest], task_names, len(rest), val_share)
    seed = cv.seed(cv.fold) % MAX_SEED
    train, val = _split(rest, rest_strata, val_share, seed, "train and val")
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}, fold_of


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
    Every class of every task ends up in train, val and test, or a DataError names it.
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
    rest, test = _split(idx, strata, test_fraction, seed, "train+val and test")
    val_share = val_fraction / (1 - test_fraction)
    rest_strata = _strata_fitting(labels[rest], task_names, len(rest), val_share)
    train, val = _split(rest, rest_strata, val_share, seed, "train and val")
    splits = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    failed, splits = _repair(labels, splits, seed)
    if failed:
        task, c, split = failed[0]
        count = int((labels[:, task] == c).sum())
        k = len(np.unique(labels[:, task][labels[:, task] != MISSING]))
        fraction = {"train": 1 - val_fraction - test_fraction, "val": val_fraction}.get(
            split, test_fraction
        )
        if len(splits[split]) < k:
            raise DataError(
                f"task {task_names[task]!r}: the {split} split holds {len(splits[split])} "
                f"samples of {n}, fewer than the task's {k} classes; needs at least "
                f"{int(np.ceil(k / fraction))} samples with this fraction, or fewer classes "
                f"(coarser data.tasks.{task_names[task]}.bins / edges, fewer quantiles)"
            )
        raise DataError(
            f"task {task_names[task]!r}: class {_class_name(class_names, task, c)} has "
            f"{count} labelled samples and none could be placed in the {split} split "
            f"({len(failed)} class/split pairs in all) with data.val_fraction={val_fraction}, "
            f"data.test_fraction={test_fraction}; a class needs about {min_count} labelled "
            "samples to reach every split: label more samples, merge the class with a "
            "neighbour, or use larger fractions"
        )
    return splits
