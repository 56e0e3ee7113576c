"""Prepared cohort (labels, split, preprocessing) and the Lightning data module over it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from multihead.data.batches import StridedEvalSampler, TensorRows, keep_batch
from multihead.data.data_report import log_report
from multihead.data.labels import LabelPolicy, continuous_targets, label_samples
from multihead.data.lazy_rows import LazyRows
from multihead.data.matrix import DenseMatrix, FeatureMatrix, as_matrix
from multihead.data.placement import (
    DEVICE,
    HOST,
    DeviceBatches,
    PrefetchToDevice,
    resolve_placement,
)
from multihead.data.preprocess import Preprocessor, PreprocessSettings
from multihead.data.sources import load_raw_cohort
from multihead.data.splits import CrossValidation, cv_split, stratified_split
from multihead.errors import DataError
from multihead.tasks import Task, tasks_from_config


@dataclass
class PreparedCohort:
    """Everything a run needs from the data, already validated, split and preprocessed."""

    features: torch.Tensor | LazyRows  # (n, p) model inputs; LazyRows: densified per batch
    labels: torch.Tensor  # int64 (n, tasks), -1 = missing
    values: torch.Tensor  # float32 (n, tasks), raw value behind binned tasks (years), else NaN
    sample_ids: list[str]
    feature_names: list[str]
    tasks: tuple[Task, ...]
    splits: dict[str, np.ndarray]
    informative: dict[str, list[str]] = field(default_factory=dict)
    preprocessor: Preprocessor | None = None
    report: dict = field(default_factory=dict)
    cv: CrossValidation = CrossValidation()
    outer_folds: np.ndarray | None = None  # with cross-validation: every sample's outer fold

    @property
    def num_features(self) -> int:
        return int(self.features.shape[1])

    def feature_rows(self, rows: np.ndarray) -> np.ndarray:
        """Model inputs of these samples as numpy, for a dense tensor or sparse/backed rows
        alike (`features.numpy()` exists for the dense case only)."""
        return self.features[torch.as_tensor(rows, dtype=torch.long)].numpy()


def _model_inputs(matrix: FeatureMatrix, preprocessor: Preprocessor) -> torch.Tensor | LazyRows:
    """Dense: transformed once in its own buffer. Sparse/backed: per batch."""
    if isinstance(matrix, DenseMatrix):
        return torch.from_numpy(preprocessor.transform_dense_inplace(matrix))
    return LazyRows(matrix, preprocessor)


def prepare_cohort(cfg: DictConfig) -> PreparedCohort:
    """Load, label, split and preprocess; every data error surfaces here, before training."""
    tasks = tasks_from_config(cfg.tasks)
    policy = LabelPolicy.from_config(cfg.get("labels"))
    cv = CrossValidation.from_config(cfg.get("cv"))
    settings = PreprocessSettings.from_config(cfg.get("preprocess"))
    raw = load_raw_cohort(cfg)
    labelled = label_samples(raw.samples, tasks, raw.source, policy)
    samples = raw.samples[labelled.keep]
    sample_ids = [str(s) for s in samples.index]
    names = [t.name for t in labelled.tasks]
    classes = [t.classes for t in labelled.tasks]
    if cv.enabled:
        splits, fold_of = cv_split(labelled.codes, names, float(cfg.val_fraction), cv, classes)
    else:
        fold_of = None
        splits = stratified_split(
            labelled.codes,
            names,
            float(cfg.val_fraction),
            float(cfg.test_fraction),
            int(cfg.seed),
            class_names=classes,
        )
    matrix = as_matrix(raw.features).select_rows(raw.matrix_rows()[labelled.keep])
    preprocessor = Preprocessor.fit(
        matrix,
        splits["train"],
        raw.feature_names,
        sample_ids,
        settings,
        raw.matrix_source or raw.source,
    )
    report = {**raw.report, "labels": labelled.report, "features": preprocessor.report}
    log_report(report)
    return PreparedCohort(
        features=_model_inputs(matrix, preprocessor),
        labels=torch.from_numpy(labelled.codes),
        values=torch.from_numpy(continuous_targets(samples, labelled.tasks)),
        sample_ids=sample_ids,
        feature_names=preprocessor.feature_names,
        tasks=labelled.tasks,
        splits=splits,
        informative=raw.informative,
        preprocessor=preprocessor,
        report=report,
        cv=cv,
        outer_folds=fold_of,
    )


class CohortDataModule(pl.LightningDataModule):
    """Serves the prepared cohort; evaluation is unpadded on every number of processes."""

    def __init__(
        self,
        cohort: PreparedCohort,
        batch_size: int,
        eval_batch_size: int,
        shuffle_seed: int,
        placement: str = HOST,
    ) -> None:
        super().__init__()
        self.cohort = cohort
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.shuffle_seed = shuffle_seed
        self.placement = placement  # data.placement: auto, device or host (data/placement.py)
        # most optimizer steps one training call takes with device placement (StepChunk);
        # set by the training side where that is safe (multihead.training.steps)
        self.steps_per_call = 1
        # the training order's generator: saved in checkpoints, so a resumed fit reshuffles
        # exactly as an uninterrupted one would
        self._shuffle: torch.Generator | None = None  # made on first use

    @property
    def shuffle(self) -> torch.Generator:
        if self._shuffle is None:
            self._shuffle = torch.Generator().manual_seed(self.shuffle_seed)
        return self._shuffle

    def __getstate__(self) -> dict:
        """ddp_spawn pickles the data module, and a torch.Generator fails there (its shared
        state cannot be rebuilt): it travels as its state's bytes."""
        state = self.__dict__.copy()
        if self._shuffle is not None:
            state["_shuffle"] = bytes(self._shuffle.get_state().numpy())
        return state

    def __setstate__(self, state: dict) -> None:
        saved = state.get("_shuffle")
        if isinstance(saved, bytes):
            generator = torch.Generator()
            generator.set_state(torch.frombuffer(bytearray(saved), dtype=torch.uint8))
            state["_shuffle"] = generator
        self.__dict__.update(state)

    def _rows(self, split: str) -> TensorRows:
        c = self.cohort
        return TensorRows(
            torch.from_numpy(c.splits[split]), x=c.features, y=c.labels, value=c.values
        )

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _device(self) -> torch.device:
        return self.trainer.strategy.root_device if self.trainer else torch.device("cpu")

    def resolved_placement(self) -> str:
        """`device` or `host`: where this job's training batches are drawn."""
        return resolve_placement(
            self.placement, self.cohort.features, self._device(), self._world()[1]
        )

    def train_dataloader(self) -> DataLoader | DeviceBatches | PrefetchToDevice:
        rank, world = self._world()
        device = self._device()
        rows = self._rows("train")  # the one owner of which rows a split serves
        if self.resolved_placement() == DEVICE:
            return DeviceBatches(
                rows.rows,
                rows.tensors,
                self.batch_size,
                self.shuffle,
                device,
                steps_per_call=self.steps_per_call,
            )
        if world > 1:
            sampler = DistributedSampler(
                rows, num_replicas=world, rank=rank, shuffle=True, seed=self.shuffle_seed
            )
        else:
            sampler = RandomSampler(rows, generator=self.shuffle)
        cuda = device.type == "cuda"
        loader = DataLoader(
            rows,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=keep_batch,
            pin_memory=cuda,  # pinned: copied to the GPU without blocking
        )
        return PrefetchToDevice(loader, device) if cuda else loader

    def _eval_loader(self, split: str) -> DataLoader:
        rows = self._rows(split)
        rank, world = self._world()
        return DataLoader(
            rows,
            batch_size=self.eval_batch_size,
            sampler=StridedEvalSampler(len(rows), rank, world),
            collate_fn=keep_batch,
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def state_dict(self) -> dict:
        """Saved in every checkpoint: the fitted preprocessing, the tasks (fitted bins) and the
        training targets, so `multihead.predict` rebuilds the model and applies exactly the
        training transform to new samples."""
        c = self.cohort
        train = torch.from_numpy(c.splits["train"])
        return {
            "tasks": [t.to_dict() for t in c.tasks],
            "preprocessor": None if c.preprocessor is None else c.preprocessor.state_dict(),
            # training targets: a loss fitted to them (class weights) is rebuilt the same
            "train_labels": c.labels[train].clone(),
            "train_values": c.values[train].clone(),
            "shuffle_state": self.shuffle.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Lightning restores a checkpoint into this data module: it must be the same data."""
        saved = (state.get("preprocessor") or {}).get("feature_names")
        names = self.cohort.preprocessor.feature_names_in if self.cohort.preprocessor else None
        saved_tasks = [Task.from_dict(t) for t in state.get("tasks", [])]
        if (
            saved is not None
            and names is not None
            and (saved != names or list(saved_tasks) != list(self.cohort.tasks))
        ):
            raise DataError(
                "the checkpoint was trained on other data (different features or "
                "task classes than the data this run prepared); evaluate it on the "
                "data it was trained on, or use `python -m multihead.predict`"
            )
        if state.get("shuffle_state") is not None:
            self.shuffle.set_state(state["shuffle_state"])

    def split_frame(self) -> pd.DataFrame:
        """Which sample went where: saved with every run so splits can be audited. With
        cross-validation also each sample's outer fold and the partition (`data.cv.repeat`)."""
        c = self.cohort
        rows = [(i, c.sample_ids[i], name) for name, idx in c.splits.items() for i in idx]
        frame = pd.DataFrame(rows, columns=["row", "sample_id", "split"])
        if c.outer_folds is not None:
            frame["fold"] = c.outer_folds[frame["row"].to_numpy()]
            frame["partition"] = c.cv.repeat
        return frame.drop(columns="row")
