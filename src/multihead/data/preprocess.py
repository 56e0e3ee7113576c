"""Feature preprocessing fitted on the training split only, and saved with the model.

Order: log1p (optional, for counts) -> missing values (error, impute the training median, or
drop features missing in more than `max_missing` of training samples and impute the rest) ->
drop features constant in training -> keep the top-k by training variance -> standardise
with the training mean and standard deviation. The fitted state is plain tensors and lists,
so it travels inside a Lightning checkpoint that loads with `weights_only=True`, and the
same transform is applied at prediction time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from multihead.data.examples import examples
from multihead.data.inplace import map_rows_inplace
from multihead.data.matrix import DenseMatrix, FeatureMatrix, SparseMatrix
from multihead.data.standardize import Standardizer
from multihead.errors import ConfigError, DataError

MISSING_VALUE_POLICIES = ("error", "impute", "drop")


@dataclass(frozen=True)
class PreprocessSettings:
    """`data.preprocess`; the defaults standardise only (what the built-in cohort needs)."""

    drop_constant: bool = False
    top_k: int | None = None
    missing_values: str = "error"
    max_missing: float = 0.1
    log1p: bool = False
    standardize: bool = True

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> PreprocessSettings:
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(
                f"data.preprocess: unknown keys {unknown}; "
                f"known: {sorted(cls.__dataclass_fields__)}"
            )
        settings = cls(**{k: v for k, v in cfg.items()})
        if settings.missing_values not in MISSING_VALUE_POLICIES:
            raise ConfigError(
                f"data.preprocess.missing_values={settings.missing_values!r}: "
                f"choose one of {list(MISSING_VALUE_POLICIES)}"
            )
        if settings.top_k is not None and (
            not isinstance(settings.top_k, int) or settings.top_k < 1
        ):
            raise ConfigError(
                f"data.preprocess.top_k must be null or an integer >= 1, got {settings.top_k!r}"
            )
        if not 0 <= float(settings.max_missing) <= 1:
            raise ConfigError(
                f"data.preprocess.max_missing must be in [0, 1], got {settings.max_missing!r}"
            )
        return settings


@dataclass
class _Where:
    """Names for error messages: which file, which samples, which features."""

    source: str
    sample_ids: Sequence[str]
    feature_names: Sequence[str]

    def cells(self, cells: list[tuple[int, int, float]]) -> str:
        return examples(
            [
                f"sample {self.sample_ids[r]!r} / feature {self.feature_names[c]!r} = {v}"
                for r, c, v in cells
            ]
        )


class _Scan:
    """One pass over all rows: missing counts everywhere, sums/min/max over training rows.

    Sums are of (x - shift) in float64, shift a per-feature reference value, so the
    variance keeps its precision for features with a large mean.
    """

    def __init__(self, n_features: int) -> None:
        self.missing_all = np.zeros(n_features, dtype=np.int64)
        self.count = np.zeros(n_features, dtype=np.int64)
        self.total = np.zeros(n_features)
        self.total_sq = np.zeros(n_features)
        self.minimum = np.full(n_features, np.inf)
        self.maximum = np.full(n_features, -np.inf)
        self.shift: np.ndarray | None = None
        self.bad_cells: list[tuple[int, int, float]] = []
        self.below_minus_one: list[tuple[int, int, float]] = []

    def add(self, start: int, block: np.ndarray, train: np.ndarray, log1p: bool) -> None:
        rows = train[start : start + len(block)]
        if not log1p and np.isfinite(block).all():  # the common case, in fewer passes
            if rows.any():
                self._add_clean(block[rows])
            return
        x = block.astype(np.float64)
        finite = np.isfinite(x)
        if log1p:
            low = finite & (x <= -1)
            if low.any() and len(self.below_minus_one) < 5:
                self._remember(self.below_minus_one, start, x, low)
            np.log1p(x, out=x, where=finite & ~low)
            x[low] = np.nan
            finite &= ~low
        missing = ~finite
        self.missing_all += missing.sum(axis=0)
        if missing.any() and len(self.bad_cells) < 5:
            self._remember(self.bad_cells, start, block, missing)
        if rows.any():
            if self.shift is None:
                self.shift = self._reference(x[rows], finite[rows])
            self._add_training(x[rows], finite[rows])

    @staticmethod
    def _reference(x: np.ndarray, finite: np.ndarray) -> np.ndarray:
        """Per feature, its first finite training value (0 if none in this chunk): a feature
        constant in training then sums exact zeros and gets a variance of exactly 0."""
        first = np.argmax(finite, axis=0)
        values = x[first, np.arange(x.shape[1])]
        return np.where(finite.any(axis=0), values, 0.0)

    def add_sparse(self, start: int, chunk: sp.csr_matrix, train: np.ndarray, log1p: bool) -> None:
        """A CSR chunk in O(non-zeros): implicit zeros count without being materialised.
        Chunks holding NaN/inf or log1p-invalid values take the dense path (for messages)."""
        if not np.isfinite(chunk.data).all() or (log1p and (chunk.data <= -1).any()):
            self.add(start, chunk.toarray(), train, log1p)
            return
        rows = train[start : start + chunk.shape[0]]
        if not rows.any():
            return
        sub = chunk[np.flatnonzero(rows)]
        values = sub.data.astype(np.float64)
        if log1p:
            np.log1p(values, out=values)
        n_features, m = len(self.count), int(rows.sum())
        if self.shift is None:  # the first training row, as on the dense path
            first = sub[0].toarray().ravel().astype(np.float64)
            self.shift = np.log1p(first) if log1p else first
        # centred like the dense path: stored values minus the shift, and each implicit
        # zero contributing -shift, so no large sums cancel
        centred = values - self.shift[sub.indices]
        zeros = m - np.bincount(sub.indices, minlength=n_features)
        self.count += m
        self.total += (
            np.bincount(sub.indices, weights=centred, minlength=n_features) - zeros * self.shift
        )
        self.total_sq += (
            np.bincount(sub.indices, weights=centred * centred, minlength=n_features)
            + zeros * self.shift**2
        )
        low, high = np.full(n_features, np.inf), np.full(n_features, -np.inf)
        np.minimum.at(low, sub.indices, values)
        np.maximum.at(high, sub.indices, values)
        has_zero = zeros > 0
        self.minimum = np.minimum(self.minimum, np.where(has_zero, np.minimum(low, 0), low))
        self.maximum = np.maximum(self.maximum, np.where(has_zero, np.maximum(high, 0), high))

    def _add_clean(self, x: np.ndarray) -> None:
        """Training rows without a missing value: no masks needed."""
        if self.shift is None:
            self.shift = x[0].astype(np.float64)
        centred = x.astype(np.float64)
        centred -= self.shift
        self.count += len(x)
        self.total += centred.sum(axis=0)
        np.square(centred, out=centred)
        self.total_sq += centred.sum(axis=0)
        self.minimum = np.minimum(self.minimum, x.min(axis=0))
        self.maximum = np.maximum(self.maximum, x.max(axis=0))

    def _add_training(self, x: np.ndarray, finite: np.ndarray) -> None:
        centred = np.where(finite, x - self.shift, 0.0)
        self.count += finite.sum(axis=0)
        self.total += centred.sum(axis=0)
        self.total_sq += np.square(centred).sum(axis=0)
        self.minimum = np.minimum(self.minimum, np.where(finite, x, np.inf).min(axis=0))
        self.maximum = np.maximum(self.maximum, np.where(finite, x, -np.inf).max(axis=0))

    @staticmethod
    def _remember(into: list, start: int, values: np.ndarray, mask: np.ndarray) -> None:
        rows, cols = np.nonzero(mask)
        for r, c in zip(rows[: 5 - len(into)], cols[: 5 - len(into)], strict=True):
            into.append((start + int(r), int(c), float(values[r, c])))


class Preprocessor:
    """The fitted transform: input features (by name) -> model inputs."""

    def __init__(
        self,
        feature_names: Sequence[str],
        keep: np.ndarray,
        log1p: bool,
        missing_values: str,
        fill: np.ndarray | None,
        standardizer: Standardizer,
        report: dict | None = None,
    ) -> None:
        self.feature_names_in = list(feature_names)
        self.keep = np.asarray(keep, dtype=np.int64)
        self.log1p = bool(log1p)
        self.missing_values = missing_values
        self.fill = fill
        self.standardizer = standardizer
        self.report = report or {}

    @property
    def feature_names(self) -> list[str]:
        """The model's inputs, in order."""
        return [self.feature_names_in[i] for i in self.keep]

    @property
    def keeps_all(self) -> bool:
        return len(self.keep) == len(self.feature_names_in)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        matrix: FeatureMatrix,
        train_rows: np.ndarray,
        feature_names: Sequence[str],
        sample_ids: Sequence[str],
        settings: PreprocessSettings,
        source: str,
    ) -> Preprocessor:
        """Statistics from `train_rows` only; NaN/inf and log1p domain are checked on all rows."""
        n, p = matrix.shape
        where = _Where(source, sample_ids, feature_names)
        train = np.zeros(n, dtype=bool)
        train[train_rows] = True
        scan = _Scan(p)
        if isinstance(matrix, SparseMatrix):
            for start, chunk in matrix.sparse_chunks():
                scan.add_sparse(start, chunk, train, settings.log1p)
        else:
            for start, block in matrix.chunks():
                scan.add(start, block, train, settings.log1p)
        if scan.below_minus_one:
            raise DataError(
                f"{source}: data.preprocess.log1p=true needs values > -1 (counts); "
                f"found {where.cells(scan.below_minus_one)}"
            )
        n_train = int(train.sum())
        dropped_missing = cls._check_missing(scan, n, n_train, settings, where)
        fill = None
        if settings.missing_values != "error":
            fill = _training_medians(matrix, np.flatnonzero(train), settings.log1p, scan)
            _add_imputed(scan, fill, n_train)
        mean = scan.shift + scan.total / n_train
        var = np.maximum(scan.total_sq / n_train - (scan.total / n_train) ** 2, 0.0)
        keep = ~dropped_missing
        constant = (
            keep & (scan.maximum <= scan.minimum)
            if settings.drop_constant
            else np.zeros(p, dtype=bool)
        )
        keep &= ~constant
        _check_not_all_constant(~dropped_missing, scan, n_train, where)
        keep, top_k_dropped = _top_k(keep, var, settings.top_k)
        if not keep.any():
            raise DataError(
                f"{source}: no feature is left after preprocessing "
                f"({int(dropped_missing.sum())} dropped for missing values, "
                f"{int(constant.sum())} constant in training)"
            )
        idx = np.flatnonzero(keep)
        standardizer = _standardizer(mean[idx], var[idx], settings.standardize)
        report = {
            "input": p,
            "kept": len(idx),
            "dropped_missing": int(dropped_missing.sum()),
            "dropped_constant": int(constant.sum()),
            "dropped_top_k": top_k_dropped,
            "missing_values_filled": int(scan.missing_all[idx].sum()),
            "log1p": settings.log1p,
        }
        return cls(
            feature_names,
            idx,
            settings.log1p,
            settings.missing_values,
            None if fill is None else fill[idx].astype(np.float32),
            standardizer,
            report,
        )

    @staticmethod
    def _check_missing(
        scan: _Scan, n: int, n_train: int, settings: PreprocessSettings, where: _Where
    ) -> np.ndarray:
        """Refuse what the policy cannot handle; return the features dropped for missingness."""
        names = where.feature_names
        empty = np.flatnonzero(scan.missing_all == n)
        train_fraction = 1 - scan.count / max(n_train, 1)
        dropped = (
            (train_fraction > settings.max_missing)
            if settings.missing_values == "drop"
            else np.zeros(len(names), dtype=bool)
        )
        empty = empty[~dropped[empty]]
        if len(empty):
            raise DataError(
                f"{where.source}: {len(empty)} features have no value in any sample (all NaN): "
                f"{examples([names[i] for i in empty])}; remove them, or set "
                "data.preprocess.missing_values=drop"
            )
        if settings.missing_values == "error" and scan.missing_all.any():
            bad = np.flatnonzero(scan.missing_all)
            raise DataError(
                f"{where.source}: {int(scan.missing_all.sum())} NaN or inf values in "
                f"{len(bad)} features, e.g. {where.cells(scan.bad_cells)}; features "
                f"{examples([names[i] for i in bad])}. Set data.preprocess.missing_values="
                "impute (training median) or drop (features above data.preprocess.max_missing)"
            )
        untrained = np.flatnonzero((scan.count == 0) & ~dropped)
        if len(untrained):
            raise DataError(
                f"{where.source}: {len(untrained)} features have no value in any training "
                f"sample, so nothing to impute from: {examples([names[i] for i in untrained])}; "
                "set data.preprocess.missing_values=drop"
            )
        return dropped

    # ------------------------------------------------------------------ applying
    def select(self, block: np.ndarray) -> np.ndarray:
        """The kept input columns, as a new float32 array."""
        if self.keeps_all:
            return np.array(block, dtype=np.float32, copy=True)
        return np.asarray(block[:, self.keep], dtype=np.float32)

    def apply_(self, x: np.ndarray) -> np.ndarray:
        """log1p, fill, standardise, in place on the kept columns."""
        if self.log1p:
            np.log1p(x, out=x)
        if self.fill is not None:
            bad = ~np.isfinite(x)
            if bad.any():
                x[bad] = self.fill[np.nonzero(bad)[1]]
        return self.standardizer.transform_(x)

    def transform(self, block: np.ndarray) -> np.ndarray:
        """Raw rows (every input feature, training order) -> model inputs, a new array."""
        return self.apply_(self.select(block))

    def transform_dense_inplace(self, matrix: DenseMatrix) -> np.ndarray:
        """The whole dense matrix transformed in its own buffer (no second copy)."""
        if self.keeps_all:
            return map_rows_inplace(matrix.values, self.apply_, len(self.keep))
        return map_rows_inplace(matrix.values, self.transform, len(self.keep))

    def check_new(self, selected: np.ndarray, sample_ids: Sequence[str], source: str) -> None:
        """New samples (kept columns, raw values) must be valid under the fitted policy."""
        where = _Where(source, sample_ids, self.feature_names)
        if self.log1p:
            low = np.argwhere(selected <= -1)
            if len(low):
                raise DataError(
                    f"{source}: the model applies log1p and needs values > -1; "
                    f"found {where.cells([(r, c, selected[r, c]) for r, c in low])}"
                )
        if self.fill is None:
            bad = np.argwhere(~np.isfinite(selected))
            if len(bad):
                raise DataError(
                    f"{source}: NaN or inf values, which the model was trained to "
                    f"refuse (missing_values=error): "
                    f"{where.cells([(r, c, selected[r, c]) for r, c in bad])}"
                )

    # ------------------------------------------------------------------ saving
    def state_dict(self) -> dict:
        """Plain lists and tensors only, so checkpoints load with `weights_only=True`."""
        return {
            "feature_names": list(self.feature_names_in),
            "keep": torch.from_numpy(self.keep.copy()),
            "log1p": self.log1p,
            "missing_values": self.missing_values,
            "fill": None if self.fill is None else torch.from_numpy(self.fill.copy()),
            "mean": torch.from_numpy(self.standardizer.mean.copy()),
            "scale": torch.from_numpy(self.standardizer.scale.copy()),
            "report": dict(self.report),
        }

    @classmethod
    def from_state_dict(cls, state: Mapping) -> Preprocessor:
        fill = state["fill"]
        return cls(
            state["feature_names"],
            state["keep"].numpy(),
            state["log1p"],
            state["missing_values"],
            None if fill is None else fill.numpy(),
            Standardizer(state["mean"].numpy(), state["scale"].numpy()),
            dict(state.get("report", {})),
        )


def _check_not_all_constant(candidates: np.ndarray, scan: _Scan, n_train: int, where) -> None:
    """A matrix whose every feature is constant in training carries no signal: most often
    the wrong file, a placeholder export or a column of ids read as features."""
    if not candidates.any() or (scan.maximum[candidates] > scan.minimum[candidates]).any():
        return
    first = int(np.flatnonzero(candidates)[0])
    value = scan.minimum[first]
    raise DataError(
        f"{where.source}: every one of the {int(candidates.sum())} features is constant "
        f"across the {n_train} training samples (e.g. {where.feature_names[first]!r} = {value:g}), "
        "so there is nothing to learn from; check that this is the right matrix file and "
        "orientation (data.orientation)"
    )


def _training_medians(
    matrix: FeatureMatrix, train_rows: np.ndarray, log1p: bool, scan: _Scan
) -> np.ndarray:
    """Median of the finite training values of every feature, read in column blocks."""
    n, p = matrix.shape
    medians = np.zeros(p)
    width = max(1, (64 << 20) // max(1, 8 * len(train_rows)))
    for start in range(0, p, width):
        block = matrix.columns(train_rows, start, min(p, start + width)).astype(np.float64)
        if log1p:
            with np.errstate(invalid="ignore", divide="ignore"):
                np.log1p(block, out=block)
        block[~np.isfinite(block)] = np.nan
        has = scan.count[start : start + block.shape[1]] > 0
        medians[start : start + block.shape[1]][has] = np.nanmedian(block[:, has], axis=0)
    return medians


def _add_imputed(scan: _Scan, fill: np.ndarray, n_train: int) -> None:
    """Training statistics as if missing values were already the imputed median."""
    filled = n_train - scan.count
    has = scan.count > 0
    offset = np.where(has, fill - scan.shift, 0.0)
    scan.total += filled * offset
    scan.total_sq += filled * offset**2
    scan.minimum = np.where(filled > 0, np.minimum(scan.minimum, fill), scan.minimum)
    scan.maximum = np.where(filled > 0, np.maximum(scan.maximum, fill), scan.maximum)


def _top_k(keep: np.ndarray, var: np.ndarray, k: int | None) -> tuple[np.ndarray, int]:
    """Keep the k largest-variance features among those kept (ties: the earlier feature)."""
    idx = np.flatnonzero(keep)
    if k is None or k >= len(idx):
        return keep, 0
    order = np.argsort(-var[idx], kind="stable")[:k]
    out = np.zeros_like(keep)
    out[idx[order]] = True
    return out, int(len(idx) - k)


def _standardizer(mean: np.ndarray, var: np.ndarray, standardize: bool) -> Standardizer:
    if not standardize:
        return Standardizer(np.zeros(len(mean), np.float32), np.ones(len(mean), np.float32))
    scale = np.sqrt(var)
    scale[scale < 1e-8] = 1.0  # constant features stay finite (zero after centring)
    return Standardizer(mean.astype(np.float32), scale.astype(np.float32))
