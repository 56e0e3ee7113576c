"""Labels, stratified splits fixed by the data seed, and standardisation fitted on train only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from multihead.data.batches import StridedEvalSampler, TensorRows
from multihead.data.datamodule import prepare_cohort
from multihead.data.labels import label_samples
from multihead.data.sources import load_raw_cohort
from multihead.data.splits import stratified_split
from multihead.errors import DataError
from multihead.tasks import tasks_from_config
from tests.conftest import SMALL, compose_config


@pytest.fixture(scope="module")
def cfg():
    return compose_config(SMALL)


@pytest.fixture(scope="module")
def cohort(cfg):
    return prepare_cohort(cfg.data)


def test_split_is_a_partition_and_stratified(cohort):
    splits = cohort.splits
    every = np.concatenate(list(splits.values()))
    assert len(every) == len(set(every)) == len(cohort.sample_ids)
    labels = cohort.labels.numpy()
    for j, task in enumerate(cohort.tasks):
        overall = np.bincount(labels[:, j], minlength=task.num_classes) / len(labels)
        for name, idx in splits.items():
            share = np.bincount(labels[idx, j], minlength=task.num_classes) / len(idx)
            # stratified: each split's class shares within a few points of the cohort's
            assert np.abs(share - overall).max() < 0.06, (task.name, name, share, overall)
            assert (share > 0).all(), f"{task.name}: a class is absent from {name}"


def test_split_depends_on_data_seed_only(cfg):
    a = prepare_cohort(cfg.data).splits
    b = prepare_cohort(compose_config([*SMALL, "seed=7"]).data).splits  # training seed
    c = prepare_cohort(compose_config([*SMALL, "data.seed=7"]).data).splits
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["test"], c["test"])


def test_standardisation_uses_training_rows_only(cfg, cohort):
    raw = load_raw_cohort(cfg.data).features.astype(np.float64)
    train, test = cohort.splits["train"], cohort.splits["test"]
    np.testing.assert_allclose(
        cohort.preprocessor.standardizer.mean, raw[train].mean(axis=0), rtol=1e-4, atol=1e-5
    )
    std = raw[train].std(axis=0)
    std[std < 1e-8] = 1
    np.testing.assert_allclose(cohort.preprocessor.standardizer.scale, std, rtol=1e-4, atol=1e-5)
    features = cohort.features.numpy()
    np.testing.assert_allclose(features[train].mean(axis=0), 0, atol=1e-4)
    # the test split is transformed with the training statistics, not its own
    expected_test = (raw[test] - raw[train].mean(axis=0)) / std
    np.testing.assert_allclose(features[test], expected_test, rtol=1e-3, atol=1e-3)
    full_mean = raw.mean(axis=0)
    assert not np.allclose(cohort.preprocessor.standardizer.mean, full_mean, atol=1e-6)


def test_age_binning_by_hand():
    tasks = tasks_from_config({"age": {"column": "age", "edges": [18, 30, 60, 90]}})
    sheet = pd.DataFrame({"age": [18, 29.99, 30, 59.5, 60, 90]}, index=list("abcdef"))
    np.testing.assert_array_equal(label_samples(sheet, tasks, "t").codes[:, 0], [0, 0, 1, 1, 2, 2])
    assert tasks[0].classes == ("18-30", "30-60", "60-90")
    np.testing.assert_allclose(tasks[0].midpoints, [24, 45, 75])


@pytest.mark.parametrize(
    "values,message",
    [
        ([20, 95], "outside the bins"),
        ([20, "old"], "non-numeric"),
        ([20, None], "missing labels"),
    ],
)
def test_bad_age_values_name_the_sample(values, message):
    tasks = tasks_from_config({"age": {"column": "age", "edges": [18, 30, 90]}})
    sheet = pd.DataFrame({"age": values}, index=["s1", "s2"])
    with pytest.raises(DataError, match=message) as err:
        label_samples(sheet, tasks, "sheet.csv")
    assert "s2" in str(err.value) and "sheet.csv" in str(err.value)


def test_unknown_class_and_missing_column_are_listed():
    tasks = tasks_from_config({"sex": {"column": "sex", "classes": ["female", "male"]}})
    with pytest.raises(DataError, match="unknown values \\['x'\\]"):
        label_samples(pd.DataFrame({"sex": ["male", "x"]}), tasks, "t")
    with pytest.raises(DataError, match="available columns: \\['gender'\\]"):
        label_samples(pd.DataFrame({"gender": ["male"]}), tasks, "t")


def test_class_too_rare_to_split_is_named():
    labels = np.array([[0, 0]] * 40 + [[1, 1]] * 40 + [[2, 0]] * 2)
    with pytest.raises(DataError, match="task 'age'.*\\[2\\].*merge"):
        stratified_split(labels, ["age", "sex"], 0.15, 0.15, seed=0)


def test_third_task_from_config(small_config):
    cfg = small_config("+data.tasks.batch={column: batch, classes: [batch1, batch2, batch3]}")
    cohort = prepare_cohort(cfg.data)
    assert [t.name for t in cohort.tasks] == ["age", "sex", "batch"]
    assert cohort.labels.shape[1] == 3 and set(cohort.labels[:, 2].tolist()) == {0, 1, 2}


def test_batches_index_in_memory_tensors_and_eval_is_unpadded():
    x = torch.arange(20.0).reshape(10, 2)
    rows = TensorRows(torch.tensor([1, 3, 5, 7, 9]), x=x)
    batch = rows.__getitems__([0, 2])
    torch.testing.assert_close(batch["x"], x[[1, 5]])
    torch.testing.assert_close(batch["index"], torch.tensor([1, 5]))
    shards = [list(StridedEvalSampler(7, r, 2)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(7))
