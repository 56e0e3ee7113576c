"""Validation curves per variant from each job's `csv/metrics.csv`.

They show what a single test number hides: whether a design was still improving when
training stopped, and whether seeds agree. Thin lines are seeds, the thick line their mean.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from multihead.reporting.key_metrics import label

CURVE_METRICS = ("loss", "balanced_accuracy")
LINE_STYLES = ("-", "--", "-.", ":")  # variants that train identically stay visible


def curve_columns(curves: pd.DataFrame) -> list[str]:
    """`val/loss`, then `val/<task>/balanced_accuracy` for each task, as logged."""
    columns = [c for c in curves.columns if c == "val/loss"]
    columns += [
        c
        for c in curves.columns
        if c.startswith("val/") and c.count("/") == 2 and c.endswith(CURVE_METRICS[1])
    ]
    return columns


def plot_validation_curves(curves: pd.DataFrame) -> Figure:
    """One panel per validation metric, one colour per variant."""
    columns = curve_columns(curves)
    fig = Figure(figsize=(3.8 * max(len(columns), 1), 3.4))
    axes = fig.subplots(1, max(len(columns), 1), squeeze=False)[0]
    variants = list(dict.fromkeys(curves["variant"]))
    for ax, column in zip(axes, columns, strict=False):
        for i, variant in enumerate(variants):
            part = curves[curves["variant"] == variant]
            for _, seed in part.groupby("seed"):
                ax.plot(seed["epoch"], seed[column], color=f"C{i}", lw=0.6, alpha=0.35)
            mean = part.groupby("epoch")[column].mean()
            ax.plot(
                mean.index,
                mean.to_numpy(),
                color=f"C{i}",
                lw=2,
                label=variant,
                ls=LINE_STYLES[i % len(LINE_STYLES)],
            )
        title = f"validation {label(column.removeprefix('val/'))}"
        if column == "val/loss":
            title += "\n(each variant's own loss: compare shapes, not levels)"
        ax.set(xlabel="epoch", title=title)
        ax.title.set_fontsize(9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=7)
    fig.suptitle("validation curves (thin: seeds, thick: mean over seeds)", fontsize=10)
    fig.tight_layout()
    return fig
