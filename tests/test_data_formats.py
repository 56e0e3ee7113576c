"""Every supported file format and orientation loads the same cohort, values and ids exact."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from multihead.data.datamodule import CohortDataModule, prepare_cohort
from multihead.data.inplace import keep_rows_inplace, map_rows_inplace
from multihead.data.lazy_rows import LazyRows
from multihead.data.matrix import BackedMatrix, SparseMatrix
from multihead.data.table_reader import read_matrix
from tests.data_files import data_config, small_frames, write_h5ad, write_table

FAST = ["logger=none", "data.tasks.age.bins=quantile:3"]


@pytest.fixture(scope="module")
def frames():
    return small_frames(n_samples=150, n_features=30)


@pytest.mark.parametrize(
    "name,orientation",
    [
        ("m.csv", "samples_x_features"),
        ("m.csv.gz", "samples_x_features"),
        ("m.tsv", "samples_x_features"),
        ("m.parquet", "samples_x_features"),
        ("m.tsv.gz", "features_x_samples"),
        ("m.parquet", "features_x_samples"),
    ],
)
def test_table_formats_read_the_same_matrix(tmp_path, frames, name, orientation):
    matrix, sheet = frames
    write_table(tmp_path, matrix, sheet, name, orientation)
    got = read_matrix(tmp_path / name, orientation=orientation)
    assert got.sample_ids == list(matrix.index)  # text ids keep their leading zeros
    assert got.feature_names == list(matrix.columns)
    np.testing.assert_array_equal(got.values, matrix.to_numpy(np.float32))
    assert got.values.dtype == np.float32 and got.values.flags.c_contiguous


def test_sheet_order_and_extra_columns_do_not_matter(tmp_path, frames):
    """The join is on the id: a shuffled sheet gives each sample its own label."""
    matrix, sheet = frames
    shuffled = sheet.sample(frac=1.0, random_state=0).assign(note="x")
    overrides = write_table(tmp_path, matrix, shuffled)
    cohort = prepare_cohort(data_config([*overrides, *FAST]))
    assert cohort.sample_ids == list(matrix.index)
    sex = sheet.set_index("sample_id").loc[cohort.sample_ids, "sex"]
    np.testing.assert_array_equal(cohort.labels[:, 1].numpy(), (sex == "male").astype(int))


def _anndata_cohort(tmp_path, frames, **kwargs):
    matrix, sheet = frames
    path = write_h5ad(
        tmp_path / "c.h5ad",
        matrix,
        sheet,
        **{k: v for k, v in kwargs.items() if k in ("sparse", "layer")},
    )
    overrides = ["data=anndata", f"data.path={path}", *FAST]
    if kwargs.get("layer"):
        overrides.append(f"data.layer={kwargs['layer']}")
    if kwargs.get("backed"):
        overrides.append("data.backed=true")
    return prepare_cohort(data_config(overrides))


@pytest.fixture(scope="module")
def table_cohort(tmp_path_factory, frames):
    overrides = write_table(tmp_path_factory.mktemp("t"), *frames)
    return prepare_cohort(data_config([*overrides, *FAST]))


@pytest.mark.parametrize(
    "variant",
    [{}, {"sparse": True}, {"layer": "counts"}, {"backed": True}, {"backed": True, "sparse": True}],
)
def test_anndata_variants_match_the_table_cohort(tmp_path, frames, table_cohort, variant):
    cohort = _anndata_cohort(tmp_path, frames, **variant)
    assert cohort.sample_ids == table_cohort.sample_ids
    for name in cohort.splits:
        np.testing.assert_array_equal(cohort.splits[name], table_cohort.splits[name])
    rows = torch.arange(len(cohort.sample_ids))
    np.testing.assert_allclose(
        cohort.features[rows].numpy(), table_cohort.features.numpy(), atol=2e-5
    )
    torch.testing.assert_close(cohort.labels, table_cohort.labels)


def test_sparse_cohort_stays_sparse_and_densifies_per_batch(tmp_path, frames):
    cohort = _anndata_cohort(tmp_path, frames, sparse=True)
    assert isinstance(cohort.features, LazyRows)
    assert isinstance(cohort.features.matrix, SparseMatrix)
    assert sp.issparse(cohort.features.matrix.values)
    module = CohortDataModule(cohort, batch_size=16, eval_batch_size=32, shuffle_seed=0)
    batch = next(iter(module.train_dataloader()))
    assert batch["x"].shape == (16, cohort.num_features) and batch["x"].dtype == torch.float32
    # the batch is exactly the preprocessed dense rows of those samples
    dense = frames[0].to_numpy(np.float32)[batch["index"].numpy()]
    expected = (
        dense - cohort.preprocessor.standardizer.mean
    ) / cohort.preprocessor.standardizer.scale
    np.testing.assert_allclose(batch["x"].numpy(), expected, atol=2e-5)
    assert sp.issparse(cohort.features.matrix.values)  # still sparse after serving a batch
    rows = np.array([3, 0, 7])
    np.testing.assert_allclose(cohort.feature_rows(rows), cohort.features[torch.tensor(rows)])


def test_backed_rows_survive_pickling_for_spawned_processes(tmp_path, frames):
    cohort = _anndata_cohort(tmp_path, frames, backed=True)
    assert isinstance(cohort.features.matrix, BackedMatrix)
    rows = torch.tensor([5, 1, 9, 1])
    copy = pickle.loads(pickle.dumps(cohort.features))
    torch.testing.assert_close(copy[rows], cohort.features[rows])


def test_rows_are_selected_inside_the_same_buffer():
    rng = np.random.default_rng(0)
    array = rng.normal(size=(50, 7)).astype(np.float32)
    original = array.copy()
    rows = np.sort(rng.choice(50, size=20, replace=False))
    kept = keep_rows_inplace(array, rows)
    np.testing.assert_array_equal(kept, original[rows])
    assert np.shares_memory(kept, array)


def test_columns_are_rewritten_inside_the_same_buffer():
    rng = np.random.default_rng(1)
    array = rng.normal(size=(40, 9)).astype(np.float32)
    original = array.copy()
    keep = np.array([0, 3, 4, 8])
    out = map_rows_inplace(array, lambda block: block[:, keep] * 2, len(keep))
    np.testing.assert_array_equal(out, original[:, keep] * 2)
    assert np.shares_memory(out, array) and out.flags.c_contiguous


def test_blank_lines_in_a_features_x_samples_file_are_skipped(tmp_path, frames):
    matrix = frames[0].iloc[:6, :5]
    text = matrix.T.to_csv()
    lines = text.splitlines()
    (tmp_path / "m.csv").write_text("\n".join(lines[:3] + [""] + lines[3:]) + "\n\n")
    got = read_matrix(tmp_path / "m.csv", orientation="features_x_samples")
    np.testing.assert_array_equal(got.values, matrix.to_numpy(np.float32))
    assert got.feature_names == list(matrix.columns)


def test_parquet_written_by_pandas_finds_its_index(tmp_path, frames):
    """df.to_parquet() stores the index as the last column; it is still the sample id."""
    matrix = frames[0].iloc[:10, :4]
    matrix.to_parquet(tmp_path / "m.parquet")  # index `sample_id` stored after the features
    got = read_matrix(tmp_path / "m.parquet")
    assert got.sample_ids == list(matrix.index)
    assert got.feature_names == list(matrix.columns)
    assert isinstance(pd.read_parquet(tmp_path / "m.parquet").index, pd.Index)
