"""The LightningModule: one network, one multi-task loss, exact per-task evaluation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

from multihead.metrics.evaluation import EvaluationMetrics
from multihead.models.losses.base import MultiTaskLoss
from multihead.tasks import TaskLayout


class MultiHeadModule(pl.LightningModule):
    def __init__(self, net: nn.Module, loss: MultiTaskLoss, layout: TaskLayout,
                 optimizer: Callable[..., torch.optim.Optimizer],
                 output_dir: str | None = None) -> None:
        super().__init__()
        self.net = net
        self.loss_fn = loss
        self.layout = layout
        self.optimizer_factory = optimizer
        self.output_dir = output_dir
        self.val_metrics: EvaluationMetrics | None = None
        self.test_metrics: EvaluationMetrics | None = None
        self.test_scalars: dict[str, float] = {}

    def setup(self, stage: str) -> None:
        diagnostics = list(self._diagnostic_names())
        self.val_metrics = EvaluationMetrics(self.layout, diagnostics, keep_predictions=False)
        self.test_metrics = EvaluationMetrics(self.layout, diagnostics, keep_predictions=True)
        self.val_metrics.to(self.device)
        self.test_metrics.to(self.device)

    def _diagnostic_names(self) -> dict[str, torch.Tensor]:
        probe = torch.zeros(1, self.layout.total)
        return self.loss_fn.diagnostics(probe, self.layout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(params=self.parameters())

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self.net(batch["x"])
        loss, parts = self.loss_fn(logits, batch["y"], self.layout)
        size = batch["y"].shape[0]
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=size,
                 prog_bar=True, sync_dist=True)
        for name, part in parts.items():
            self.log(f"train/{name}/loss", part, on_step=False, on_epoch=True, batch_size=size,
                     sync_dist=True)
        return loss

    def _evaluate(self, batch: dict[str, torch.Tensor], metrics: EvaluationMetrics) -> None:
        logits = self.net(batch["x"])
        loss, _ = self.loss_fn(logits, batch["y"], self.layout)
        probs = self.loss_fn.probabilities(logits, self.layout)
        flags = self.loss_fn.diagnostics(logits, self.layout)
        metrics.update(probs, batch["y"], batch["value"], batch["index"], loss, flags)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        scalars = self.val_metrics.compute_scalars()  # synced across ranks by torchmetrics
        self.val_metrics.reset()
        self.log_dict({f"val/{k}": v for k, v in scalars.items()}, sync_dist=True,
                      prog_bar=False)
        self.log("val_joint", scalars["joint_accuracy"], prog_bar=True, sync_dist=True,
                 logger=False)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        from multihead.reporting.artifacts import collect_test_results, write_test_artifacts

        results = collect_test_results(self.test_metrics, self.loss_fn)  # collective: all ranks
        self.test_metrics.reset()
        self.test_scalars = results.scalars
        self.log_dict({f"test/{k}": v for k, v in results.scalars.items()}, sync_dist=True)
        if self.trainer.is_global_zero and self.output_dir is not None:
            write_test_artifacts(Path(self.output_dir), results, self.trainer.datamodule.cohort)
