"""`model.ensemble`: N networks trained side by side, each on its own loss, outputs averaged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from multihead.data.datamodule import prepare_cohort
from multihead.errors import ConfigError
from multihead.models.network import EnsembleNet, MultiTaskNet
from multihead.predict import predict
from multihead.training.builders import build_module
from multihead.training.run import train
from multihead.training.tuning import trial_config
from multihead.training.validation import validate_config
from tests.conftest import compose_config
from tests.data_files import small_frames, write_table


@pytest.fixture
def cohort_and_config(small_config):
    cfg = small_config("head=split", "loss=ce", "model.ensemble=3", "+model.head_decay.sex=0.5")
    return prepare_cohort(cfg.data), cfg


def test_the_ensembles_output_is_the_mean_of_its_networks(cohort_and_config):
    cohort, cfg = cohort_and_config
    net = build_module(cfg, cohort, None).net
    assert isinstance(net, EnsembleNet) and len(net.members) == 3
    first = net.members[0].trunk[0].weight
    assert not torch.equal(first, net.members[1].trunk[0].weight)  # own initial weights
    net.eval()
    x = cohort.features[:16]
    by_hand = sum(member(x) for member in net.members) / 3
    torch.testing.assert_close(net(x), by_hand)
    # the first member is the network a single-network job with the same seed builds
    cfg.model.ensemble = 1
    single = build_module(cfg, cohort, None).net
    assert isinstance(single, MultiTaskNet)
    assert torch.equal(single.trunk[0].weight, first)


def test_each_network_learns_from_its_own_loss(cohort_and_config):
    """The training loss is the mean of the members' losses, so a member's gradient is that
    of its own loss over N, never one of the averaged output."""
    cohort, cfg = cohort_and_config
    module = build_module(cfg, cohort, None)
    net, loss_fn = module.net, module.loss_fn
    net.train()
    torch.manual_seed(1)
    rows = torch.arange(32)
    batch = {"x": cohort.features[rows], "y": cohort.labels[rows], "value": cohort.values[rows]}
    parts = module.task_losses(batch)
    sum(parts.values()).backward()
    grads = [p.grad.clone() for p in net.members[1].parameters()]
    net.zero_grad()
    torch.manual_seed(1)  # same dropout draws: members 0 and 2 draw before and after
    outputs = net.member_outputs(batch["x"])
    _, own = loss_fn(outputs[1], batch["y"], batch["value"])
    (sum(own.values()) / 3).backward()
    for mine, expected in zip(grads, net.members[1].parameters(), strict=True):
        torch.testing.assert_close(mine, expected.grad)
    # a task's own decay reaches its head in every member
    decayed = {id(p) for g in module.configure_optimizers().param_groups for p in g["params"]}
    heads = [p for m in net.members for p in m.head.task_parameters()["sex"]]
    assert heads and all(id(p) in decayed for p in heads)


def test_an_ensemble_job_trains_tests_and_records_its_size(small_config, tmp_path):
    cfg = small_config("model.ensemble=2", "trainer.max_epochs=2")
    train(cfg)
    metrics = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    single = small_config("trainer.max_epochs=2", out="single")
    counts = build_module(single, prepare_cohort(single.data), None).parameter_counts()
    assert metrics["parameters"]["model"] == 2 * counts["model"]
    assert metrics["tasks"]["sex"]["balanced_accuracy"] > 0.5


def test_trials_train_one_network(small_config):
    cfg = small_config("model.ensemble=4", "tune=optuna")
    assert trial_config(cfg, {})["model"]["ensemble"] == 1


@pytest.mark.parametrize("value", [0, -1, "3", 1.5, True])
def test_invalid_sizes_are_refused(small_config, value):
    cfg = small_config()
    cfg.model.ensemble = value
    with pytest.raises(ConfigError, match="model.ensemble"):
        validate_config(cfg)


def test_a_linear_model_refuses_an_ensemble(small_config):
    with pytest.raises(ConfigError, match="one optimum"):
        validate_config(small_config("model=linear", "+model.ensemble=2"))


def test_an_ensemble_checkpoint_predicts_what_the_job_tested(tmp_path):
    """`multihead.predict` rebuilds the ensemble from the saved config and its checkpoint."""
    matrix, sheet = small_frames(n_samples=120, n_features=20)
    overrides = write_table(tmp_path / "in", matrix, sheet)
    cfg = compose_config(
        [
            *overrides,
            "logger=none",
            "trainer.max_epochs=2",
            "callbacks.early_stopping=null",
            "callbacks.progress=null",
            "model=mlp",
            "model.ensemble=3",
        ],
        tmp_path / "run",
    )
    train(cfg)
    tested = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype={"sample_id": str})
    matrix.loc[tested.sample_id].to_csv(tmp_path / "new.csv", index_label="sample_id")
    got = predict(tmp_path / "run", tmp_path / "new.csv")
    probs = [c for c in tested.columns if "_p[" in c]
    np.testing.assert_allclose(got[probs].to_numpy(), tested[probs].to_numpy(), atol=1e-5)
