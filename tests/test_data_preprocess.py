"""Preprocessing is fitted on training rows only and matches a direct numpy computation."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from multihead.data.matrix import DenseMatrix, SparseMatrix
from multihead.data.preprocess import Preprocessor, PreprocessSettings
from multihead.errors import ConfigError, DataError

N, P = 60, 8
TRAIN = np.arange(0, N, 2)  # even rows train; odd rows play val/test


def _matrix(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 3.0, size=(N, P)).astype(np.float32) * np.arange(1, P + 1)
    x[TRAIN, 2] = 4.0  # constant in training only
    x[:, 5] = 1000.0 + rng.normal(0, 0.01, N)  # large mean, tiny variance
    return x


def assert_close(out: np.ndarray, expected: np.ndarray) -> None:
    """Feature 5 (1000 +- 0.01) is stored to float32's 6e-5 resolution: after dividing by
    its 0.01 spread, rounding alone moves it by up to ~1e-2."""
    np.testing.assert_allclose(np.delete(out, 5, axis=1), np.delete(expected, 5, axis=1), atol=1e-4)
    np.testing.assert_allclose(out[:, 5], expected[:, 5], atol=1e-2)


def _fit(x: np.ndarray, **settings) -> Preprocessor:
    names = [f"g{j}" for j in range(x.shape[1])]
    ids = [f"s{i}" for i in range(len(x))]
    return Preprocessor.fit(
        DenseMatrix(x.copy()), TRAIN, names, ids, PreprocessSettings(**settings), "m.csv"
    )


def test_standardisation_uses_training_rows_only():
    x = _matrix()
    pre = _fit(x)
    np.testing.assert_allclose(pre.standardizer.mean, x[TRAIN].mean(axis=0), rtol=1e-6)
    std = x[TRAIN].astype(np.float64).std(axis=0)
    std[std < 1e-8] = 1
    np.testing.assert_allclose(pre.standardizer.scale, std, rtol=1e-4)
    assert_close(pre.transform(x), (x - x[TRAIN].mean(0)) / std)


def test_drop_constant_then_top_k_by_training_variance():
    x = _matrix()
    pre = _fit(x, drop_constant=True, top_k=4)
    var = x[TRAIN].astype(np.float64).var(axis=0)
    var[2] = -1  # constant in training: dropped first, whatever its variance elsewhere
    expected = np.sort(np.argsort(-var)[:4])
    np.testing.assert_array_equal(pre.keep, expected)
    assert pre.feature_names == [f"g{j}" for j in expected]
    assert pre.report["dropped_constant"] == 1 and pre.report["dropped_top_k"] == P - 1 - 4


def test_log1p_comes_before_the_statistics():
    x = _matrix()
    pre = _fit(x, log1p=True)
    logged = np.log1p(x.astype(np.float64))
    np.testing.assert_allclose(pre.standardizer.mean, logged[TRAIN].mean(axis=0), rtol=1e-5)
    # feature 5 (1000 +- 0.01) is left out: float32 resolves its logs only to ~1e-6
    np.testing.assert_allclose(np.delete(pre.transform(x)[TRAIN].mean(axis=0), 5), 0, atol=1e-4)


def test_log1p_refuses_values_at_or_below_minus_one():
    x = _matrix()
    x[7, 3] = -2
    with pytest.raises(DataError, match=r"log1p.*sample 's7' / feature 'g3' = -2"):
        _fit(x, log1p=True)


def test_impute_uses_the_training_median_for_every_row():
    x = _matrix()
    x[[0, 4, 9], 1] = np.nan  # two training rows, one other row
    x[11, 3] = np.inf
    pre = _fit(x, missing_values="impute")
    median1 = np.median(np.delete(x[TRAIN, 1], [0, 2]))
    median3 = np.median(x[TRAIN, 3])
    out = pre.transform(x)
    filled = x.copy()
    filled[[0, 4, 9], 1] = median1
    filled[11, 3] = median3
    mean, std = filled[TRAIN].mean(axis=0), filled[TRAIN].astype(np.float64).std(axis=0)
    std[std < 1e-8] = 1
    assert_close(out, (filled - mean) / std)
    assert pre.report["missing_values_filled"] == 4


def test_drop_policy_removes_features_above_the_missing_share_and_imputes_the_rest():
    x = _matrix()
    x[TRAIN[:5], 0] = np.nan  # 5/30 of training rows missing: above 0.1
    x[TRAIN[:2], 6] = np.nan  # 2/30: below 0.1, kept and imputed
    pre = _fit(x, missing_values="drop", max_missing=0.1)
    assert 0 not in pre.keep and 6 in pre.keep
    column = list(pre.keep).index(6)
    fill = np.median(x[TRAIN[2:], 6])
    assert pre.fill[column] == pytest.approx(fill, rel=1e-6)
    assert pre.report["dropped_missing"] == 1


@pytest.mark.parametrize("with_nan", [False, True])
def test_sparse_and_dense_fits_agree(with_nan):
    x = _matrix()
    x[x < 6] = 0
    if with_nan:  # a chunk with NaN takes the dense path inside the sparse fit
        x[[2, 31], 4] = np.nan
    names, ids = [f"g{j}" for j in range(P)], [f"s{i}" for i in range(N)]
    settings = PreprocessSettings(missing_values="impute", drop_constant=True, log1p=True)
    dense = Preprocessor.fit(DenseMatrix(x.copy()), TRAIN, names, ids, settings, "d")
    sparse = Preprocessor.fit(SparseMatrix(sp.csr_matrix(x)), TRAIN, names, ids, settings, "s")
    np.testing.assert_array_equal(dense.keep, sparse.keep)
    np.testing.assert_allclose(dense.fill, sparse.fill)
    np.testing.assert_allclose(dense.standardizer.mean, sparse.standardizer.mean, rtol=1e-6)
    np.testing.assert_allclose(dense.standardizer.scale, sparse.standardizer.scale, rtol=1e-5)
    np.testing.assert_allclose(dense.transform(x), sparse.transform(x), atol=1e-5)


def test_dense_matrix_is_transformed_in_its_own_buffer():
    x = _matrix()
    pre = _fit(x, drop_constant=True)
    matrix = DenseMatrix(x.copy())
    out = pre.transform_dense_inplace(matrix)
    np.testing.assert_allclose(out, pre.transform(x), atol=1e-6)
    assert np.shares_memory(out, matrix.values)


def test_state_survives_a_weights_only_checkpoint():
    x = _matrix()
    x[3, 1] = np.nan
    pre = _fit(x, missing_values="impute", top_k=5, log1p=True)
    buffer = io.BytesIO()
    torch.save({"pre": pre.state_dict()}, buffer)
    buffer.seek(0)
    loaded = Preprocessor.from_state_dict(torch.load(buffer, weights_only=True)["pre"])
    np.testing.assert_array_equal(loaded.transform(x), pre.transform(x))
    assert loaded.feature_names == pre.feature_names


@pytest.mark.parametrize(
    "settings,key",
    [
        ({"missing_values": "zero"}, "missing_values"),
        ({"top_k": 0}, "top_k"),
        ({"max_missing": 1.5}, "max_missing"),
        ({"standardise": True}, "unknown keys"),
    ],
)
def test_bad_settings_name_the_key(settings, key):
    with pytest.raises(ConfigError, match=key):
        PreprocessSettings.from_config(settings)
