"""`tune=optuna`: seeded TPE trials on the job's validation split, in this process.

Every trial trains on the cohort already in memory (no re-read, no new process) and is scored
by the best `tune.metric` over its validations. With `tune.folds` = 1 a trial trains on the
job's training split and validates on its validation split. With K > 1 the job's training and
validation samples together are cut into K stratified folds and the trial trains K times, each
fold validating once; its score is the mean of the K best values. On a small cohort a
validation split of ~20 samples ranks configurations mostly by chance (on the ALL cohort the
single-split choice varied from fold to fold between a 36-unit, strongly decayed net and a
421-unit 3-layer one); K folds score each trial on every non-test sample. `auto`:
`AUTO_FOLDS` when the job has fewer than `SMALL_COHORT` training + validation samples, else 1.
Hopeless trials are pruned (median rule): at validation time with one fold, after each fold
with several. The test split is never served to a trial. The best
values are written into the job's config, which then trains once more on the training split
and is tested once, as any job. The trial table goes to `tuning_trials.csv`. A best value at an
end of its range (`Param.edge`) is printed and recorded (`at_edge`): the best may lie beyond.

Optuna's own Lightning callback (optuna-integration) imports the `lightning` package, not
`pytorch_lightning` that this project uses, so `PruneOnValidation` below does the same two
things it does: report the value at each validation, and stop when the pruner says so.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from multihead.data.datamodule import PreparedCohort
from multihead.data.feature_selection import FeatureRanking
from multihead.data.splits import inner_folds
from multihead.models.trunk import AUTO
from multihead.run_folder import TUNING_TRIALS_FILE
from multihead.training.builders import build_datamodule, build_module
from multihead.training.search_space import Param, parse_space, resolve_metric, with_values

log = logging.getLogger(__name__)

AUTO_FOLDS = 3  # `tune.folds=auto` on a small cohort
SMALL_COHORT = 1000  # training + validation samples below which `auto` scores on folds


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
    """The job's config with the trial's values, on one process, writing nothing. A trial
    trains one network (`model.ensemble` is for the refit): an ensemble's members share the
    trial's values, and N of them would cost N times the tuning budget."""
    out = with_values(cfg, values)
    with open_dict(out):
        out.tune.name = "none"
        if "ensemble" in out.model:
            out.model.ensemble = 1
        out.logger = None
        out.trainer.devices = 1
        out.trainer.strategy = "auto"
        out.trainer.enable_progress_bar = False
        out.trainer.enable_checkpointing = False
        out.trainer.enable_model_summary = False
    return out


def number_of_folds(cfg: DictConfig, cohort: PreparedCohort) -> int:
    folds = cfg.tune.get("folds", 1)
    if folds == AUTO:
        rows = len(cohort.splits["train"]) + len(cohort.splits["val"])
        return AUTO_FOLDS if rows < SMALL_COHORT else 1
    return int(folds)


def trial_cohorts(cfg: DictConfig, cohort: PreparedCohort, folds: int) -> list[PreparedCohort]:
    """What each of a trial's trainings sees: the job's own split, or K folds of its training
    and validation samples (a trial only fits: its test split is never served)."""
    if folds == 1:
        return [cohort]
    rows = np.sort(np.concatenate([cohort.splits["train"], cohort.splits["val"]]))
    pairs = inner_folds(
        cohort.labels.numpy(), rows, [t.name for t in cohort.tasks], folds, int(cfg.tune.seed)
    )
    return [replace(cohort, splits={**cohort.splits, "train": tr, "val": va}) for tr, va in pairs]


def fit_trial(
    cfg: DictConfig, cohort: PreparedCohort, ranking: FeatureRanking, callback: PruneOnValidation
) -> tuple[int, float]:
    """Train one trial; returns (steps, seconds)."""
    from multihead.training.plan import plan_training  # plan_training calls tune()

    started = time.perf_counter()
    plan = plan_training(cfg, cohort, ranking=ranking, quiet=True)
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
    folds = number_of_folds(cfg, cohort)
    cohorts = trial_cohorts(cfg, cohort, folds)
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=int(tune_cfg.startup_trials),
            # with folds, a trial reports once per fold (steps 0..K-1)
            n_warmup_steps=int(tune_cfg.warmup_steps) if folds == 1 else 0,
        )
        if tune_cfg.pruning
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)
    metric = resolve_metric(cfg)
    ranking = FeatureRanking()  # each fold's rankings computed once for every trial
    started = time.perf_counter()
    print(
        f"tuning: {tune_cfg.trials} trials ({direction} {metric} on "
        + ("the validation split" if folds == 1 else f"{folds} folds of train + validation")
        + f") over {[p.name for p in used]}"
        + (
            f"; not for model={cfg.model.get('name')} head={cfg.head.get('name')}: "
            f"{[p.name for p in skipped]}"
            if skipped
            else ""
        )
    )

    def objective(trial: optuna.Trial) -> float:
        values = {p.key: p.suggest(trial) for p in used}
        config = trial_config(cfg, values)
        bests, steps, seconds, pruned = [], 0, 0.0, False
        for k, fold_cohort in enumerate(cohorts):
            # one fold: the callback reports every validation; several: once per fold below
            callback = PruneOnValidation(trial if folds == 1 else None, metric, direction)
            fold_steps, fold_seconds = fit_trial(config, fold_cohort, ranking, callback)
            steps, seconds = steps + fold_steps, seconds + fold_seconds
            if callback.pruned:
                pruned = True
                break
            if callback.best is None:
                raise RuntimeError(f"trial {trial.number}: {metric} was never logged")
            bests.append(callback.best)
            if folds > 1 and k < folds - 1:
                trial.report(float(np.mean(bests)), step=k)
                if trial.should_prune():
                    pruned = True
                    break
        trial.set_user_attr("steps", steps)
        trial.set_user_attr("seconds", round(seconds, 2))
        if folds > 1:
            trial.set_user_attr("fold_values", [round(b, 6) for b in bests])
        shown = ", ".join(f"{p.name}={_short(trial.params[p.name])}" for p in used)
        score = float(np.mean(bests)) if bests else None
        state = "pruned" if pruned else f"{metric}={score:.4g}"
        print(f"  trial {trial.number:>3}: {shown} -> {state} ({steps} steps, {seconds:.1f}s)")
        if pruned:
            raise optuna.TrialPruned()
        return score

    study.optimize(objective, n_trials=int(tune_cfg.trials))
    best = study.best_trial
    chosen = {p.key: best.params[p.name] for p in used}
    table = _trial_table(study, used)
    seconds = round(time.perf_counter() - started, 2)
    print(
        f"tuning done in {seconds:.1f}s: best trial {best.number} ({metric}="
        f"{best.value:.4g}): " + ", ".join(f"{k}={_short(v)}" for k, v in chosen.items())
    )
    at_edge = {p.name: edge for p in used if (edge := p.edge(best.params[p.name])) is not None}
    if at_edge:
        print(
            "note: best value at the edge of the search space for "
            + ", ".join(f"{name} ({end} end)" for name, end in at_edge.items())
            + ": the best may lie beyond it; widen tune.space there where the model allows"
        )
    summary = {
        "trials": int(tune_cfg.trials),
        "seed": int(tune_cfg.seed),
        "metric": metric,
        "folds": folds,
        "direction": direction,
        "best_trial": int(best.number),
        "best_value": float(best.value),
        "chosen": {p.name: best.params[p.name] for p in used},
        "at_edge": at_edge,  # name -> low/high: chosen at that end of its range
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
            "fold_values": t.user_attrs.get("fold_values"),
            "steps": t.user_attrs.get("steps"),
            "seconds": t.user_attrs.get("seconds"),
        }
        for t in study.trials
    ]
    return pd.DataFrame(rows)


def write_trials(out: Path, result: TuningResult) -> None:
    out.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(out / TUNING_TRIALS_FILE, index=False)
