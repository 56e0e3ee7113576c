"""A task whose loss has no class probabilities (regression): label metrics from the decoded
class, MAE from the raw prediction, AUROC and calibration reported as not applicable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from multihead.metrics.evaluation import EvaluationMetrics
from multihead.metrics.task_metrics import TaskMetrics
from multihead.tasks import Task, TaskLayout, bin_labels

EDGES = (18.0, 30.0, 45.0, 60.0, 90.0)
AGE = Task("age", "age", bin_labels(EDGES), edges=EDGES, ordered=True)
SEX = Task("sex", "sex", ("female", "male"))

TARGET = torch.tensor([0, 1, 2, 3, 3, 1, -1, 2])
PREDS = torch.tensor([0, 2, 2, 1, 3, 1, 0, 3])
TRUE_YEARS = torch.tensor([25.0, 40.0, float("nan"), 70.0, 88.0, 31.0, 50.0, 50.0])
PRED_YEARS = torch.tensor([22.0, 47.5, 52.0, 58.0, 95.0, 33.0, 20.0, 61.0])


def feed(metrics: TaskMetrics) -> TaskMetrics:
    for part in (slice(0, 3), slice(3, 8)):  # two batches
        metrics.update(None, TARGET[part], TRUE_YEARS[part], PREDS[part], PRED_YEARS[part])
    return metrics


def test_no_probabilities_means_no_auroc_or_calibration():
    got = feed(TaskMetrics(AGE, probabilistic=False)).compute_scalars()
    assert got["auroc_macro"] is None and got["ece"] is None
    keep = TARGET >= 0
    t, p = TARGET[keep].numpy(), PREDS[keep].numpy()
    assert got["accuracy"] == pytest.approx(accuracy_score(t, p))
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(t, p))
    assert got["f1_macro"] == pytest.approx(f1_score(t, p, average="macro"))
    # MAE from the raw predicted years; a missing raw age falls back to its bin's midpoint (52.5)
    errors = [3.0, 7.5, abs(52.0 - 52.5), 12.0, 7.0, 2.0, 11.0]
    assert got["mae_years"] == pytest.approx(np.mean(errors))
    assert got["within_one_bin_accuracy"] == pytest.approx(np.mean([1, 1, 1, 0, 1, 1, 1]))


def test_mae_without_point_estimate_uses_the_bin_midpoint():
    metrics = TaskMetrics(AGE, probabilistic=False)
    metrics.update(None, TARGET, TRUE_YEARS, PREDS, None)
    mids = np.array([24.0, 37.5, 52.5, 75.0])
    keep = (TARGET >= 0).numpy()
    truth = np.where(
        np.isnan(TRUE_YEARS.numpy()), mids[np.maximum(TARGET.numpy(), 0)], TRUE_YEARS.numpy()
    )
    want = np.abs(mids[PREDS.numpy()] - truth)[keep].mean()
    assert metrics.compute_scalars()["mae_years"] == pytest.approx(want)


def test_evaluation_with_a_regression_task():
    layout = TaskLayout((AGE, SEX), (1, 2))
    metrics = EvaluationMetrics(layout, {}, keep_predictions=True, probabilistic=[False, True])
    sex_probs = torch.tensor([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]] * 2)
    labels = torch.stack([TARGET, torch.tensor([0, 1, 1, 1, 0, 1, 0, 0])], 1)
    preds = torch.stack([PREDS, sex_probs.argmax(1)], 1)
    values = torch.stack([TRUE_YEARS, torch.full((8,), float("nan"))], 1)
    metrics.update(
        [None, sex_probs],
        labels,
        values,
        torch.arange(8),
        torch.tensor(0.5),
        {},
        preds=preds,
        years=[PRED_YEARS, None],
    )
    got = metrics.compute_scalars()
    assert got["age/auroc_macro"] is None and got["age/ece"] is None
    assert got["sex/auroc_macro"] is not None and got["sex/ece"] is not None
    full = (labels >= 0).all(1)
    assert got["joint_accuracy"] == pytest.approx(
        float((preds[full] == labels[full]).all(1).float().mean())
    )
    stored = metrics.predictions.compute()
    torch.testing.assert_close(stored.probs, sex_probs)  # only the task that has them
    torch.testing.assert_close(stored.preds, preds)
    torch.testing.assert_close(stored.years[:, 0], PRED_YEARS)
    assert torch.isnan(stored.years[:, 1]).all()
    confusion = metrics.tasks["age"].confusion.compute().numpy()
    keep = (TARGET >= 0).numpy()
    np.testing.assert_array_equal(
        confusion, confusion_matrix(TARGET.numpy()[keep], PREDS.numpy()[keep], labels=range(4))
    )
