"""`tune=optuna`: seeded TPE trials on the job's validation split, in this process.

Every trial trains on the training split of the cohort already in memory (no re-read, no new
process) and is scored by the best `tune.metric` over its validations; hopeless trials are
pruned (median rule) at validation time. The test split is never served to a trial. The best
values are written into the job's config, which then trains once more on the training split
and is tested once, as any job. The trial table goes to `tuning_trials.csv`.

Optuna's own Lightning callback (optuna-integration) imports the `lightning` package, not
`pytorch_lightning` that this project uses, so `PruneOnValidation` below does the same two
things it does: report the value at each validation, and stop when the pruner says so.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from multihead.data.datamodule import PreparedCohort
from multihead.data.feature_selection import variance_order
from multihead.run_folder import TUNING_TRIALS_FILE
from multihead.training.builders import build_datamodule, build_module
from multihead.training.search_space import Param, parse_space, with_values

log = logging.getLogger(__name__)


class PruneOnValidation(pl.Callback):
    """Tracks the best monitored value; reports it to the trial and stops when pruned."""

    def __init__(self, trial: Any, monitor: str, direction: str) -> None:
        self.trial, self.monitor, self.sign = trial, monitor, 1 if direction == "minimize" else -1
        self.best: float | None = None
        self.pruned = False

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        value = float(value)
        if math.isfinite(value) and (
            self.best is None or self.sign * value < self.sign * self.best
        ):
            self.best = value
        if self.trial is None or self.best is None:
            return
        self.trial.report(self.best, step=int(trainer.global_step))
        if self.trial.should_prune():
            self.pruned = True
            trainer.should_stop = True


@dataclass
class TuningResult:
    chosen: dict[str, Any]  # config key -> value
    table: pd.DataFrame
    summary: dict = field(default_factory=dict)


def trial_config(cfg: DictConfig, values: dict[str, Any]) -> DictConfig:
    """The job's config with the trial's values, on one process, writing nothing."""
    out = with_values(cfg, values)
    with open_dict(out):
        out.tune.name = "none"
        out.logger = None
        out.trainer.devices = 1
        out.trainer.strategy = "auto"
        out.trainer.enable_progress_bar = False
        out.trainer.enable_checkpointing = False
        out.trainer.enable_model_summary = False
    return out


def fit_trial(
    cfg: DictConfig, cohort: PreparedCohort, order, callback: PruneOnValidation
) -> tuple[int, float]:
    """Train one trial; returns (steps, seconds)."""
    from multihead.training.plan import plan_training  # plan_training calls tune()

    started = time.perf_counter()
    plan = plan_training(cfg, cohort, order=order, quiet=True)
    module = build_module(cfg, plan.cohort, output_dir=None)
    datamodule = build_datamodule(cfg, plan.cohort)
    stopping = (cfg.get("callbacks") or {}).get("early_stopping")
    callbacks = [callback] + ([instantiate(stopping)] if stopping is not None else [])
    with tempfile.TemporaryDirectory() as root:
        trainer = instantiate(
            cfg.trainer,
            callbacks=callbacks,
            logger=False,
            default_root_dir=root,
            use_distributed_sampler=False,
        )
        trainer.fit(module, datamodule=datamodule)
    return int(trainer.global_step), time.perf_counter() - started


def tune(cfg: DictConfig, cohort: PreparedCohort) -> TuningResult:
    """Run the study; the caller applies `chosen` to the job's config."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tune_cfg = cfg.tune
    used, skipped = parse_space(cfg)
    direction = str(tune_cfg.direction)
    sampler = optuna.samplers.TPESampler(
        seed=int(tune_cfg.seed), n_startup_trials=int(tune_cfg.startup_trials)
    )
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=int(tune_cfg.startup_trials),
            n_warmup_steps=int(tune_cfg.warmup_steps),
        )
        if tune_cfg.pruning
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)
    order = variance_order(cohort)  # ranked once for every trial's top-k
    started = time.perf_counter()
    print(
        f"tuning: {tune_cfg.trials} trials ({direction} {tune_cfg.metric} on the validation "
        f"split) over {[p.name for p in used]}"
        + (
            f"; not for model={cfg.model.get('name')}: {[p.name for p in skipped]}"
            if skipped
            else ""
        )
    )

    def objective(trial: optuna.Trial) -> float:
        values = {p.key: p.suggest(trial) for p in used}
        callback = PruneOnValidation(trial, str(tune_cfg.metric), direction)
        steps, seconds = fit_trial(trial_config(cfg, values), cohort, order, callback)
        trial.set_user_attr("steps", steps)
        trial.set_user_attr("seconds", round(seconds, 2))
        shown = ", ".join(f"{p.name}={_short(trial.params[p.name])}" for p in used)
        state = "pruned" if callback.pruned else f"{tune_cfg.metric}={callback.best:.4g}"
        print(f"  trial {trial.number:>3}: {shown} -> {state} ({steps} steps, {seconds:.1f}s)")
        if callback.pruned:
            raise optuna.TrialPruned()
        if callback.best is None:
            raise RuntimeError(f"trial {trial.number}: {tune_cfg.metric} was never logged")
        return callback.best

    study.optimize(objective, n_trials=int(tune_cfg.trials))
    best = study.best_trial
    chosen = {p.key: best.params[p.name] for p in used}
    table = _trial_table(study, used)
    seconds = round(time.perf_counter() - started, 2)
    print(
        f"tuning done in {seconds:.1f}s: best trial {best.number} ({tune_cfg.metric}="
        f"{best.value:.4g}): " + ", ".join(f"{k}={_short(v)}" for k, v in chosen.items())
    )
    summary = {
        "trials": int(tune_cfg.trials),
        "seed": int(tune_cfg.seed),
        "metric": str(tune_cfg.metric),
        "direction": direction,
        "best_trial": int(best.number),
        "best_value": float(best.value),
        "chosen": {p.name: best.params[p.name] for p in used},
        "skipped": [p.name for p in skipped],
        "pruned": int((table["state"] == "PRUNED").sum()),
        "seconds": seconds,
        "table": table.astype(object).where(table.notna(), None).to_dict(orient="records"),
    }
    return TuningResult(chosen, table, summary)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _trial_table(study, used: list[Param]) -> pd.DataFrame:
    rows = [
        {
            "trial": t.number,
            "state": t.state.name,
            "value": t.value,
            **{p.name: t.params.get(p.name) for p in used},
            "steps": t.user_attrs.get("steps"),
            "seconds": t.user_attrs.get("seconds"),
        }
        for t in study.trials
    ]
    return pd.DataFrame(rows)


def write_trials(out: Path, result: TuningResult) -> None:
    out.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(out / TUNING_TRIALS_FILE, index=False)
