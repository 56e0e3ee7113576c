"""A collapsed head is never silent: warnings for a task whose test predictions say nothing.

Two signs from the test confusion matrix, and one from the test loss:

* one class predicted for >= 95% of the test samples (e.g. "male" for 127 of 128);
* balanced accuracy within noise of chance: below 1/K + 2 standard errors, the standard error
  being that of a predictor that guesses (each class's recall is then a binomial proportion
  1/K over that class's n_c samples: SE = sqrt(sum_c (1/K)(1 - 1/K) / n_c) / K);
* a test loss above that of an uninformed prediction (the network's outputs all zero: the
  same prediction for every sample): the head's probabilities are worse than saying nothing.
  Checkpoints are chosen by `val/capped_loss`, which counts such a task as uninformed so that
  it does not veto the others; this warning says so in the results.

The warnings are printed and stored as `tasks.<task>.warnings` in metrics.json.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

#: share of test samples in one predicted class from which a head counts as collapsed
COLLAPSED_SHARE = 0.95
#: standard errors above chance a balanced accuracy must reach not to be "chance"
CHANCE_SE = 2.0
#: metrics.json keys (under tasks.<task>) of a task's test loss and an uninformed prediction's
TEST_LOSS, UNINFORMED_LOSS = "test_loss", "uninformed_loss"


def head_warnings(
    confusion: np.ndarray, classes: Sequence[str], losses: Mapping[str, float] | None = None
) -> list[str]:
    """Warnings for one task's confusion matrix (rows: true class, columns: predicted) and,
    when given, its test loss and an uninformed prediction's (`TEST_LOSS`, `UNINFORMED_LOSS`)."""
    confusion = np.asarray(confusion, dtype=float)
    total = confusion.sum()
    if total == 0:
        return []
    warnings = []
    predicted = confusion.sum(axis=0)
    top = int(predicted.argmax())
    share = predicted[top] / total
    if share >= COLLAPSED_SHARE:
        warnings.append(
            f"predicts {classes[top]!r} for {int(predicted[top])} of {int(total)} test samples "
            f"({share:.0%}): the head has collapsed to one class"
        )
    per_class = confusion.sum(axis=1)
    present = per_class > 0
    k = int(present.sum())
    if k >= 2:
        balanced = float((np.diag(confusion)[present] / per_class[present]).mean())
        chance = 1 / k
        se = math.sqrt(sum(chance * (1 - chance) / n for n in per_class[present])) / k
        bound = chance + CHANCE_SE * se
        if balanced <= bound:
            warnings.append(
                f"balanced accuracy {balanced:.3f} is within noise of chance "
                f"({chance:.3f} + {CHANCE_SE:g} SE = {bound:.3f} on {int(total)} samples)"
            )
    loss, uninformed = (losses or {}).get(TEST_LOSS), (losses or {}).get(UNINFORMED_LOSS)
    if loss is not None and uninformed is not None and loss > uninformed:
        warnings.append(
            f"test loss {loss:.3f} is above an uninformed prediction's {uninformed:.3f} (the "
            "same output for every sample): its probabilities are worse than saying nothing"
        )
    return warnings


def add_head_warnings(
    metrics: dict, confusions: Mapping[str, np.ndarray], tasks: Sequence
) -> dict[str, list[str]]:
    """Adds `warnings` to `metrics['tasks'][task]` for each task whose test confusion matrix
    (in `confusions`) or test loss (in `metrics`) shows a collapsed head, and logs them."""
    found = {}
    for task in tasks:
        if task.name not in confusions:
            continue
        losses = metrics.get("tasks", {}).get(task.name)
        warnings = head_warnings(confusions[task.name], list(task.classes), losses)
        if warnings:
            found[task.name] = warnings
            metrics.setdefault("tasks", {}).setdefault(task.name, {})["warnings"] = warnings
            for warning in warnings:
                log.warning("task %s: %s", task.name, warning)
    return found
