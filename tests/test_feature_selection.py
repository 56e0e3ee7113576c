"""`model.top_k`: selecting after loading is the same as `data.preprocess.top_k` while reading,
a checkpoint trained with it predicts new files with the same features, and `model.select=
association` ranks by each task's F test on training rows only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from multihead.data.datamodule import prepare_cohort
from multihead.data.feature_selection import (
    ASSOCIATION,
    FeatureRanking,
    association_order,
    select_top_k,
)
from multihead.errors import ConfigError
from multihead.predict import predict
from multihead.training.run import train
from tests.conftest import compose_config
from tests.data_files import small_frames, write_table


def test_same_as_selecting_while_reading(tmp_path):
    matrix, sheet = small_frames(n_samples=120, n_features=40)
    table = write_table(tmp_path, matrix, sheet)
    full = prepare_cohort(compose_config(table).data)
    read = prepare_cohort(compose_config([*table, "data.preprocess.top_k=12"]).data)
    after = select_top_k(full, 12)
    assert after.feature_names == read.feature_names
    torch.testing.assert_close(after.features, read.features)
    assert after.preprocessor.feature_names == read.preprocessor.feature_names
    np.testing.assert_allclose(
        after.preprocessor.standardizer.scale, read.preprocessor.standardizer.scale
    )
    assert after.report["features"]["kept"] == 12
    assert select_top_k(full, None) is full and select_top_k(full, 99) is full


def test_prediction_applies_the_selection(tmp_path):
    matrix, sheet = small_frames(n_samples=160, n_features=30)
    cfg = compose_config(
        [
            *write_table(tmp_path / "in", matrix, sheet),
            "model=linear",
            "model.top_k=8",
            "logger=none",
            "callbacks.progress=null",
            "budget.min_steps=5",
            "budget.patience_steps=2",
            "trainer.max_epochs=1",
        ],
        tmp_path / "run",
    )
    metrics = train(cfg)
    assert metrics["num_features"] == 8
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype={"sample_id": str})
    matrix.loc[preds.sample_id].to_csv(tmp_path / "new.csv")
    got = predict(tmp_path / "run", tmp_path / "new.csv")
    probs = [c for c in preds.columns if "_p[" in c]
    np.testing.assert_allclose(got[probs].to_numpy(), preds[probs].to_numpy(), atol=1e-4)


def f_by_hand(x: np.ndarray, target: np.ndarray, classes: bool) -> tuple[np.ndarray, ...]:
    """(F, p) from scipy: one-way ANOVA across classes, or F = r^2 (n - 2) / (1 - r^2) with
    its p-value from the F(1, n - 2) distribution."""
    f, p = [], []
    for column in x.T:
        if classes:
            result = stats.f_oneway(*(column[target == c] for c in np.unique(target)))
            f.append(result[0])
            p.append(result[1])
        else:
            r = stats.pearsonr(column, target)[0]
            f.append(r**2 * (len(target) - 2) / (1 - r**2))
            p.append(stats.f.sf(f[-1], 1, len(target) - 2))
    return np.asarray(f), np.asarray(p)


@pytest.fixture
def cohort(tmp_path):
    matrix, sheet = small_frames(n_samples=150, n_features=30)
    sheet.loc[sheet.index[:7], "sex"] = None  # missing labels: left out of the sex ranking
    table = write_table(tmp_path, matrix, sheet)
    return prepare_cohort(compose_config([*table, "data.labels.missing=mask"]).data)


def test_association_ranks_by_the_smallest_p_value_over_tasks(cohort):
    train = np.sort(cohort.splits["train"])
    x = cohort.features[torch.from_numpy(train)].double().numpy()
    years = cohort.values[train, 0].numpy().astype(np.float64)
    sex = cohort.labels[train, 1].numpy()
    assert (sex == -1).any(), "the fixture should have missing sex labels in training"
    age_f, age_p = f_by_hand(x, years, classes=False)
    sex_f, sex_p = f_by_hand(x[sex >= 0], sex[sex >= 0], classes=True)
    p_min = np.minimum(age_p, sex_p)
    place = np.minimum(
        np.argsort(np.argsort(-age_f, kind="stable")), np.argsort(np.argsort(-sex_f, kind="stable"))
    )
    expected = sorted(range(x.shape[1]), key=lambda j: (p_min[j], place[j], j))
    got = association_order(cohort)
    assert got.tolist() == expected
    assert (np.diff(p_min[got]) >= -1e-12).all()  # never a larger p-value first
    # the sex chromosome genes lead the sex ranking, age genes the age ranking
    chosen = select_top_k(cohort, 6, ASSOCIATION)
    assert {"XIST", "RPS4Y1"} <= set(chosen.feature_names)
    assert chosen.features.shape == (cohort.features.shape[0], 6)


def test_validation_and_test_labels_never_rank_features(cohort):
    before = association_order(cohort)
    rng = np.random.default_rng(0)
    held_out = np.concatenate([cohort.splits["val"], cohort.splits["test"]])
    labels, values = cohort.labels.clone(), cohort.values.clone()
    labels[held_out] = labels[rng.permutation(held_out)]
    values[held_out, 0] = torch.from_numpy(rng.uniform(18, 90, len(held_out)).astype(np.float32))
    shuffled = dataclasses.replace(cohort, labels=labels, values=values)
    assert association_order(shuffled).tolist() == before.tolist()
    train = cohort.splits["train"]
    values = cohort.values.clone()
    values[train, 0] = torch.from_numpy(rng.uniform(18, 90, len(train)).astype(np.float32))
    assert association_order(dataclasses.replace(cohort, values=values)).tolist() != (
        before.tolist()
    )


def test_rankings_are_kept_per_method_and_training_rows(cohort):
    ranking = FeatureRanking()
    first = ranking.order(cohort, ASSOCIATION)
    assert ranking.order(cohort, ASSOCIATION) is first
    fold = dataclasses.replace(
        cohort, splits={**cohort.splits, "train": cohort.splits["train"][:-10]}
    )
    assert ranking.order(fold, ASSOCIATION) is not first
    assert ranking.order(cohort, "variance") is not first
    with pytest.raises(ConfigError, match="model.select must be one of"):
        ranking.order(cohort, "correlation")


def test_an_unknown_selection_fails_before_the_data_are_read(tmp_path):
    cfg = compose_config(
        [
            "data=table",
            "data.matrix=/no/such.csv",
            "data.samples=/no/such.csv",
            "model.select=pearson",
        ],
        tmp_path,
    )
    with pytest.raises(ConfigError, match="model.select"):
        train(cfg)
