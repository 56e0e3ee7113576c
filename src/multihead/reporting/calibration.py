"""Reliability of predicted probabilities: top-label confidence against accuracy, per bin.

The bins are the ones behind the runs' ECE (torchmetrics, 15 equal-width bins, a bin holds
`lower <= confidence < upper`, and a confidence of exactly 1 gets a bin of its own), so the
ECE recomputed from these bins is the ECE in `metrics.json`. BCE's sigmoid outputs, divided
by their sum per task, are where miscalibration should show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from multihead.reporting.job_files import pooled_predictions, task_probabilities, variants

ECE_BINS = 15  # = multihead.metrics.task_metrics.ECE_BINS (not imported: that pulls in torch)


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS
) -> pd.DataFrame:
    """One row per bin: edges, count, mean confidence and accuracy (NaN when empty)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.searchsorted(edges, confidence, side="right") - 1
    rows = []
    for b in range(n_bins + 1):
        inside = index == b
        count = int(inside.sum())
        rows.append(
            {
                "lower": edges[b],
                "upper": edges[min(b + 1, n_bins)],
                "count": count,
                "confidence": float(confidence[inside].mean()) if count else np.nan,
                "accuracy": float(correct[inside].mean()) if count else np.nan,
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(bins: pd.DataFrame) -> float:
    """Count-weighted mean |accuracy - confidence| over the bins (L1 ECE)."""
    used = bins[bins["count"] > 0]
    weights = used["count"] / used["count"].sum()
    return float((weights * (used["accuracy"] - used["confidence"]).abs()).sum())


def has_probabilities(predictions: pd.DataFrame, task: str) -> bool:
    """False for a task a design predicts without class probabilities (regression)."""
    return any(c.startswith(f"{task}_p[") for c in predictions.columns)


def task_reliability(predictions: pd.DataFrame, task: str) -> pd.DataFrame:
    """Reliability bins of one task from a predictions table (rows without a label skipped).

    The top class is the argmax of the probabilities, as in the runs' ECE, even where a
    design decodes its prediction another way (ordinal losses)."""
    labelled = predictions[predictions[f"{task}_true"].notna()]
    probs, classes = task_probabilities(labelled, task)
    if probs.shape[1] == 0:
        raise ValueError(f"no class probabilities for task {task!r}")
    top = np.asarray(classes, dtype=object)[probs.argmax(axis=1)]
    correct = top == labelled[f"{task}_true"].astype(str).to_numpy()
    return reliability_bins(probs.max(axis=1), correct.astype(float))


def variant_reliability(runs: pd.DataFrame, task: str) -> dict[str, pd.DataFrame]:
    """Reliability bins per variant, all seeds' test predictions pooled; variants without
    probabilities for `task` are left out."""
    out = {}
    for variant in variants(runs):
        predictions = pooled_predictions(runs, variant)
        if has_probabilities(predictions, task):
            out[variant] = task_reliability(predictions, task)
    return out


def plot_reliability(bins_by_variant: dict[str, pd.DataFrame], task: str) -> Figure:
    """One panel per variant: accuracy per confidence bin against the diagonal, with the
    share of samples per bin as bars; ECE in the title."""
    n = len(bins_by_variant)
    if n == 0:
        raise ValueError(f"no variant has class probabilities for task {task!r}")
    fig = Figure(figsize=(3.2 * n + 0.5, 3.6))
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (variant, bins) in zip(axes, bins_by_variant.items(), strict=True):
        used = bins[bins["count"] > 0]
        width = 1.0 / (len(bins) - 1)
        share = used["count"] / used["count"].sum()
        ax.bar(
            used["lower"] + width / 2,
            share,
            width=width * 0.9,
            color="0.85",
            label="share of samples",
        )
        ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="perfect calibration")
        ax.plot(used["confidence"], used["accuracy"], "o-", color="C0", label="accuracy")
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.02),
            xlabel="confidence (top class)",
            title=f"{variant}\nECE={expected_calibration_error(bins):.3f}",
        )
        ax.title.set_fontsize(9)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{task}: reliability on the test split (seeds pooled)", fontsize=10)
    fig.tight_layout()
    return fig
