"""Metric names in one place: which test metrics the comparison is about, how to name them
(in sentences and in compact tables), which way is better, and the calibration bins.

No torch here: the report and the notebook import this without the training stack."""

from __future__ import annotations

import pandas as pd

JOINT = "joint_accuracy"  # every task right on the same sample
ECE_BINS = 15  # equal-width confidence bins of the ECE and of the reliability plots
KEY_METRICS = ("balanced_accuracy", "f1_macro", "auroc_macro", "ece", "mae_years")
#: the one key metric per task that the report's primary question is about: the error in
#: years where a task has years (age), else balanced accuracy; joint accuracy is added
PRIMARY_METRICS = ("mae_years", "balanced_accuracy")
#: regions of practical equivalence: differences smaller than these do not matter in practice
ROPE = {
    "accuracy": 0.01,
    "balanced_accuracy": 0.01,
    "f1_macro": 0.01,
    "auroc_macro": 0.01,
    "ece": 0.01,
    "within_one_bin_accuracy": 0.01,
    "mae_years": 0.25,
    "mae_years_argmax": 0.25,
    JOINT: 0.01,
}
LOWER_IS_BETTER = frozenset({"ece", "mae_years", "mae_years_argmax", "incoherent_rate", "loss"})
LABELS = {
    "balanced_accuracy": "balanced accuracy",
    "f1_macro": "macro F1",
    "auroc_macro": "AUROC",
    "ece": "ECE",
    "mae_years": "MAE (years)",
    "mae_years_argmax": "MAE of the argmax bin's midpoint (years)",
    "incoherent_rate": "incoherent rate",
    "accuracy": "accuracy",
    "within_one_bin_accuracy": "within-one-bin accuracy",
    JOINT: "joint accuracy",
}

RATES = frozenset(
    {
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "auroc_macro",
        "ece",
        "within_one_bin_accuracy",
        "incoherent_rate",
        JOINT,
    }
)
NON_NEGATIVE = frozenset({"mae_years", "mae_years_argmax"})
#: compact column names for console tables
SHORT_LABELS = {
    "accuracy": "acc",
    "balanced_accuracy": "bal_acc",
    "f1_macro": "F1",
    "auroc_macro": "AUROC",
    "ece": "ECE",
    "mae_years": "MAE (y)",
    "mae_years_argmax": "MAE argmax (y)",
    "within_one_bin_accuracy": "±1 bin",
    "incoherent_rate": "incoherent",
    "n": "n",
}


def metric_of(column: str) -> str:
    """`age/mae_years` -> `mae_years`."""
    return column.rsplit("/", 1)[-1]


def higher_is_better(column: str) -> bool:
    return metric_of(column) not in LOWER_IS_BETTER


def bounds(column: str) -> tuple[float, float]:
    """The range a metric can take: a t interval over 3 seeds can overshoot it."""
    metric = metric_of(column)
    if metric in RATES:
        return 0.0, 1.0
    if metric in NON_NEGATIVE:
        return 0.0, float("inf")
    return float("-inf"), float("inf")


def label(column: str) -> str:
    """`age/balanced_accuracy` -> `age balanced accuracy`, for sentences and plot titles."""
    task, _, metric = column.rpartition("/")
    name = LABELS.get(metric, metric.replace("_", " "))
    return f"{task} {name}" if task else name


def key_columns(frame: pd.DataFrame) -> list[str]:
    """Key metric columns that hold at least one number, task by task, then joint accuracy.

    A metric a design does not define (AUROC for a regression loss is written as null) is
    simply empty for that design; a column empty for every job is left out."""
    tasks: dict[str, None] = {}
    for column in frame.columns:
        if "/" in column:
            tasks.setdefault(column.split("/", 1)[0], None)
    columns = [f"{t}/{m}" for t in tasks for m in KEY_METRICS if f"{t}/{m}" in frame.columns]
    if JOINT in frame.columns:
        columns.append(JOINT)
    return [c for c in columns if pd.to_numeric(frame[c], errors="coerce").notna().any()]


def primary_columns(columns: list[str]) -> list[str]:
    """Of these `task/metric` columns: per task the first of `PRIMARY_METRICS` it has, then
    joint accuracy."""
    tasks = list(dict.fromkeys(c.split("/", 1)[0] for c in columns if "/" in c))
    out = []
    for task in tasks:
        found = [f"{task}/{m}" for m in PRIMARY_METRICS if f"{task}/{m}" in columns]
        out += found[:1]
    return out + ([JOINT] if JOINT in columns else [])
