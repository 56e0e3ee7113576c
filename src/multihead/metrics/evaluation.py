"""Everything measured on one evaluation split, for every task at once."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanMetric

from multihead.metrics.joint import JointAccuracy
from multihead.metrics.prediction_store import PredictionStore
from multihead.metrics.task_metrics import TaskMetrics
from multihead.tasks import TaskLayout


class EvaluationMetrics(nn.Module):
    """Per-task metrics + joint accuracy + loss + loss-specific diagnostics.

    Created in the LightningModule's `setup()` (never `__init__`): under ddp_spawn, states
    built before the spawn live in shared memory and every rank would add into the same ones.
    """

    def __init__(self, layout: TaskLayout, diagnostics: list[str], keep_predictions: bool):
        super().__init__()
        self.layout = layout
        self.tasks = nn.ModuleDict({t.name: TaskMetrics(t) for t in layout.tasks})
        self.joint = JointAccuracy()
        self.loss = MeanMetric()
        self.diagnostics = nn.ModuleDict({
            name: nn.ModuleDict({t.name: MeanMetric() for t in layout.tasks})
            for name in diagnostics
        })
        self.predictions = PredictionStore() if keep_predictions else None

    def update(self, probs: list[torch.Tensor], labels: torch.Tensor, values: torch.Tensor,
               index: torch.Tensor, loss: torch.Tensor, flags: dict[str, torch.Tensor]) -> None:
        for j, metrics in enumerate(self.tasks.values()):
            metrics.update(probs[j], labels[:, j], values[:, j])
        preds = torch.stack([p.argmax(dim=1) for p in probs], dim=1)
        self.joint.update(preds, labels)
        self.loss.update(loss.detach(), weight=labels.shape[0])
        for name, per_task in self.diagnostics.items():
            for j, metric in enumerate(per_task.values()):
                labelled = labels[:, j] >= 0
                if labelled.any():
                    metric.update(flags[name][labelled, j].float())
        if self.predictions is not None:
            self.predictions.update(index, torch.cat(probs, dim=1).detach())

    def compute_scalars(self) -> dict[str, float]:
        """Flat `task/metric` keys, plus `joint_accuracy` and `loss`. Collective under DDP."""
        out: dict[str, float] = {}
        for name, metrics in self.tasks.items():
            out.update({f"{name}/{k}": v for k, v in metrics.compute_scalars().items()})
        for diag, per_task in self.diagnostics.items():
            out.update({f"{task}/{diag}": float(m.compute()) for task, m in per_task.items()})
        out["joint_accuracy"] = float(self.joint.compute())
        out["loss"] = float(self.loss.compute())
        return out

    def reset(self) -> None:
        leaves = [*self.tasks.values(), self.joint, self.loss]
        leaves += [m for per_task in self.diagnostics.values() for m in per_task.values()]
        if self.predictions is not None:
            leaves.append(self.predictions)
        for metric in leaves:
            metric.reset()
