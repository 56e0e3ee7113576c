"""The step budget: a tiny cohort trains for the steps it is given, and says why it stopped."""

from __future__ import annotations

import pytest

from multihead.errors import ConfigError
from multihead.training.budget import plan_budget
from multihead.training.run import train
from multihead.training.validation import validate_config
from tests.conftest import SMALL, compose_config

TINY = [
    "data.synthetic.n_samples=120",  # 84 training samples: one batch of 128 per epoch
    "data.synthetic.n_features=60",
    "data.synthetic.n_age_features=20",
    "model.trunk.hidden=[16]",
    "model.trunk.latent=8",
    "trainer.max_epochs=25",
]


def test_default_budget_leaves_the_built_in_cohort_as_it_was():
    cfg = compose_config([])
    plan = plan_budget(cfg, n_train=1400)  # 2,000 samples, 70% for training
    assert (plan.steps_per_epoch, plan.max_epochs) == (11, 25)
    assert (plan.val_every_epochs, plan.patience_validations) == (1, 6)


def test_budget_in_steps_for_a_tiny_cohort():
    cfg = compose_config(["data.batch_size=16"])  # 84 / 16: 6 steps per epoch
    plan = plan_budget(cfg, n_train=84)
    assert plan.steps_per_epoch == 6
    assert plan.max_epochs == 42  # ceil(250 / 6)
    assert plan.val_every_epochs == 1  # 10 // 6
    assert plan.patience_validations == 10  # 60 steps / 6 steps per validation


def test_tiny_cohort_trains_the_minimum_steps(small_config):
    cfg = small_config(*TINY, "budget.min_steps=60", "budget.val_every_steps=10")
    metrics = train(cfg)
    assert metrics["steps_trained"] == 60  # not the 25 that max_epochs alone would give
    assert metrics["stop_reason"] == "max_epochs (60) reached"
    assert metrics["budget"]["val_every_epochs"] == 10


def test_steps_and_stop_reason_come_back_from_spawned_processes(small_config):
    """trainer=ddp_cpu trains in two child processes; the main process's own counters stay
    at 0, so what it records must come from the ranks (84 samples: one batch each)."""
    metrics = train(
        small_config(*TINY, "trainer=ddp_cpu", "budget.min_steps=30", "budget.val_every_steps=10")
    )
    assert metrics["world_size"] == 2
    assert metrics["steps_trained"] == 30
    assert metrics["stop_reason"] == "max_epochs (30) reached"


def test_early_stopping_counts_steps(tmp_path):
    with_stopping = [o for o in SMALL if not o.startswith("callbacks.early_stopping")]
    cfg = compose_config(
        [
            *with_stopping,
            *TINY,
            "callbacks.early_stopping.patience=100",
            "budget.min_steps=400",
            "budget.patience_steps=3",
            "budget.val_every_steps=1",
            "model.optimizer.lr=0.05",  # overfits fast: validation loss rises early
        ],
        tmp_path,
    )
    metrics = train(cfg)
    assert metrics["budget"]["patience_validations"] == 3
    assert metrics["stop_reason"].startswith("early stopping")
    assert metrics["steps_trained"] < 400


@pytest.mark.parametrize("value", [0, -5, 1.5, "many"])
def test_bad_budget_fails_before_training(value):
    with pytest.raises(ConfigError, match="budget.min_steps"):
        validate_config(compose_config([f"budget.min_steps={value}"]))
