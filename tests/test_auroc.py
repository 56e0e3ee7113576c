"""The rank-based one-vs-rest AUROC against scikit-learn's `roc_auc_score`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from multihead.metrics.auroc import ClassAUROC, one_vs_rest_auroc

TOL = {"rel": 1e-6, "abs": 1e-7}  # float32 results


def sklearn_per_class(scores: np.ndarray, target: np.ndarray) -> dict[int, float]:
    """One-vs-rest AUROC of every class with positives and negatives."""
    return {
        c: roc_auc_score(target == c, scores[:, c].astype(np.float64))
        for c in range(scores.shape[1])
        if 0 < (target == c).sum() < len(target)
    }


def random_case(seed: int, n: int, k: int, ties: bool, absent: int | None):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)).astype(np.float32)
    target = rng.integers(0, k, n)
    logits[np.arange(n), target] += 1.0  # informative scores: AUROCs well above 0.5
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if ties:  # few distinct values: many ties inside and across classes
        scores = np.round(scores * 8) / 8
    if absent is not None:
        target[target == absent] = (absent + 1) % k
    return scores.astype(np.float32), target


@pytest.mark.parametrize(
    ("seed", "n", "k", "ties", "absent"),
    [
        (0, 300, 2, False, None),
        (1, 300, 18, False, None),
        (2, 250, 5, True, None),
        (3, 200, 6, True, 2),
        (4, 57, 4, False, 0),
        (5, 400, 3, True, None),
    ],
)
def test_per_class_auroc_matches_sklearn(seed, n, k, ties, absent):
    scores, target = random_case(seed, n, k, ties, absent)
    if ties:
        assert len(np.unique(scores)) < n // 4  # precondition: the case has ties
    got = one_vs_rest_auroc(torch.from_numpy(scores), torch.from_numpy(target), k)
    want = sklearn_per_class(scores, target)
    assert got.dtype == torch.float32 and got.shape == (k,)
    for c, value in want.items():
        assert float(got[c]) == pytest.approx(value, **TOL), c
    assert min(want.values()) > 0.5  # not trivial: a flipped sign or rank would show
    if absent is not None:  # no positives: 0, as torchmetrics (callers skip the class)
        assert absent not in want and float(got[absent]) == 0.0
    if k > 2 and not ties and len(want) == k:  # sklearn's own macro (needs rows summing to 1)
        macro = roc_auc_score(target, scores.astype(np.float64), multi_class="ovr")
        assert float(got.double().mean()) == pytest.approx(macro, **TOL)


def test_ties_count_one_half():
    """By hand: positives score 0.5 and 0.9, negatives 0.5 and 0.1: of the four pairs, three
    are ordered right and one is tied, AUROC (3 + 0.5) / 4."""
    scores = torch.tensor([[0.5, 0.5], [0.1, 0.9], [0.5, 0.5], [0.9, 0.1]])
    target = torch.tensor([1, 1, 0, 0])
    got = one_vs_rest_auroc(scores, target, 2)
    assert float(got[1]) == pytest.approx(3.5 / 4)
    assert float(got[1]) == pytest.approx(roc_auc_score(target == 1, scores[:, 1]))


def test_a_class_without_negatives_scores_zero():
    scores = torch.softmax(torch.randn(10, 3, generator=torch.Generator().manual_seed(0)), 1)
    got = one_vs_rest_auroc(scores, torch.zeros(10, dtype=torch.long), 3)
    assert got.tolist() == [0.0, 0.0, 0.0]


def test_metric_accumulates_batches_and_resets():
    scores, target = random_case(6, 200, 5, ties=True, absent=None)
    metric = ClassAUROC(5)
    for part in np.array_split(np.arange(200), [37, 87, 88, 150]):
        metric.update(torch.from_numpy(scores[part]), torch.from_numpy(target[part]))
    whole = one_vs_rest_auroc(torch.from_numpy(scores), torch.from_numpy(target), 5)
    assert torch.equal(metric.compute(), whole)
    metric.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):  # as torchmetrics' own:
        with pytest.raises(ValueError, match="No samples"):  # nothing to score is an error
            metric.compute()


def test_half_precision_scores_give_the_float32_result():
    scores, target = random_case(7, 120, 4, ties=False, absent=None)
    half = torch.from_numpy(scores).to(torch.bfloat16)
    got = one_vs_rest_auroc(half, torch.from_numpy(target), 4)
    assert torch.equal(got, one_vs_rest_auroc(half.float(), torch.from_numpy(target), 4))
