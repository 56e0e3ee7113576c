"""Resampled evaluation: stratified outer folds that partition the cohort, a partition seed of
its own, validation carved from the other folds, and the split recorded in every run."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from multihead.data.datamodule import CohortDataModule, prepare_cohort
from multihead.data.splits import CrossValidation, cv_split, outer_folds
from multihead.errors import ConfigError
from multihead.run_folder import replicate
from tests.conftest import SMALL, compose_config

NAMES = ["age", "sex"]


def labels(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, 6, n), rng.integers(0, 2, n)], axis=1)


def test_folds_partition_the_cohort_and_are_stratified():
    y = labels()
    cv = CrossValidation(folds=5)
    fold_of = outer_folds(y, NAMES, cv)
    tests = [set(cv_split(y, NAMES, 0.15, CrossValidation(5, f))[0]["test"]) for f in range(5)]
    assert set().union(*tests) == set(range(len(y)))  # every sample is tested once
    assert sum(len(t) for t in tests) == len(y)  # and never twice
    for f, test in enumerate(tests):
        assert test == set(np.flatnonzero(fold_of == f))
        # stratified: each age class is spread evenly over the folds (within one sample)
        for k, total in Counter(y[:, 0]).items():
            in_fold = sum(1 for i in test if y[i, 0] == k)
            assert abs(in_fold - total / 5) <= 1.5, (f, k)


def test_validation_comes_from_the_other_folds():
    y = labels()
    splits, fold_of = cv_split(y, NAMES, 0.15, CrossValidation(5, 2))
    assert (fold_of[splits["val"]] != 2).all() and (fold_of[splits["train"]] != 2).all()
    assert not set(splits["val"]) & set(splits["train"])
    assert len(splits["val"]) == pytest.approx(0.15 * len(y), abs=2)


def test_repeat_picks_another_partition_with_its_own_seed():
    y = labels()
    a, b = (
        outer_folds(y, NAMES, CrossValidation(5, 0, 0)),
        outer_folds(y, NAMES, CrossValidation(5, 0, 1)),
    )
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, outer_folds(y, NAMES, CrossValidation(5, 0, 0)))


@pytest.mark.parametrize(
    "cfg,message",
    [
        ({"folds": 1}, "data.cv.folds must be null or an integer >= 2"),
        ({"folds": 5, "fold": 5}, r"data.cv.fold=5 but data.cv.folds=5: folds are numbered 0..4"),
        ({"folds": 5, "repeat": -1}, "data.cv.repeat must be an integer"),
    ],
)
def test_bad_cv_settings_name_the_key(cfg, message):
    with pytest.raises(ConfigError, match=message):
        CrossValidation.from_config(cfg)


def test_the_built_in_cohort_with_cv_records_fold_and_partition():
    cfg = compose_config([*SMALL, "data.cv.folds=4", "data.cv.fold=1", "data.cv.repeat=1"])
    cohort = prepare_cohort(cfg.data)
    frame = CohortDataModule(cohort, 32, 64, 0).split_frame()
    assert {"sample_id", "split", "fold", "partition"} <= set(frame.columns)
    assert (frame.loc[frame["split"] == "test", "fold"] == 1).all()
    assert (frame.loc[frame["split"] != "test", "fold"] != 1).all()
    assert (frame["partition"] == 1).all() and len(frame) == len(cohort.sample_ids)
    # data.seed regenerates the built-in cohort; the partition does not follow it
    other = prepare_cohort(compose_config([*SMALL, "data.cv.folds=4", "data.seed=3"]).data)
    assert other.sample_ids != cohort.sample_ids or not np.array_equal(
        other.outer_folds, cohort.outer_folds
    )


def test_table_data_splits_by_fold(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(120)]
    matrix = pd.DataFrame(
        rng.normal(size=(120, 20)), index=ids, columns=[f"g{j}" for j in range(20)]
    )
    sheet = pd.DataFrame(
        {"age": rng.uniform(20, 80, 120), "sex": rng.choice(["M", "F"], 120)}, index=ids
    )
    matrix.to_csv(tmp_path / "m.csv", index_label="id")
    sheet.to_csv(tmp_path / "s.csv", index_label="id")
    tests = []
    for fold in range(3):
        cfg = compose_config(
            [
                "data=table",
                f"data.matrix={tmp_path / 'm.csv'}",
                f"data.samples={tmp_path / 's.csv'}",
                "data.cv.folds=3",
                f"data.cv.fold={fold}",
            ]
        )
        cohort = prepare_cohort(cfg.data)
        tests.append({cohort.sample_ids[i] for i in cohort.splits["test"]})
    assert set().union(*tests) == set(ids) and sum(map(len, tests)) == len(ids)


def test_a_run_names_its_split():
    got = replicate({"data_seed": 0, "cv_folds": 5, "cv_repeat": 1, "cv_fold": 3}, {}, {})
    assert got["split"] == "data.seed=0 repeat=1 fold=3/5"
    single = replicate({"data_seed": 2}, {}, {})
    assert single["split"] == "data.seed=2" and single["cv_folds"] is None


def test_batch_sizes_do_not_make_another_cohort():
    a = replicate({}, {"seed": 0, "matrix": "m.csv", "batch_size": 16, "cv": {"folds": 5}}, {})
    b = replicate({}, {"seed": 0, "matrix": "m.csv", "batch_size": 64, "cv": {"folds": 5}}, {})
    c = replicate({}, {"seed": 0, "matrix": "n.csv", "batch_size": 64, "cv": {"folds": 5}}, {})
    assert a["data_key"] == b["data_key"] != c["data_key"]
