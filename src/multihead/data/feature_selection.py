"""Top-k feature selection on an already prepared cohort (`model.top_k`, `model.select`).

`data.preprocess.top_k` selects by variance while the file is read; this selects afterwards,
from the prepared cohort, so a size rule (`model=auto`) or a tuning trial can choose k and the
ranking without reading the data again. Two rankings (`model.select`):

- `variance`: training variance of the values before standardisation, the ranking
  preprocessing uses; it needs no labels, and keeps strong, sample-varying signals
  (sex-chromosome genes) but not the many weak ones an age clock is built from.
- `association`: per task, the univariate F test of each feature on the training samples
  labelled for that task (scikit-learn's `f_regression` on the raw values behind a binned
  task, years for age, `f_classif` on the classes otherwise: the screening step of "sure
  independence screening" and of most published clocks); features ranked by their smallest
  p-value over the tasks. Only training rows are read, so a validation or test label never
  decides which features a model sees.

The fitted preprocessor is narrowed to the kept features, so a checkpoint predicts on new
files exactly as if the file had been read with those features.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import torch
from sklearn.feature_selection import f_classif, f_regression

from multihead.data.datamodule import PreparedCohort
from multihead.data.labels import MISSING
from multihead.data.lazy_rows import LazyRows
from multihead.data.preprocess import Preprocessor
from multihead.data.standardize import Standardizer
from multihead.errors import ConfigError

#: training rows read to rank features when there are more (evenly spaced, deterministic)
MAX_RANKING_ROWS = 4096
VARIANCE = "variance"
ASSOCIATION = "association"
#: `model.select` values
SELECTIONS = (VARIANCE, ASSOCIATION)


def _ranking_rows(rows: np.ndarray) -> np.ndarray:
    rows = np.sort(rows)
    if len(rows) > MAX_RANKING_ROWS:
        rows = rows[np.linspace(0, len(rows) - 1, MAX_RANKING_ROWS).astype(np.int64)]
    return rows


def variance_order(cohort: PreparedCohort) -> np.ndarray:
    """Feature indices by decreasing training variance (ties: the earlier feature)."""
    train = _ranking_rows(cohort.splits["train"])
    var = cohort.feature_rows(train).astype(np.float64).var(axis=0)
    if cohort.preprocessor is not None:  # back to the scale before standardisation
        var = var * cohort.preprocessor.standardizer.scale.astype(np.float64) ** 2
    return np.argsort(-var, kind="stable")


def task_scores(
    cohort: PreparedCohort, task: int, x: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(F statistic, p-value) of every feature for one task on `rows` (x = those rows'
    inputs): on the raw values (years) where the task has them, else on the classes; NaN where
    a feature is constant among the labelled rows, and everywhere when fewer than two classes
    or values occur."""
    values = cohort.values[rows, task].numpy().astype(np.float64)
    codes = cohort.labels[rows, task].numpy()
    with warnings.catch_warnings():  # constant features: scikit-learn warns and returns NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        has_value = np.isfinite(values)
        if has_value.sum() > 2 and np.unique(values[has_value]).size > 1:
            return f_regression(x[has_value], values[has_value])
        labelled = codes != MISSING
        if np.unique(codes[labelled]).size < 2:
            return np.full(x.shape[1], np.nan), np.full(x.shape[1], np.nan)
        return f_classif(x[labelled], codes[labelled])


def association_order(cohort: PreparedCohort) -> np.ndarray:
    """Feature indices by their smallest p-value over the tasks (the tasks' F tests put on
    one scale: a task with ten strong features takes ten places, one with three hundred weak
    ones the next three hundred); ties, such as p-values that underflow to 0, by the feature's
    best place in any task's F ranking, then by index. Features no task can rank come last."""
    train = _ranking_rows(cohort.splits["train"])
    x = cohort.feature_rows(train).astype(np.float64)
    p_min = np.ones(cohort.num_features)
    best_place = np.full(cohort.num_features, cohort.num_features)
    for t in range(len(cohort.tasks)):
        scores, p_values = task_scores(cohort, t, x, train)
        ranked = np.flatnonzero(np.isfinite(scores))
        ranked = ranked[np.argsort(-scores[ranked], kind="stable")]
        best_place[ranked] = np.minimum(best_place[ranked], np.arange(len(ranked)))
        p_min = np.fmin(p_min, np.where(np.isfinite(scores), p_values, 1.0))
    return np.lexsort((np.arange(cohort.num_features), best_place, p_min))


def model_selection(model_cfg) -> str:
    """The ranking a model config asks for (`model.select`; absent, as in a config saved
    before the option existed: variance)."""
    return str((model_cfg or {}).get("select") or VARIANCE)


def check_selection(select: object) -> str:
    if select not in SELECTIONS:
        raise ConfigError(f"model.select must be one of {list(SELECTIONS)}, got {select!r}")
    return str(select)


class FeatureRanking:
    """Rankings computed once per (method, training rows) and reused: tuning selects for
    every trial, and each fold of a trial has its own training rows (so its own ranking:
    a fold's validation labels never rank features)."""

    def __init__(self) -> None:
        self._orders: dict[tuple[str, bytes], np.ndarray] = {}

    def order(self, cohort: PreparedCohort, select: str) -> np.ndarray:
        key = (check_selection(select), np.sort(cohort.splits["train"]).tobytes())
        if key not in self._orders:
            rank = variance_order if select == VARIANCE else association_order
            self._orders[key] = rank(cohort)
        return self._orders[key]


def _narrowed(pre: Preprocessor, idx: np.ndarray) -> Preprocessor:
    report = dict(pre.report)
    report["kept"] = len(idx)
    report["dropped_top_k"] = int(report.get("dropped_top_k", 0)) + len(pre.keep) - len(idx)
    return Preprocessor(
        pre.feature_names_in,
        pre.keep[idx],
        pre.log1p,
        pre.missing_values,
        None if pre.fill is None else pre.fill[idx],
        Standardizer(pre.standardizer.mean[idx], pre.standardizer.scale[idx]),
        report,
    )


def select_top_k(
    cohort: PreparedCohort,
    k: int | None,
    select: str = VARIANCE,
    ranking: FeatureRanking | None = None,
) -> PreparedCohort:
    """The cohort restricted to the k first features of the `select` ranking, in their
    original order; unchanged when k is None or not below the number of features. `ranking`
    keeps rankings for later calls."""
    if k is None or int(k) >= cohort.num_features:
        return cohort
    order = (ranking or FeatureRanking()).order(cohort, select)
    idx = np.sort(order[: int(k)])
    pre = None if cohort.preprocessor is None else _narrowed(cohort.preprocessor, idx)
    if isinstance(cohort.features, LazyRows):
        features = LazyRows(cohort.features.matrix, pre)
    else:
        features = cohort.features[:, torch.from_numpy(idx)].contiguous()
    report = dict(cohort.report)
    if pre is not None:
        report["features"] = pre.report
    return dataclasses.replace(
        cohort,
        features=features,
        feature_names=[cohort.feature_names[i] for i in idx],
        preprocessor=pre,
        report=report,
    )
