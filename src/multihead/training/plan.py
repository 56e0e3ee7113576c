"""What a job decides once the cohort is loaded and before it trains: tuned values, `auto`
values, features, batch size, step budget. Every choice is written into the job's config (so
config.yaml shows what ran) and printed; `TrainingPlan.results` adds them and the steps taken
to metrics.json."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf, open_dict

from multihead.data.datamodule import PreparedCohort
from multihead.data.feature_selection import FeatureRanking, model_selection, select_top_k
from multihead.models.auto_size import resolve_auto
from multihead.models.trunk import FULL_BATCH
from multihead.training.budget import StepBudget, apply_budget, devices, fit_summary

log = logging.getLogger(__name__)


@dataclass
class TrainingPlan:
    cohort: PreparedCohort
    budget: StepBudget
    record: dict = field(default_factory=dict)  # extra metrics.json fields

    def fitted(self, trainer: pl.Trainer, quiet: bool = False) -> None:
        """Steps taken and why training stopped; call right after fit (testing a checkpoint
        restores the callbacks' state)."""
        steps, epochs, reason = fit_summary(trainer)
        if not quiet:
            print(f"trained {steps} optimizer steps ({epochs} epochs): {reason}")
        self.record.update({"steps_trained": steps, "stop_reason": reason})

    def results(self) -> dict:
        """The plan's choices, the budget and what training did, for metrics.json."""
        return {**self.record, "budget": self.budget.describe()}


def resolve_batch_size(cfg: DictConfig, n_train: int) -> None:
    """`model.batch_size` (an integer or `full`), when set, replaces `data.batch_size`."""
    chosen = cfg.model.get("batch_size")
    if chosen is None:
        return
    if chosen == FULL_BATCH:
        chosen = math.ceil(n_train / devices(cfg))
    with open_dict(cfg):
        cfg.data.batch_size = int(chosen)


def choose_auto(cfg: DictConfig, cohort: PreparedCohort, quiet: bool = False) -> dict:
    """`model=auto`'s values for this cohort, written into `cfg` and printed."""
    chosen = resolve_auto(cfg, len(cohort.splits["train"]), cohort.num_features)
    if chosen and not quiet:
        print(
            f"model=auto for {len(cohort.splits['train'])} training samples x "
            f"{cohort.num_features} features: "
            + ", ".join(f"{k.split('.')[-1]}={v}" for k, v in chosen.items())
        )
    return chosen


def run_tuning(cfg: DictConfig, cohort: PreparedCohort) -> dict:
    """`tune=optuna`: the study's best values written into `cfg`; its summary returned."""
    from multihead.training.tuning import tune, write_trials

    result = tune(cfg, cohort)
    with open_dict(cfg):
        for key, value in result.chosen.items():
            OmegaConf.update(cfg, key, value, merge=False)
    write_trials(Path(cfg.paths.output_dir), result)
    return result.summary


def plan_training(
    cfg: DictConfig,
    cohort: PreparedCohort,
    ranking: FeatureRanking | None = None,
    quiet: bool = False,
    tuning: bool = True,
) -> TrainingPlan:
    """Tuning (`tune=optuna`, unless `tuning=False`), `auto` values, features (`model.top_k`),
    batch size, then the step budget that depends on them. `ranking`: feature rankings
    already computed (tuning reuses them across trials)."""
    record = {}
    if tuning and (cfg.get("tune") or {}).get("name", "none") != "none":
        record["tuning"] = run_tuning(cfg, cohort)
    chosen = choose_auto(cfg, cohort, quiet)
    if chosen:
        record["auto"] = {k.split(".")[-1]: v for k, v in chosen.items()}
    cohort = select_top_k(cohort, cfg.model.get("top_k"), model_selection(cfg.model), ranking)
    n_train = len(cohort.splits["train"])
    resolve_batch_size(cfg, n_train)
    budget = apply_budget(cfg, n_train)
    if quiet:
        return TrainingPlan(cohort, budget, record)
    log.info(
        "budget: %d training samples, %d features, batch size %d -> %d steps per epoch, "
        "up to %d epochs (%d steps), validation every %d epoch(s), patience %s validations",
        n_train,
        cohort.num_features,
        int(cfg.data.batch_size),
        budget.steps_per_epoch,
        budget.max_epochs,
        budget.max_steps,
        budget.val_every_epochs,
        budget.patience_validations,
    )
    return TrainingPlan(cohort, budget, record)
