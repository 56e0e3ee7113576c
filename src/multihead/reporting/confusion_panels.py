"""Confusion matrices of every variant side by side, one figure per task, seeds summed.

Same colouring as each run's own confusion PNG (share of the true class), so a row that
collapses onto the majority class looks the same wherever it is seen.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from multihead.reporting.confusion_plot import draw_confusion
from multihead.reporting.job_files import pooled_confusion, variants
from multihead.reporting.runs import ok_runs


def plot_confusions(runs: pd.DataFrame, task: str) -> Figure:
    """One panel per variant with its confusion matrix for `task`, summed over seeds."""
    names = variants(runs)
    matrices = {v: pooled_confusion(runs, v, task) for v in names}
    k = len(next(iter(matrices.values())))
    size = max(3.2, 0.38 * k + 1.6)
    fig = Figure(figsize=(size * len(names) + 0.8, size + 0.6), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    image = None
    for ax, (variant, matrix) in zip(axes, matrices.items(), strict=True):
        seeds = int((ok_runs(runs)["variant"] == variant).sum())
        image = draw_confusion(
            ax, matrix.to_numpy(), [str(c) for c in matrix.columns], f"{variant}"
        )
        ax.title.set_fontsize(9)
        ax.set_xlabel(f"predicted ({seeds} seeds summed)", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="share of true class")
    fig.suptitle(f"{task}: test confusion matrices", fontsize=10)
    return fig
