"""A head that predicts one class, or guesses, gets a warning in metrics.json."""

from __future__ import annotations

import math

import numpy as np

from multihead.metrics.collapse import TEST_LOSS, UNINFORMED_LOSS, head_warnings
from multihead.training.run import train

SEX = ["female", "male"]


def test_one_class_for_almost_everyone():
    # the ALL cohort's README example: 127 of 128 samples called male
    warnings = head_warnings(np.array([[0, 42], [1, 85]]), SEX)
    assert any("'male' for 127 of 128" in w for w in warnings)
    assert any("within noise of chance" in w for w in warnings)


def test_chance_level_without_collapse():
    # half right in each class: balanced accuracy 0.5, no class dominates
    warnings = head_warnings(np.array([[20, 20], [20, 20]]), SEX)
    assert len(warnings) == 1 and "balanced accuracy 0.500" in warnings[0]


def test_a_good_head_has_no_warning():
    assert head_warnings(np.array([[18, 2], [3, 17]]), SEX) == []
    # 30 samples: 0.6 balanced accuracy is not distinguishable from guessing ...
    assert head_warnings(np.array([[9, 6], [6, 9]]), SEX)
    # ... but on 400 samples it is
    assert not head_warnings(np.array([[120, 80], [80, 120]]), SEX)


def test_three_classes_chance_is_one_third():
    assert head_warnings(np.array([[10, 5, 5], [5, 10, 5], [5, 5, 10]]), ["a", "b", "c"]) == []
    assert head_warnings(np.array([[7, 7, 6], [7, 6, 7], [6, 7, 7]]), ["a", "b", "c"])


def test_run_writes_warnings(small_config):
    # one step at a tiny learning rate: the heads have learned nothing
    metrics = train(
        small_config("trainer.max_epochs=1", "data.batch_size=8", "model.optimizer.lr=1e-7")
    )
    flagged = {t for t, m in metrics["tasks"].items() if m.get("warnings")}
    assert flagged
    for task in flagged:
        assert all(isinstance(w, str) for w in metrics["tasks"][task]["warnings"])


def test_a_test_loss_above_an_uninformed_prediction_is_flagged():
    balanced = np.array([[18, 2], [3, 17]])  # a good confusion matrix: only the loss is bad
    worse = head_warnings(balanced, SEX, {TEST_LOSS: 0.9, UNINFORMED_LOSS: math.log(2)})
    assert len(worse) == 1 and "above an uninformed prediction's 0.693" in worse[0]
    assert head_warnings(balanced, SEX, {TEST_LOSS: 0.4, UNINFORMED_LOSS: math.log(2)}) == []
