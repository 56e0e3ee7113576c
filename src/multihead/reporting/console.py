"""Compact Rich tables for the end of a run and of a sweep."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table

TASK_COLUMNS = {
    "accuracy": "acc",
    "balanced_accuracy": "bal_acc",
    "f1_macro": "F1",
    "auroc_macro": "AUROC",
    "ece": "ECE",
    "mae_years": "MAE (y)",
    "within_one_bin_accuracy": "±1 bin",
    "incoherent_rate": "incoherent",
    "n": "n",
}


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.3f}"


def run_table(metrics: Mapping, title: str) -> Table:
    """Rows: tasks; columns: the metrics present for any task."""
    tasks = metrics["tasks"]
    present = [k for k in TASK_COLUMNS if any(k in m for m in tasks.values())]
    table = Table(title=title, title_justify="left")
    table.add_column("task")
    for key in present:
        table.add_column(TASK_COLUMNS[key], justify="right")
    for name, values in tasks.items():
        table.add_row(name, *[_fmt(values.get(k)) for k in present])
    table.caption = f"joint accuracy (all tasks right) = {_fmt(metrics.get('joint_accuracy'))}"
    return table


def wide_console(min_width: int = 110) -> Console:
    """At least `min_width` columns, so tables stay readable in logs and CI (no terminal)."""
    return Console(width=max(min_width, Console().width))


def print_run_table(metrics: Mapping, title: str) -> None:
    wide_console().print(run_table(metrics, title))
