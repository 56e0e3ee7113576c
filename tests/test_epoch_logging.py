"""The epoch-end values logged at once (no `self.log` per value): the rows, steps and values
Lightning's own epoch-end logging writes, and the progress bar's values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from multihead.data.datamodule import prepare_cohort
from multihead.training.builders import build_datamodule, build_module, build_trainer
from multihead.training.steps import STEPS_PER_CALL

EPOCHS = 3


class BatchObjectives(pl.Callback):
    """Each training batch's objective and size, per epoch (read from the network's and the
    weighting's forward passes: a training call may take several batches, training/steps.py)."""

    def __init__(self, module) -> None:
        self.epochs: list[list[tuple[float, int]]] = []
        self.size = 0
        module.net.register_forward_hook(self.batch_size)
        module.weighting.register_forward_hook(self.objective)

    def batch_size(self, net, inputs, output):
        self.size = int(inputs[0].shape[0])

    def objective(self, weighting, inputs, output):
        if weighting.training:
            self.epochs[-1].append((float(output), self.size))

    def on_train_epoch_start(self, trainer, pl_module):
        self.epochs.append([])


@pytest.fixture(scope="module", params=[1, STEPS_PER_CALL], ids=["one-step", "chunked"])
def fitted(tmp_path_factory, request):
    from tests.conftest import SMALL, compose_config

    out = tmp_path_factory.mktemp("epoch_logging")
    cfg = compose_config(
        [*SMALL, "logger=csv", "weighting=uncertainty", f"trainer.max_epochs={EPOCHS}"], out
    )
    cohort = prepare_cohort(cfg.data)
    trainer = build_trainer(cfg, out)
    module = build_module(cfg, cohort, None)
    module.most_steps_per_call = request.param
    objectives = BatchObjectives(module)
    trainer.callbacks.append(objectives)
    trainer.fit(module, datamodule=build_datamodule(cfg, cohort))
    assert module.steps_per_call == request.param
    history = pd.read_csv(Path(cfg.paths.output_dir) / "csv" / "metrics.csv")
    return trainer, objectives, history, cohort


def test_one_training_row_per_epoch_at_the_epochs_last_step(fitted):
    trainer, objectives, history, cohort = fitted
    train = history.dropna(subset=["train/loss"])
    assert list(train["epoch"]) == list(range(EPOCHS))
    batches = [len(epoch) for epoch in objectives.epochs]
    assert list(train["step"]) == list(np.cumsum(batches) - 1)  # Lightning's fit loop's step
    names = [f"train/{t.name}/loss" for t in cohort.tasks]
    names += [f"weighting/{t.name}/weight" for t in cohort.tasks]
    assert train[names].notna().all().all()
    assert train.filter(like="val/").isna().all().all()  # validation rows are their own


def test_training_loss_is_the_sample_weighted_mean_of_the_batch_objectives(fitted):
    _, objectives, history, _ = fitted
    train = history.dropna(subset=["train/loss"])
    for logged, epoch in zip(train["train/loss"], objectives.epochs, strict=True):
        values, sizes = np.array(epoch).T
        assert logged == pytest.approx(np.average(values, weights=sizes), rel=1e-5)


def test_progress_bar_shows_the_last_training_loss_and_joint_accuracy(fitted):
    trainer, _, history, _ = fitted
    bar = trainer.progress_bar_metrics
    last_train = history.dropna(subset=["train/loss"]).iloc[-1]
    last_val = history.dropna(subset=["val/joint_accuracy"]).iloc[-1]
    assert bar["train/loss"] == pytest.approx(last_train["train/loss"], rel=1e-7)
    assert bar["val_joint"] == pytest.approx(last_val["val/joint_accuracy"], rel=1e-7)
    assert float(trainer.callback_metrics["val_joint"]) == bar["val_joint"]
    assert float(trainer.callback_metrics["train/loss"]) == bar["train/loss"]


def test_each_tasks_validation_loss_is_its_mean_loss_over_the_validation_split(fitted):
    """`val/<task>/loss` (beside `train/<task>/loss`): the last validation ran on the weights
    the fit ended with, so the task losses of one pass over the validation rows match it."""
    trainer, _, history, cohort = fitted
    module = trainer.lightning_module
    rows = cohort.splits["val"]
    module.eval()
    with torch.no_grad():
        x, y, v = (t[rows] for t in (cohort.features, cohort.labels, cohort.values))
        _, parts = module.loss_fn(module.net(x), y, v)
    last_val = history.dropna(subset=["val/joint_accuracy"]).iloc[-1]
    for task in cohort.tasks:
        assert last_val[f"val/{task.name}/loss"] == pytest.approx(float(parts[task.name]), rel=1e-5)
