"""Top-k variance selection on an already prepared cohort (`model.top_k`).

`data.preprocess.top_k` selects while the file is read; this selects afterwards, from the
prepared cohort, so a size rule (`model=auto`) or a tuning trial can choose k without reading
the data again. The ranking is the one preprocessing uses (training variance of the values
before standardisation), and the fitted preprocessor is narrowed to the kept features, so a
checkpoint predicts on new files exactly as if the file had been read with that top_k.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from multihead.data.datamodule import PreparedCohort
from multihead.data.lazy_rows import LazyRows
from multihead.data.preprocess import Preprocessor
from multihead.data.standardize import Standardizer

#: training rows read to estimate variances when the features are not in memory
MAX_VARIANCE_ROWS = 4096


def variance_order(cohort: PreparedCohort) -> np.ndarray:
    """Feature indices by decreasing training variance (ties: the earlier feature)."""
    train = np.sort(cohort.splits["train"])
    if len(train) > MAX_VARIANCE_ROWS:
        train = train[np.linspace(0, len(train) - 1, MAX_VARIANCE_ROWS).astype(np.int64)]
    var = cohort.feature_rows(train).astype(np.float64).var(axis=0)
    if cohort.preprocessor is not None:  # back to the scale before standardisation
        var = var * cohort.preprocessor.standardizer.scale.astype(np.float64) ** 2
    return np.argsort(-var, kind="stable")


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


def select_top_variance(
    cohort: PreparedCohort, k: int | None, order: np.ndarray | None = None
) -> PreparedCohort:
    """The cohort restricted to its k largest-variance features, in their original order;
    unchanged when k is None or not below the number of features. `order` (from
    `variance_order`) saves recomputing the ranking when selecting several times."""
    if k is None or int(k) >= cohort.num_features:
        return cohort
    if order is None:
        order = variance_order(cohort)
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
