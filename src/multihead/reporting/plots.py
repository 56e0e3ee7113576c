"""Every figure of a run and of a report, drawn on `matplotlib.figure.Figure` (no pyplot
state), so they work the same in a script, in a test and in a notebook.

- Confusion matrices: colour by row share (recall), counts in each cell; one per run, and every
  variant side by side per task (seeds summed) in the report.
- Validation curves per variant from each job's CSV history: thin lines are seeds, the thick
  line their mean; they show whether a design was still improving when training stopped.
- Reliability: top-label confidence against accuracy per bin. The bins are the ones behind the
  runs' ECE (torchmetrics, `ECE_BINS` equal-width bins, a bin holds `lower <= confidence <
  upper`, a confidence of exactly 1 gets a bin of its own), so the ECE recomputed from them is
  the ECE in `metrics.json`.
- Key metrics by variant with intervals, and BCE's incoherence rate.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from multihead.metrics.names import ECE_BINS, higher_is_better, label
from multihead.reporting.runs import (
    ok_runs,
    pooled_confusion,
    pooled_predictions,
    task_names,
    variants,
)
from multihead.reporting.statistics import NETWORK, summary_columns, t_interval
from multihead.run_folder import task_probabilities

CURVE_METRICS = ("loss", "balanced_accuracy")
LINE_STYLES = ("-", "--", "-.", ":")  # variants that train identically stay visible
REFERENCE_STYLES = ("--", ":", "-.")


def draw_confusion(ax, matrix: np.ndarray, classes: list[str], title: str):
    """Draw into `ax` (also used for the report's side-by-side panels); returns the image."""
    k = len(classes)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=90 if k > 4 else 0, fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    str(int(matrix[i, j])),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    return image


def plot_confusion(matrix: np.ndarray, classes: list[str], title: str, path: Path) -> None:
    size = max(4.0, 0.45 * len(classes) + 2)
    fig = Figure(figsize=(size, size * 0.9))
    ax = fig.subplots()
    image = draw_confusion(ax, matrix, classes, title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


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
        ax.set_xlabel(f"predicted ({seeds} jobs summed)", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="share of true class")
    fig.suptitle(f"{task}: test confusion matrices", fontsize=10)
    return fig


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
    title = f"{task}: reliability of the test predictions (seeds and splits pooled)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


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
    """One panel per key metric: each variant's mean with its interval over data splits, the
    best filled in, reference models as horizontal lines."""
    columns = summary_columns(summary)
    fig, axes = _grid(len(columns))
    variants = summary[summary["kind"] == NETWORK].reset_index(drop=True)
    references = summary[summary["kind"] != NETWORK]
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
    fig.suptitle("test metrics by variant: mean over data splits with its interval", fontsize=10)
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
