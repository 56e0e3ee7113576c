"""One training job: validate, prepare data, fit, test with the best checkpoint, write results."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from multihead.data.datamodule import prepare_cohort
from multihead.metrics.collapse import add_head_warnings
from multihead.reporting.tables import print_run_table
from multihead.run_folder import (
    FINISHED_FACT,
    HISTORY_FILE,
    confusion_tasks,
    read_confusion,
    read_metrics,
    write_inputs,
    write_metrics,
)
from multihead.training.builders import build_datamodule, build_module, build_trainer
from multihead.training.plan import plan_training
from multihead.training.resume import JobStart
from multihead.training.validation import validate_config

log = logging.getLogger(__name__)


def describe(cfg: DictConfig) -> dict:
    """What this run is, in the words a comparison table uses."""
    return {
        "head": cfg.head.name,
        "loss": cfg.loss.name,
        "weighting": cfg.weighting.name,
        "seed": int(cfg.seed),
        "data": cfg.data.get("name", cfg.data.source),
        "data_seed": int(cfg.data.seed),
        # the replicate: which partition into outer folds and which fold is the test set
        "cv_folds": cfg.data.get("cv", {}).get("folds"),
        "cv_repeat": cfg.data.get("cv", {}).get("repeat", 0),
        "cv_fold": cfg.data.get("cv", {}).get("fold", 0),
    }


@contextmanager
def epoch_history_kept(out: Path) -> Iterator[None]:
    """Under ddp_spawn the test stage rebuilds the CSV logger in fresh processes, which starts
    csv/metrics.csv anew and loses the per-epoch history of fit; put that history back (the
    test scalars are in metrics.json). On one process the test row is appended instead."""
    history = out / HISTORY_FILE
    saved = history.read_text() if history.exists() else None
    yield
    if saved is not None and (
        not history.exists() or len(history.read_text().splitlines()) < len(saved.splitlines())
    ):
        history.write_text(saved)


def train(cfg: DictConfig) -> dict | None:
    """Run one job; returns the test metrics that were written to `metrics.json`.

    In a job whose ranks are separate processes (submitit tasks, see
    `training.launchers`) every rank runs this function; rank 0 alone writes the job's files
    and prints, and the other ranks return None after testing."""
    OmegaConf.resolve(cfg)  # spawned DDP workers have no Hydra context to resolve `${hydra:..}`
    validate_config(cfg)
    started = time.perf_counter()
    leader = rank_zero_only.rank == 0
    out = Path(cfg.paths.output_dir)
    start = JobStart(out, cfg)  # the folder may hold this job finished, or interrupted
    if start.finished is not None:
        if leader:
            print(f"already finished, skipped: {out}", flush=True)
        return start.finished if leader else None
    # batch size, features, step budget
    plan = plan_training(cfg, prepare_cohort(cfg.data), quiet=not leader)
    cohort = plan.cohort
    if leader:
        start.begin()  # the folder, its requested config; an earlier attempt's results dropped
    module = build_module(cfg, cohort, output_dir=str(out))
    datamodule = build_datamodule(cfg, cohort)
    trainer = build_trainer(cfg, out)
    if leader:
        write_inputs(out, cfg, datamodule.split_frame(), cohort.report, cohort.informative)
    trainer.fit(module, datamodule=datamodule, ckpt_path=start.checkpoint)
    plan.fitted(trainer, quiet=not leader)  # before testing reloads the callbacks
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    with epoch_history_kept(out) if leader else nullcontext():
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None, verbose=False)
    if not leader:
        return None
    if best:
        module.load_weights(best)  # learned task weights below are the tested model's
    metrics = read_metrics(out)
    metrics.update(describe(cfg))
    metrics.update(
        {
            "num_parameters": module.parameter_counts()["model"],
            "parameters": module.parameter_counts(),
            "task_losses": module.loss_fn.task_loss_names(),
            "task_weights": module.weighting.task_weights(),
            "num_features": cohort.num_features,
            "split_sizes": {k: int(len(v)) for k, v in cohort.splits.items()},
            "best_checkpoint": str(Path(best).relative_to(out)) if best else None,
            "epochs_trained": int(trainer.current_epoch),
            "world_size": int(trainer.world_size),  # processes that trained and tested
            **plan.results(),
            FINISHED_FACT: round(time.perf_counter() - started, 2),  # seconds, written last
        }
    )
    confusions = {t: read_confusion(out, t).to_numpy() for t in confusion_tasks(out)}
    add_head_warnings(metrics, confusions, cohort.tasks)  # a collapsed head is never silent
    write_metrics(out, metrics)
    d = describe(cfg)
    print_run_table(
        metrics,
        f"test metrics: head={d['head']} loss={d['loss']} "
        f"weighting={d['weighting']} seed={d['seed']} "
        f"parameters={metrics['num_parameters']:,}\nfolder: {out}",
    )
    return metrics


def evaluate_checkpoint(cfg: DictConfig, checkpoint: str | Path) -> dict:
    """Test a saved checkpoint on the config's test split, writing the usual artifacts.

    The cohort and split are rebuilt from `data.*` (fixed by `data.seed`), so a checkpoint
    trained on several processes can be re-measured on one, or the reverse.
    """
    OmegaConf.resolve(cfg)
    validate_config(cfg)
    cohort = plan_training(cfg, prepare_cohort(cfg.data), tuning=False).cohort
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = build_module(cfg, cohort, output_dir=str(out))
    trainer = build_trainer(cfg, out)
    trainer.test(
        module, datamodule=build_datamodule(cfg, cohort), ckpt_path=str(checkpoint), verbose=False
    )
    return read_metrics(out)
