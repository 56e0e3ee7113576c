"""Prepared cohort (labels, split, standardisation) and the Lightning data module over it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from multihead.data.batches import StridedEvalSampler, TensorRows, keep_batch
from multihead.data.labels import continuous_targets, encode_labels
from multihead.data.sources import load_raw_cohort
from multihead.data.splits import stratified_split
from multihead.data.standardize import Standardizer
from multihead.tasks import Task, tasks_from_config


@dataclass
class PreparedCohort:
    """Everything a run needs from the data, already validated, split and standardised."""

    features: torch.Tensor  # float32 (n, p), standardised with train statistics
    labels: torch.Tensor  # int64 (n, tasks), -1 = missing
    values: torch.Tensor  # float32 (n, tasks), raw value behind binned tasks (years), else NaN
    sample_ids: list[str]
    feature_names: list[str]
    tasks: tuple[Task, ...]
    splits: dict[str, np.ndarray]
    standardizer: Standardizer
    informative: dict[str, list[str]] = field(default_factory=dict)

    @property
    def num_features(self) -> int:
        return int(self.features.shape[1])


def prepare_cohort(cfg: DictConfig) -> PreparedCohort:
    """Load, label, split and standardise; every data error surfaces here, before training."""
    tasks = tasks_from_config(cfg.tasks)
    raw = load_raw_cohort(cfg)
    labels = encode_labels(raw.samples, tasks, raw.source)
    splits = stratified_split(labels, [t.name for t in tasks], float(cfg.val_fraction),
                              float(cfg.test_fraction), int(cfg.seed))
    features = np.ascontiguousarray(raw.features, dtype=np.float32)
    standardizer = Standardizer.fit(features, splits["train"])
    standardizer.transform_(features)
    return PreparedCohort(
        features=torch.from_numpy(features),
        labels=torch.from_numpy(labels),
        values=torch.from_numpy(continuous_targets(raw.samples, tasks)),
        sample_ids=[str(s) for s in raw.samples.index],
        feature_names=list(raw.feature_names),
        tasks=tasks,
        splits=splits,
        standardizer=standardizer,
        informative=raw.informative,
    )


class CohortDataModule(pl.LightningDataModule):
    """Serves the prepared cohort; evaluation is unpadded on every number of processes."""

    def __init__(self, cohort: PreparedCohort, batch_size: int, eval_batch_size: int,
                 shuffle_seed: int) -> None:
        super().__init__()
        self.cohort = cohort
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.shuffle_seed = shuffle_seed

    def _rows(self, split: str) -> TensorRows:
        c = self.cohort
        return TensorRows(torch.from_numpy(c.splits[split]), x=c.features, y=c.labels,
                          value=c.values)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rows = self._rows("train")
        rank, world = self._world()
        if world > 1:
            sampler = DistributedSampler(rows, num_replicas=world, rank=rank, shuffle=True,
                                         seed=self.shuffle_seed)
        else:
            generator = torch.Generator().manual_seed(self.shuffle_seed)
            sampler = RandomSampler(rows, generator=generator)
        return DataLoader(rows, batch_size=self.batch_size, sampler=sampler,
                          collate_fn=keep_batch)

    def _eval_loader(self, split: str) -> DataLoader:
        rows = self._rows(split)
        rank, world = self._world()
        return DataLoader(rows, batch_size=self.eval_batch_size,
                          sampler=StridedEvalSampler(len(rows), rank, world),
                          collate_fn=keep_batch)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def split_frame(self) -> pd.DataFrame:
        """Which sample went where: saved with every run so splits can be audited."""
        rows = [(self.cohort.sample_ids[i], name) for name, idx in self.cohort.splits.items()
                for i in idx]
        return pd.DataFrame(rows, columns=["sample_id", "split"])
