"""Turn the validated config into the objects a run needs: loss, network, module, trainer."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig

from multihead.data.datamodule import CohortDataModule, PreparedCohort
from multihead.models.losses.base import MultiTaskLoss
from multihead.components import build_component
from multihead.models.network import build_network
from multihead.tasks import TaskLayout
from multihead.training.loggers import build_loggers
from multihead.training.module import MultiHeadModule


def build_loss(cfg: DictConfig) -> MultiTaskLoss:
    return build_component("loss", cfg.loss)


def build_module(cfg: DictConfig, cohort: PreparedCohort, output_dir: str | None) -> MultiHeadModule:
    """Seeds the RNG first: same `seed` -> same initial weights for every head design."""
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    loss = build_loss(cfg)
    layout = TaskLayout(cohort.tasks, tuple(loss.output_size(t) for t in cohort.tasks))
    net = build_network(cfg.model, cfg.head, layout, cohort.num_features)
    optimizer = instantiate(cfg.model.optimizer, _partial_=True)
    return MultiHeadModule(net, loss, layout, optimizer, output_dir=output_dir)


def build_datamodule(cfg: DictConfig, cohort: PreparedCohort) -> CohortDataModule:
    return CohortDataModule(cohort, int(cfg.data.batch_size), int(cfg.data.eval_batch_size),
                            shuffle_seed=int(cfg.seed))


def build_trainer(cfg: DictConfig, output_dir: Path) -> pl.Trainer:
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    loggers = build_loggers(cfg.get("logger"))
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                       default_root_dir=str(output_dir), use_distributed_sampler=False)
