"""`model=linear` is ridge / logistic regression: the same test predictions as scikit-learn
with the equivalent penalty on the same split."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Lasso, LogisticRegression, Ridge

from multihead.data.datamodule import prepare_cohort
from multihead.errors import ConfigError
from multihead.training.run import train
from multihead.training.validation import validate_config

WEIGHT_DECAY = 0.05
LINEAR = [
    "model=linear",
    f"model.optimizer.weight_decay={WEIGHT_DECAY}",
    "budget.min_steps=20",
    "budget.patience_steps=5",
    "trainer.max_epochs=1",
]


def sklearn_inputs(cfg):
    cohort = prepare_cohort(cfg.data)
    x = cohort.features.numpy()
    return cohort, x, cohort.splits["train"], cohort.splits["test"]


def test_linear_regression_is_ridge(small_config):
    cfg = small_config(*LINEAR, "loss=regression", "loss.options.regression.kind=mse", "head=split")
    metrics = train(cfg)
    cohort, x, train_rows, test_rows = sklearn_inputs(cfg)
    age = [t.name for t in cohort.tasks].index("age")
    years = cohort.values[:, age].numpy()
    alpha = len(train_rows) * WEIGHT_DECAY / 2
    ridge = Ridge(alpha=alpha).fit(x[train_rows], years[train_rows])
    reference = float(np.abs(ridge.predict(x[test_rows]) - years[test_rows]).mean())
    ours = metrics["tasks"]["age"]["mae_years"]
    print(f"test MAE: model=linear {ours:.4f} y, sklearn Ridge {reference:.4f} y")
    assert ours == pytest.approx(reference, rel=0.02)
    # and not by luck: a different penalty gives a measurably different ridge
    other = Ridge(alpha=alpha * 50).fit(x[train_rows], years[train_rows])
    assert abs(float(np.abs(other.predict(x[test_rows]) - years[test_rows]).mean()) - ours) > (
        0.02 * ours
    )
    assert metrics["num_parameters"] == 3 * (x.shape[1] + 1)  # age: 1 output, sex: 2
    assert metrics["steps_trained"] >= 1 and metrics["stop_reason"]


def test_linear_classification_is_logistic_regression(small_config, tmp_path):
    cfg = small_config(*LINEAR, "loss=ce", "head=fused", "~data.tasks.age")
    train(cfg)
    cohort, x, train_rows, test_rows = sklearn_inputs(cfg)
    sex = cohort.labels[:, 0].numpy()
    # two softmax rows penalised alike = one binary weight vector with half the penalty
    logistic = LogisticRegression(C=2 / (len(train_rows) * WEIGHT_DECAY), max_iter=5000, tol=1e-8)
    logistic.fit(x[train_rows], sex[train_rows])
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    ids = [cohort.sample_ids[i] for i in test_rows]
    ours = predictions.set_index("sample_id").loc[ids, "sex_p[male]"].to_numpy()
    reference = logistic.predict_proba(x[test_rows])[:, 1]
    print(f"largest probability difference to sklearn: {np.abs(ours - reference).max():.5f}")
    assert np.abs(ours - reference).max() < 0.02


def test_linear_rejects_manual_optimization(small_config):
    with pytest.raises(ConfigError, match="closure"):
        validate_config(small_config("model=linear", "weighting=pcgrad"))


def test_linear_saves_its_choices(small_config, tmp_path):
    cfg = small_config(*LINEAR, "loss=bce", "model.top_k=50")
    train(cfg)
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "batch_size: 350" in saved  # full batch: the 350 training samples of 500
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["num_features"] == 50


def test_l1_penalty_is_the_lasso():
    """`model.l1`: the optimizer's smoothed L1 reaches scikit-learn's Lasso coefficients
    (mean squared error + l1 * sum|w| is Lasso with alpha = l1 / 2)."""
    import torch

    from multihead.models.linear import PenalizedLBFGS

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 20))
    y = x[:, :5] @ np.array([2.0, -1.5, 1.0, 0.5, -0.5]) + rng.normal(scale=0.5, size=200)
    layer = torch.nn.Linear(20, 1).double()
    optimizer = PenalizedLBFGS(layer.parameters(), l1=0.2, max_iter=2000, tolerance_grad=1e-10)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def closure():
        optimizer.zero_grad()
        loss = (layer(xt)[:, 0] - yt).square().mean()
        loss.backward()
        return loss

    for _ in range(3):
        optimizer.step(closure)
    lasso = Lasso(alpha=0.1).fit(x, y)
    ours = layer.weight.detach().numpy()[0]
    np.testing.assert_allclose(ours, lasso.coef_, atol=0.01)
    assert (np.abs(ours) < 0.01).sum() >= 10  # sparse: most of the 15 noise weights vanish


def test_per_task_penalties_are_separate_regressions(small_config, tmp_path):
    """`model.head_decay`: with `head=split` each task is its own penalised regression, age a
    ridge with one alpha and sex a logistic regression with another, in one fit."""
    age_decay, sex_decay = 0.5, 0.002
    cfg = small_config(
        *LINEAR,
        "loss=regression",
        "loss.options.regression.kind=mse",
        "head=split",
        f"+model.head_decay.age={age_decay}",
        f"+model.head_decay.sex={sex_decay}",
    )
    metrics = train(cfg)
    cohort, x, train_rows, test_rows = sklearn_inputs(cfg)
    names = [t.name for t in cohort.tasks]
    years = cohort.values[:, names.index("age")].numpy()
    ridge = Ridge(alpha=len(train_rows) * age_decay / 2).fit(x[train_rows], years[train_rows])
    reference = float(np.abs(ridge.predict(x[test_rows]) - years[test_rows]).mean())
    ours = metrics["tasks"]["age"]["mae_years"]
    assert ours == pytest.approx(reference, rel=0.02)
    shared = Ridge(alpha=len(train_rows) * WEIGHT_DECAY / 2).fit(x[train_rows], years[train_rows])
    assert abs(float(np.abs(shared.predict(x[test_rows]) - years[test_rows]).mean()) - ours) > (
        0.02 * ours
    )  # the optimizer's shared penalty would give another age model
    sex = cohort.labels[:, names.index("sex")].numpy()
    logistic = LogisticRegression(C=2 / (len(train_rows) * sex_decay), max_iter=5000, tol=1e-8)
    logistic.fit(x[train_rows], sex[train_rows])
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    ids = [cohort.sample_ids[i] for i in test_rows]
    probabilities = predictions.set_index("sample_id").loc[ids, "sex_p[male]"].to_numpy()
    assert np.abs(probabilities - logistic.predict_proba(x[test_rows])[:, 1]).max() < 0.02


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["head=fused", "+model.head_decay.age=1"], "head=fused keeps every task in one matrix"),
        (["head=split", "+model.head_decay.height=1"], "model.head_decay.height: no task"),
        (["head=split", "+model.head_decay.sex=-1"], r"model.head_decay.sex must be a number"),
        (["head=towers", "+model.head_decay.sex=high"], r"model.head_decay.sex must be a number"),
    ],
)
def test_bad_head_decay_is_named(small_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(small_config("model=linear", *overrides))


@pytest.mark.parametrize("head", ["split", "towers", "separate"])
def test_head_decay_groups_a_tasks_own_parameters(small_config, head):
    """AdamW gets one group per task in `model.head_decay` holding exactly the parameters
    only that task's head uses; everything else keeps `model.optimizer.weight_decay`."""
    from multihead.training.builders import build_module

    cfg = small_config("model=mlp", f"head={head}", "+model.head_decay.sex=0.3")
    module = build_module(cfg, prepare_cohort(cfg.data), None)
    groups = module.configure_optimizers().param_groups
    assert [g["weight_decay"] for g in groups] == [0.01, 0.3]
    head_module = module.net.head
    sex_ids = {id(p) for p in next(m for n, m in head_module.named_children()).sex.parameters()}
    assert {id(p) for p in groups[1]["params"]} == sex_ids
    every = {id(p) for p in module.model_parameters()}
    assert {id(p) for g in groups for p in g["params"]} == every
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(every)
