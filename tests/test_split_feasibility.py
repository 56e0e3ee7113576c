"""Split feasibility: every class of every task reaches train, val and test, or one DataError.

Small cohorts (21-45 samples) used to pass the size check and then die inside scikit-learn
("test_size = 6 should be greater or equal to the number of classes = 8"), and a masked task
with few labels could leave the test split without a class.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multihead.data.labels import MISSING
from multihead.data.splits import stratified_split
from multihead.errors import DataError

FRACTIONS = [(0.15, 0.15), (0.2, 0.2), (0.1, 0.25)]


def _check_split(labels: np.ndarray, splits: dict, test_fraction: float) -> None:
    n = len(labels)
    together = np.concatenate(list(splits.values()))
    assert sorted(together.tolist()) == list(range(n))  # a partition of the samples
    assert len(splits["test"]) == int(np.ceil(test_fraction * n))  # scikit-learn's size
    for task in range(labels.shape[1]):
        classes = set(labels[:, task].tolist()) - {MISSING}
        for name, rows in splits.items():
            assert set(labels[rows, task].tolist()) - {MISSING} == classes, (task, name)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(21, 90),
    k=st.integers(2, 8),
    labelled=st.floats(0.1, 1.0),
    fractions=st.sampled_from(FRACTIONS),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_every_class_in_every_split_or_one_data_error(n, k, labelled, fractions, seed, data):
    age = np.asarray(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    sex = np.asarray(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    rng = np.random.default_rng(seed)
    sex[rng.random(n) > labelled] = MISSING  # a masked task
    labels = np.stack([age, sex], axis=1)
    val, test = fractions
    try:
        splits = stratified_split(labels, ["age", "sex"], val, test, seed)
    except DataError as err:
        message = str(err)
        assert message.startswith(("task 'age'", "task 'sex'", "only ", "cannot split"))
        assert "\n" not in message
        return
    _check_split(labels, splits, test)


@pytest.mark.parametrize("n", range(21, 46))
def test_small_cohorts_split_or_say_why(n):
    """The sizes the issue reports: 4 age quartiles x 2 sexes, never a scikit-learn error."""
    rng = np.random.default_rng(n)
    labels = np.stack([np.arange(n) % 4, rng.permutation(np.arange(n) % 2)], axis=1)
    try:
        splits = stratified_split(labels, ["age", "sex"], 0.15, 0.15, seed=0)
    except DataError as err:
        assert "fewer than the task's 4 classes" in str(err) and f"of {n}" in str(err)
        return
    _check_split(labels, splits, 0.15)


def test_masked_task_with_few_labels_reaches_every_split():
    """14 labelled samples of 120, 3 of them female: each split gets a female and a male."""
    labels = np.stack([np.arange(120) % 4, np.full(120, MISSING)], axis=1)
    labels[np.arange(0, 120, 9)[:14], 1] = [0, 0, 0] + [1] * 11
    splits = stratified_split(labels, ["age", "sex"], 0.15, 0.15, seed=0)
    _check_split(labels, splits, 0.15)
    for rows in splits.values():
        assert (labels[rows, 1] == 0).sum() >= 1 and (labels[rows, 1] == 1).sum() >= 1


def test_unsplittable_class_names_class_count_and_what_works():
    labels = np.stack([np.arange(30) % 2, np.arange(30) % 2], axis=1)
    labels[:2, 0] = 2  # class 2 of age: two samples only
    with pytest.raises(DataError) as caught:
        stratified_split(labels, ["age", "sex"], 0.15, 0.15, 0, [["a", "b", "c"], ["f", "m"]])
    message = str(caught.value)
    assert "task 'age'" in message and "'c' (2 samples)" in message
    assert "at least 3 labelled samples" in message and "merge" in message
