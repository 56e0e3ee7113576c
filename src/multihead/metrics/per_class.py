"""Per-class TP/FP/TN/FN table from torchmetrics stat scores."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den with 0 where den is 0 (sklearn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def per_class_table(stat_scores: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Rows per class: tp, fp, tn, fn, support and the precision, recall, F1 they imply."""
    tp, fp, tn, fn, support = (stat_scores[:, i].astype(float) for i in range(5))
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return pd.DataFrame(
        {
            "class": classes,
            "tp": tp.astype(int),
            "fp": fp.astype(int),
            "tn": tn.astype(int),
            "fn": fn.astype(int),
            "support": support.astype(int),
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }
    )
