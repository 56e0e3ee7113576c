"""Markdown tables and number formats for report.md (no extra dependency)."""

from __future__ import annotations

import math

import pandas as pd


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
