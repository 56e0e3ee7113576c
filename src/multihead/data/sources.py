"""Where a cohort comes from. Each source returns features, feature names and a sample sheet.

The last cohort loaded is kept in memory (when it is small) and handed out as a copy: the
jobs of a sweep, and the report's reference models for each data split, run in one process
on the same data and would otherwise regenerate or re-read it for every job. The key is every
`data.*` setting that loading reads, plus the size and modification time of the files named.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from omegaconf import DictConfig, OmegaConf

from multihead.data.matrix import BackedMatrix
from multihead.errors import ConfigError


@dataclass
class RawCohort:
    """Features (float32, dense, sparse or backed) with names, and a sample sheet indexed by id.

    `rows[i]` is the feature-matrix row of `samples.iloc[i]` (None: row i), so samples missing
    from the sheet are skipped without copying the matrix here.
    """

    features: np.ndarray | sp.csr_matrix | BackedMatrix
    feature_names: list[str]
    samples: pd.DataFrame
    source: str
    informative: dict[str, list[str]] = field(default_factory=dict)
    rows: np.ndarray | None = None
    report: dict = field(default_factory=dict)
    #: where feature-value problems are (the matrix file); `source` is where labels are
    matrix_source: str | None = None

    def matrix_rows(self) -> np.ndarray:
        return np.arange(len(self.samples)) if self.rows is None else self.rows


def _synthetic(cfg: DictConfig) -> RawCohort:
    from multihead.data.synthetic import make_cohort

    params = cfg.get("synthetic", {})
    cohort = make_cohort(seed=int(cfg.seed), **params)
    return RawCohort(
        cohort.features,
        list(cohort.feature_names),
        cohort.samples,
        source="synthetic cohort",
        informative=dict(cohort.informative),
    )


def _table(cfg: DictConfig) -> RawCohort:
    """`data=table`: a matrix file joined with a sample sheet on the sample id."""
    from multihead.data.sample_sheet import align_samples, read_sample_sheet
    from multihead.data.table_reader import read_matrix

    label_columns = [(spec.get("column") or name) for name, spec in cfg.tasks.items() if spec]
    dialect = {"delimiter": cfg.get("delimiter"), "decimal": cfg.get("decimal")}
    sheet, sheet_path = read_sample_sheet(
        cfg.get("samples"), cfg.get("id_column"), "data.samples", label_columns, **dialect
    )
    matrix = read_matrix(
        cfg.get("matrix"),
        "data.matrix",
        cfg.get("orientation", "samples_x_features"),
        cfg.get("matrix_index"),
        **dialect,
    )
    aligned = align_samples(
        matrix.sample_ids, sheet, cfg.get("unmatched_samples", "error"), matrix.path, sheet_path
    )
    return RawCohort(
        matrix.values,
        matrix.feature_names,
        aligned.samples,
        source=str(sheet_path),
        rows=aligned.rows,
        report={"samples": aligned.report},
        matrix_source=f"{matrix.path} (data.matrix)",
    )


def _anndata(cfg: DictConfig) -> RawCohort:
    """`data=anndata`: an .h5ad file, labels from `.obs`."""
    from multihead.data.anndata_reader import read_anndata

    adata = read_anndata(
        cfg.get("path"),
        cfg.get("layer"),
        bool(cfg.get("backed", False)),
        cfg.get("id_column"),
        cfg.get("feature_column"),
    )
    return RawCohort(
        adata.features,
        adata.feature_names,
        adata.obs,
        source=f"{adata.path} .obs",
        matrix_source=f"{adata.path} .{cfg.get('layer') or 'X'} (data.path)",
    )


SOURCES: dict[str, Callable[[DictConfig], RawCohort]] = {
    "synthetic": _synthetic,
    "table": _table,
    "anndata": _anndata,
}


#: `data.*` keys that loading never reads: they split, label or transform what was loaded
NOT_LOADING_KEYS = frozenset(
    {
        "cv",
        "val_fraction",
        "test_fraction",
        "batch_size",
        "eval_batch_size",
        "placement",
        "labels",
        "preprocess",
        "tasks",
        "name",
    }
)
FILE_KEYS = ("matrix", "samples", "path")
CACHE_MAX_BYTES = 1 << 30  # cohorts above 1 GiB are not kept: a copy per job would double them
_cache: dict[str, RawCohort] = {}


def _cache_key(cfg: DictConfig) -> str:
    loading = {k: v for k, v in OmegaConf.to_container(cfg).items() if k not in NOT_LOADING_KEYS}
    for key in FILE_KEYS:
        path = Path(str(loading.get(key))) if loading.get(key) else None
        if path is not None and path.exists():
            stat = path.stat()
            loading[f"{key}.stat"] = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return repr(sorted(loading.items(), key=lambda kv: kv[0]))


def _nbytes(features) -> int:
    if isinstance(features, np.ndarray):
        return features.nbytes
    if sp.issparse(features):
        return features.data.nbytes + features.indices.nbytes + features.indptr.nbytes
    return 0  # backed: rows stay on disk


def _copy(raw: RawCohort) -> RawCohort:
    """A copy whose matrix later steps may change in place (dense preprocessing does)."""
    out = copy.copy(raw)
    if not isinstance(raw.features, BackedMatrix):
        out.features = raw.features.copy()
    out.samples = raw.samples.copy()
    return out


def load_raw_cohort(cfg: DictConfig) -> RawCohort:
    """Dispatch on `data.source`, listing the valid choices when it is unknown."""
    source = cfg.get("source")
    if source not in SOURCES:
        raise ConfigError(f"data.source={source!r} is unknown; choose one of {sorted(SOURCES)}")
    key = _cache_key(cfg)
    if key in _cache:
        return _copy(_cache[key])
    raw = SOURCES[source](cfg)
    _cache.clear()
    if _nbytes(raw.features) <= CACHE_MAX_BYTES:
        _cache[key] = raw
        return _copy(raw)
    return raw
