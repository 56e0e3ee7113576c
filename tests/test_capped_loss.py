"""`val/capped_loss`: each task's validation loss capped at an uninformed prediction's, summed.

Checked by hand: for cross-entropy an uninformed prediction (all outputs zero) costs log K, so
the capped value is sum_t min(mean CE_t, log K_t); a task that overfits past it counts as
uninformed and no longer hides the checkpoint where the other task is learned.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from multihead.metrics.collapse import TEST_LOSS, UNINFORMED_LOSS
from multihead.metrics.evaluation import EvaluationMetrics
from multihead.models.losses.multitask import MultiTaskLoss
from multihead.models.weighting.fixed import FixedWeighting
from multihead.run_folder import read_confusion
from multihead.tasks import Task, TaskLayout
from multihead.training.run import train

AGE = Task("age", "age", ("young", "middle", "old"))
SEX = Task("sex", "sex", ("female", "male"))
LAYOUT = TaskLayout((AGE, SEX), (3, 2))
BATCHES = (7, 12, 5)


def feed(metrics: EvaluationMetrics, loss: MultiTaskLoss, age_scale: float, seed: int):
    """Batches where sex is predicted well; age leans to the right class (`age_scale` > 0) or
    confidently to a wrong one (< 0)."""
    gen = torch.Generator().manual_seed(seed)
    all_logits, all_labels = [], []
    for size in BATCHES:
        labels = torch.stack(
            [
                torch.randint(0, 3, (size,), generator=gen),
                torch.randint(0, 2, (size,), generator=gen),
            ],
            dim=1,
        )
        shift = 0 if age_scale > 0 else 1  # the right class, or the next (wrong) one
        age = abs(age_scale) * F.one_hot((labels[:, 0] + shift) % 3, 3).float()
        sex = 2.0 * F.one_hot(labels[:, 1], 2).float()  # right class
        logits = torch.cat([age, sex], dim=1) + 0.1 * torch.randn(size, 5, generator=gen)
        values = torch.full((size, 2), float("nan"))
        _, parts = loss(logits, labels, values)
        _, uninformed = loss(torch.zeros_like(logits), labels, values)
        metrics.update(
            loss.probabilities(logits),
            labels,
            values,
            torch.arange(size),
            sum(parts.values()),
            {},
            parts=parts,
            uninformed=uninformed,
        )
        all_logits.append(logits)
        all_labels.append(labels)
    return torch.cat(all_logits), torch.cat(all_labels)


@pytest.mark.parametrize("age_scale", [0.5, -4.0])
def test_capped_loss_by_hand(age_scale):
    loss = MultiTaskLoss((AGE, SEX), default="ce")
    metrics = EvaluationMetrics(LAYOUT, [], keep_predictions=False, task_losses=True)
    logits, labels = feed(metrics, loss, age_scale, seed=3)
    capped = metrics.capped_task_losses()
    ce_age = F.cross_entropy(logits[:, :3], labels[:, 0]).item()
    ce_sex = F.cross_entropy(logits[:, 3:], labels[:, 1]).item()
    assert capped["age"].item() == pytest.approx(min(ce_age, math.log(3)), rel=1e-5)
    assert capped["sex"].item() == pytest.approx(min(ce_sex, math.log(2)), rel=1e-5)
    # a confidently wrong age head is capped; a mildly wrong one is not
    assert (ce_age > math.log(3)) == (age_scale < 0)
    weighting = FixedWeighting({"age": "categorical", "sex": "categorical"})
    total = weighting.selection_loss(capped).item()
    assert total == pytest.approx(min(ce_age, math.log(3)) + min(ce_sex, math.log(2)), rel=1e-5)
    assert total <= metrics.compute_scalars()["loss"] + 1e-6
    metrics.reset()
    feed(metrics, loss, 0.0, seed=4)  # reset forgets the earlier batches
    assert metrics.capped_task_losses()["age"].item() == pytest.approx(math.log(3), rel=1e-5)


def test_capped_loss_is_logged_below_the_summed_loss(small_config, tmp_path):
    train(small_config("logger=csv", "loss=ce", out="capped"))
    history = pd.read_csv(tmp_path / "capped" / "csv" / "metrics.csv")
    val = history.dropna(subset=["val/capped_loss"])
    assert len(val) > 0
    assert (val["val/capped_loss"] <= val["val/loss"] + 1e-6).all()
    # the test loss of each task and of an uninformed prediction (CE: log K) in metrics.json
    tasks = json.loads((tmp_path / "capped" / "metrics.json").read_text())["tasks"]
    assert tasks["sex"][UNINFORMED_LOSS] == pytest.approx(math.log(2), rel=1e-5)
    age_classes = read_confusion(tmp_path / "capped", "age").shape[0]
    assert tasks["age"][UNINFORMED_LOSS] == pytest.approx(math.log(age_classes), rel=1e-5)
    assert 0 < tasks["sex"][TEST_LOSS] < math.log(2)
