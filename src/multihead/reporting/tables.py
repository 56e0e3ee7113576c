"""Tables: compact Rich tables for the console (a run's result, a sweep's jobs) and the
Markdown tables and number formats of report.md (no extra dependency)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from multihead.metrics.names import SHORT_LABELS


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.3f}"


def run_table(metrics: Mapping, title: str) -> Table:
    """Rows: tasks; columns: the metrics present for any task."""
    tasks = metrics["tasks"]
    present = [k for k in SHORT_LABELS if any(k in m for m in tasks.values())]
    table = Table(title=title, title_justify="left")
    table.add_column("task")
    for key in present:
        table.add_column(SHORT_LABELS[key], justify="right")
    for name, values in tasks.items():
        table.add_row(name, *[_fmt(values.get(k)) for k in present])
    table.caption = f"joint accuracy (all tasks right) = {_fmt(metrics.get('joint_accuracy'))}"
    return table


def wide_console(min_width: int = 110) -> Console:
    """At least `min_width` columns, so tables stay readable in logs and CI (no terminal)."""
    return Console(width=max(min_width, Console().width))


def print_run_table(metrics: Mapping, title: str) -> None:
    wide_console().print(run_table(metrics, title))


def constant_columns(frame: pd.DataFrame, columns: list[str]) -> dict[str, str]:
    """Columns with one value in every row: printed once above a table instead of per row."""
    if len(frame) < 2:
        return {}
    return {
        c: str(frame[c].iloc[0]) for c in columns if frame[c].astype(str).nunique(dropna=False) == 1
    }


def sweep_table(frame: pd.DataFrame, title: str) -> Group:
    """A row per job: the overrides that vary between jobs, status, key metrics. Overrides
    with the same value in every job (a data path, say) are stated once, above the table."""
    metric_cols = [c for c in frame.columns if "/" in c or c == "joint_accuracy"]
    group_cols = [
        c
        for c in frame.columns
        if c not in ("job", "overrides", "status", "error") and c not in metric_cols
    ]
    constants = constant_columns(frame, group_cols)
    group_cols = [c for c in group_cols if c not in constants]
    table = Table(title=title, title_justify="left")
    for col in [*group_cols, "status"]:
        table.add_column(col)
    for col in metric_cols:
        task, _, metric = col.rpartition("/")
        name = SHORT_LABELS.get(metric, metric.replace("_", " "))
        table.add_column(f"{task}\n{name}" if task else name, justify="right", no_wrap=True)
    for _, row in frame.iterrows():
        cells = [escape(str(row[c])) for c in group_cols]
        status = (
            "ok"
            if row["status"] == "ok"
            else f"[red]FAILED[/red] {escape(str(row.get('error', '')))}"
        )
        values = [("–" if pd.isna(row.get(c)) else f"{row[c]:.3f}") for c in metric_cols]
        table.add_row(*cells, status, *values)
    if not constants:
        return Group(table)
    line = "every job: " + " ".join(f"{k}={v}" for k, v in constants.items())
    return Group(Text(line, overflow="fold"), table)


# ------------------------------------------------------------------------ Markdown


def decimals(value: float, digits: int = 3) -> int:
    """3 decimals for rates, fewer for large values (MAE in years)."""
    magnitude = abs(value) if math.isfinite(value) else 0.0
    return 0 if magnitude >= 100 else max(digits - 1, 1) if magnitude >= 10 else digits


def number(value: float, places: int | None = None) -> str:
    """`value` with `places` decimals (default: by its size); an en dash for NaN or None."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    value = float(value)
    return f"{value:.{decimals(value) if places is None else places}f}"


def with_interval(mean: float, low: float, high: float, best: bool = False) -> str:
    """`0.812 [0.790, 0.834]` (interval ends with the mean's decimals), bold when best."""
    places = decimals(float(mean)) if mean is not None else 3
    text = number(mean, places)
    if best:
        text = f"**{text}**"
    if math.isfinite(low) and math.isfinite(high):
        text += f" [{number(low, places)}, {number(high, places)}]"
    return text


def p_value(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of the frame as it is (cells already formatted)."""
    header = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])
