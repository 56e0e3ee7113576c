"""What data preparation did, in counts: printed at start and saved as data_report.json."""

from __future__ import annotations

import logging

log = logging.getLogger("multihead.data")


def summary_lines(report: dict) -> list[str]:
    """One line per step that changed something or that a reader would check."""
    lines = []
    samples = report.get("samples", {})
    if samples:
        lines.append(
            f"samples: {samples.get('matrix', '?')} in the matrix, {samples.get('sheet', '?')} "
            f"in the sheet, {samples.get('matched', '?')} in both "
            f"({samples.get('only_in_matrix', 0)} only in the matrix, "
            f"{samples.get('only_in_sheet', 0)} only in the sheet)"
        )
    for task, counts in report.get("labels", {}).items():
        if task == "samples":
            lines.append(
                f"labels: {counts['kept']} of {counts['in']} samples kept, "
                f"{counts['dropped']} dropped "
                f"(missing labels: {counts['missing_policy']})"
            )
        else:
            extra = ", ".join(
                f"{k.replace('_', ' ')} {v}"
                for k, v in counts.items()
                if k not in ("labelled", "missing")
            )
            lines.append(
                f"task {task}: {counts['labelled']} labelled, {counts['missing']} missing"
                + (f", {extra}" if extra else "")
            )
    features = report.get("features", {})
    if features:
        lines.append(
            f"features: {features['kept']} of {features['input']} kept "
            f"({features['dropped_missing']} dropped for missing values, "
            f"{features['dropped_constant']} constant, {features['dropped_top_k']} below top-k "
            f"variance; {features['missing_values_filled']} missing values filled)"
        )
    return lines


def log_report(report: dict) -> None:
    for line in summary_lines(report):
        log.info(line)
