"""The training budget in optimizer steps, so a 100-sample cohort trains as long as a large one.

An epoch of 114 samples at batch size 128 is one optimizer step: `max_epochs: 25` and an
early-stopping patience of 6 epochs would give it 25 steps in all. `budget.*` states the
budget in steps and converts it, once the training split's size is known, into what
Lightning counts (written back into the job's config, so config.yaml shows what ran):

* `trainer.max_epochs` is raised until the run can take `budget.min_steps` steps;
* validation runs every `max(1, val_every_steps // steps_per_epoch)` epochs (at most
  `max_epochs`, which is rounded up to a multiple of it, so the last epochs are validated);
* early stopping waits `ceil(patience_steps / steps between validations)` validations
  (instead of `callbacks.early_stopping.patience`).

Cohorts with many steps per epoch are left as configured: the defaults (250 steps, 60 steps
of patience) change nothing for the built-in cohort (11 steps per epoch, 25 epochs).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pytorch_lightning as pl
from omegaconf import DictConfig, open_dict

from multihead.errors import ConfigError

BUDGET_KEYS = ("min_steps", "patience_steps", "val_every_steps")


def devices(cfg: DictConfig) -> int:
    """Processes sharing the training split (each draws ceil(n / processes) samples)."""
    value = cfg.trainer.get("devices", 1)
    return int(value) if isinstance(value, int) and value > 0 else 1


@dataclass(frozen=True)
class StepBudget:
    """What the budget became for this cohort, in Lightning's units and in steps."""

    steps_per_epoch: int
    max_epochs: int
    val_every_epochs: int
    patience_validations: int | None

    @property
    def max_steps(self) -> int:
        return self.steps_per_epoch * self.max_epochs

    def describe(self) -> dict:
        return {**asdict(self), "max_steps": self.max_steps}


def check_budget(cfg: DictConfig) -> None:
    """ConfigError for a budget key that is not null or a positive integer."""
    budget = cfg.get("budget") or {}
    unknown = sorted(set(budget) - set(BUDGET_KEYS))
    if unknown:
        raise ConfigError(f"budget: unknown keys {unknown}; known: {list(BUDGET_KEYS)}")
    for key in BUDGET_KEYS:
        value = budget.get(key)
        is_count = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        if value is not None and not is_count:
            raise ConfigError(f"budget.{key} must be null or an integer >= 1, got {value!r}")


def plan_budget(cfg: DictConfig, n_train: int) -> StepBudget:
    budget = cfg.get("budget") or {}
    per_process = math.ceil(n_train / devices(cfg))
    steps_per_epoch = max(1, math.ceil(per_process / int(cfg.data.batch_size)))
    max_epochs = int(cfg.trainer.get("max_epochs") or 1)
    if budget.get("min_steps"):
        max_epochs = max(max_epochs, math.ceil(int(budget.min_steps) / steps_per_epoch))
    every = int(cfg.trainer.get("check_val_every_n_epoch") or 1)
    if budget.get("val_every_steps"):
        every = max(every, int(budget.val_every_steps) // steps_per_epoch)
    every = min(every, max_epochs)  # at least one validation (and checkpoint)
    max_epochs = math.ceil(max_epochs / every) * every  # the last epochs are validated too
    stopping = (cfg.get("callbacks") or {}).get("early_stopping")
    patience = None
    if stopping is not None:
        patience = int(stopping.get("patience", 3))
        if budget.get("patience_steps"):
            steps_per_check = steps_per_epoch * every
            patience = max(1, math.ceil(int(budget.patience_steps) / steps_per_check))
    return StepBudget(steps_per_epoch, max_epochs, every, patience)


def apply_budget(cfg: DictConfig, n_train: int) -> StepBudget:
    """Writes the budget into `cfg.trainer` and `cfg.callbacks.early_stopping`."""
    plan = plan_budget(cfg, n_train)
    with open_dict(cfg):
        cfg.trainer.max_epochs = plan.max_epochs
        cfg.trainer.check_val_every_n_epoch = plan.val_every_epochs
        if plan.patience_validations is not None:
            cfg.callbacks.early_stopping.patience = plan.patience_validations
    return plan


def stop_reason(trainer: pl.Trainer) -> str:
    """Why fit ended, in words: early stopping, the step limit or the epoch limit."""
    for callback in trainer.callbacks:
        if isinstance(callback, pl.callbacks.EarlyStopping) and callback.stopped_epoch > 0:
            return (
                f"early stopping: {callback.monitor} did not improve for "
                f"{callback.patience} validations"
            )
    if trainer.max_steps not in (None, -1) and trainer.global_step >= trainer.max_steps:
        return f"max_steps ({trainer.max_steps}) reached"
    if trainer.interrupted:
        return "interrupted"
    return f"max_epochs ({trainer.max_epochs}) reached"
