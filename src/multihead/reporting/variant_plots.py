"""Plots that put variants side by side: key metrics with intervals, BCE's incoherence rate.

Figures are built with `matplotlib.figure.Figure` (no pyplot state), so they work the same in
a script, in a test and in a notebook.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from multihead.reporting.key_metrics import higher_is_better, label
from multihead.reporting.runs import ok_runs, task_names
from multihead.reporting.stats import t_interval
from multihead.reporting.summary import summary_columns

REFERENCE_STYLES = ("--", ":", "-.")


def _grid(n: int, columns: int = 4, size: tuple[float, float] = (3.4, 3.0)) -> tuple:
    cols = min(columns, max(n, 1))
    rows = math.ceil(max(n, 1) / cols)
    fig = Figure(figsize=(size[0] * cols, size[1] * rows + 0.4))
    return fig, fig.subplots(rows, cols, squeeze=False).ravel()


def _error_bars(means: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """matplotlib's (2, n) yerr from interval ends; no bar where the interval is unknown."""
    below = np.where(np.isfinite(low), means - low, 0.0)
    above = np.where(np.isfinite(high), high - means, 0.0)
    return np.vstack([below, above])


def plot_metric_by_variant(summary: pd.DataFrame) -> Figure:
    """One panel per key metric: each variant's mean with its 95% interval over seeds, the
    best filled in, reference models as horizontal lines."""
    columns = summary_columns(summary)
    fig, axes = _grid(len(columns))
    variants = summary[summary["kind"] == "variant"].reset_index(drop=True)
    references = summary[summary["kind"] == "reference"]
    x = np.arange(len(variants))
    for ax, column in zip(axes, columns, strict=False):
        means = variants[f"{column}.mean"].to_numpy(float)
        err = _error_bars(
            means,
            variants[f"{column}.ci_low"].to_numpy(float),
            variants[f"{column}.ci_high"].to_numpy(float),
        )
        ax.errorbar(x, means, yerr=err, fmt="none", ecolor="C0", capsize=4)
        best = variants[f"{column}.best"].to_numpy(bool)
        ax.scatter(x[~best], means[~best], facecolors="white", edgecolors="C0", zorder=3)
        ax.scatter(x[best], means[best], color="C0", zorder=3, label="best")
        for style, (_, ref) in zip(REFERENCE_STYLES, references.iterrows(), strict=False):
            if np.isfinite(ref[f"{column}.mean"]):
                ax.axhline(ref[f"{column}.mean"], ls=style, color="0.4", lw=1, label=ref["variant"])
        arrow = "higher is better" if higher_is_better(column) else "lower is better"
        ax.set_title(f"{label(column)}\n({arrow})", fontsize=9)
        ax.set_xticks(x, variants["variant"], rotation=30, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(variants) - 0.5)
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    if columns:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle("test metrics by variant: mean and 95% t interval over seeds", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def incoherent_rates(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and interval over seeds of the incoherent prediction rate, per variant and task,
    for variants that report it (sigmoid/BCE outputs)."""
    done = ok_runs(runs)
    rows = []
    for task in task_names(done):
        column = f"{task}/incoherent_rate"
        if column not in done:
            continue
        for variant, jobs in done.groupby("variant", sort=False):
            values = pd.to_numeric(jobs[column], errors="coerce")
            if values.notna().any():
                mean, low, high, n = t_interval(values)
                rows.append(
                    {
                        "variant": variant,
                        "task": task,
                        "mean": mean,
                        "ci_low": low,
                        "ci_high": high,
                        "n": n,
                    }
                )
    return pd.DataFrame(rows, columns=["variant", "task", "mean", "ci_low", "ci_high", "n"])


def plot_incoherent_rate(rates: pd.DataFrame) -> Figure:
    """Bars per task and variant: how often a task's raw sigmoids are not exactly one above
    0.5 (none or several), which a softmax can never produce."""
    tasks = list(dict.fromkeys(rates["task"]))
    variants = list(dict.fromkeys(rates["variant"]))
    fig = Figure(figsize=(max(5.0, 1.2 + 0.9 * len(tasks) * max(1, len(variants))), 3.4))
    ax = fig.subplots()
    width = 0.8 / max(len(variants), 1)
    for i, variant in enumerate(variants):
        part = rates[rates["variant"] == variant].set_index("task").reindex(tasks)
        x = np.arange(len(tasks)) + (i - (len(variants) - 1) / 2) * width
        means = part["mean"].to_numpy(float)
        err = _error_bars(means, part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float))
        ax.bar(x, means, width=width * 0.95, yerr=err, capsize=3, label=variant, color=f"C{i}")
    ax.set_xticks(np.arange(len(tasks)), tasks)
    ax.set(ylim=(0, 1.05), ylabel="share of test samples")
    ax.set_title("incoherent sigmoid outputs (none or several above 0.5)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
