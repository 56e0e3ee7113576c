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
import torch
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


#: what fit did, put into `trainer.callback_metrics` at the end of fit: a spawned strategy
#: (`trainer=ddp_cpu`) trains in child processes and sends only those metrics (and the
#: trainer's state) back to the main process, whose own step and epoch counters stay at 0
FIT_STEPS = "fit/steps"
FIT_EPOCHS = "fit/epochs"
FIT_STOPPED_EARLY = "fit/stopped_early"


class FitRecord(pl.Callback):
    """Copies the step and epoch counters and whether early stopping ended the fit into
    `trainer.callback_metrics`, which reach the main process under every strategy."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        early = any(
            isinstance(c, pl.callbacks.EarlyStopping) and c.stopped_epoch > 0
            for c in trainer.callbacks
        )
        trainer.callback_metrics.update(
            {
                FIT_STEPS: torch.tensor(trainer.global_step),
                FIT_EPOCHS: torch.tensor(trainer.current_epoch),
                FIT_STOPPED_EARLY: torch.tensor(int(early)),
            }
        )


def fit_summary(trainer: pl.Trainer) -> tuple[int, int, str]:
    """(optimizer steps, epochs, why fit ended in words) after `trainer.fit`."""
    metrics = trainer.callback_metrics
    steps = int(metrics.get(FIT_STEPS, trainer.global_step))
    epochs = int(metrics.get(FIT_EPOCHS, trainer.current_epoch))
    early = bool(metrics.get(FIT_STOPPED_EARLY, 0))
    stopping = next(
        (c for c in trainer.callbacks if isinstance(c, pl.callbacks.EarlyStopping)), None
    )
    if early and stopping is not None:
        reason = (
            f"early stopping: {stopping.monitor} did not improve for "
            f"{stopping.patience} validations"
        )
    elif trainer.max_steps not in (None, -1) and steps >= trainer.max_steps:
        reason = f"max_steps ({trainer.max_steps}) reached"
    elif trainer.interrupted:
        reason = "interrupted"
    else:
        reason = f"max_epochs ({trainer.max_epochs}) reached"
    return steps, epochs, reason
