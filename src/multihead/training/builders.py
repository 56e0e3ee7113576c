"""Turn the validated config into the objects a run needs: loss, network, module, trainer."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from lightning_fabric.plugins import CheckpointIO
from omegaconf import DictConfig

from multihead.components import build_component
from multihead.data.datamodule import CohortDataModule, PreparedCohort
from multihead.data.placement import HOST
from multihead.models.auto_size import resolve_auto
from multihead.models.losses.base import TaskTargets
from multihead.models.losses.multitask import MultiTaskLoss
from multihead.models.network import build_network
from multihead.models.weighting.base import TaskWeighting
from multihead.training.budget import FitRecord
from multihead.training.checkpoints import DirectCheckpointIO
from multihead.training.loggers import build_loggers
from multihead.training.module import MultiHeadModule
from multihead.training.resume import RandomState


def training_targets(cohort: PreparedCohort) -> dict[str, TaskTargets]:
    """Each task's labels and raw values on the training split only."""
    train = cohort.splits["train"]
    return {
        task.name: TaskTargets(cohort.labels[train, j], cohort.values[train, j])
        for j, task in enumerate(cohort.tasks)
    }


def build_loss(cfg: DictConfig, cohort: PreparedCohort) -> MultiTaskLoss:
    return build_component(
        "loss",
        cfg.loss,
        tasks=cohort.tasks,
        targets=training_targets(cohort),
        name=str(cfg.loss.name),
    )


def build_weighting(cfg: DictConfig, loss: MultiTaskLoss) -> TaskWeighting:
    return build_component("weighting", cfg.weighting, likelihoods=loss.likelihoods())


def build_module(
    cfg: DictConfig, cohort: PreparedCohort, output_dir: str | None
) -> MultiHeadModule:
    """Seeds the RNG first: same `seed` -> same initial weights for every head design (the
    loss and the weighting draw nothing from the RNG)."""
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    # `auto` values left (a module built without a training plan): chosen for this cohort
    resolve_auto(cfg, len(cohort.splits["train"]), cohort.num_features)
    loss = build_loss(cfg, cohort)
    net = build_network(cfg.model, cfg.head, loss.layout, cohort.num_features)
    weighting = build_weighting(cfg, loss)
    optimizer = instantiate(cfg.model.optimizer, _partial_=True)
    return MultiHeadModule(
        net,
        loss,
        loss.layout,
        optimizer,
        weighting,
        output_dir=output_dir,
        plots=bool(cfg.get("plots", False)),
        head_decay=dict(cfg.model.get("head_decay") or {}),
    )


def build_datamodule(cfg: DictConfig, cohort: PreparedCohort) -> CohortDataModule:
    return CohortDataModule(
        cohort,
        int(cfg.data.batch_size),
        int(cfg.data.eval_batch_size),
        shuffle_seed=int(cfg.seed),
        placement=str(cfg.data.get("placement", HOST)),
    )


def build_trainer(cfg: DictConfig, output_dir: Path) -> pl.Trainer:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a bar it may not show
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.ProgressBar)]
    callbacks.append(RandomState())  # a job resumed from a checkpoint draws as if never stopped
    callbacks.append(FitRecord())  # steps and stop reason, also from spawned processes
    loggers = build_loggers(cfg.get("logger"))
    plugins = [instantiate(p) for p in cfg.trainer.get("plugins") or ()]
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(DirectCheckpointIO())  # checkpoints written a third faster
    return instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        plugins=plugins,
        default_root_dir=str(output_dir),
        use_distributed_sampler=False,
    )
