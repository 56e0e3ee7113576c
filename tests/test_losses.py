"""BCE and CE multi-task losses against hand-written references on a tiny batch.

Layout: task `a` with 3 classes (outputs 0-2) and task `b` with 2 classes (outputs 3-4).
"""

from __future__ import annotations

import math

import pytest
import torch

from multihead.models.losses.multitask import MultiTaskLoss
from multihead.tasks import Task, TaskLayout

A = Task("a", "a", ("a0", "a1", "a2"))
B = Task("b", "b", ("b0", "b1"))
LAYOUT = TaskLayout((A, B), (3, 2))

LOGITS = [
    [0.3, -1.2, 2.0, 0.5, -0.4],
    [-0.7, 1.1, 0.2, -2.2, 1.3],
    [1.5, 0.4, -0.9, 0.8, 0.1],
    [-0.2, -0.6, 0.9, -1.0, -0.3],
]
LABELS = [[2, 0], [1, 1], [0, 1], [1, 0]]
LABELS_MISSING = [[2, 0], [-1, 1], [0, -1], [1, 0]]


def bce_loss(tasks=(A, B)) -> MultiTaskLoss:
    """`loss=bce`: every task's loss is bce."""
    return MultiTaskLoss(tasks, default="bce")


def ce_loss(tasks=(A, B)) -> MultiTaskLoss:
    """`loss=ce`: every task's loss is ce."""
    return MultiTaskLoss(tasks, default="ce")


def logits_tensor(rows=LOGITS) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def labels_tensor(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.long)


def close(actual: torch.Tensor, expected: float) -> None:
    torch.testing.assert_close(
        actual, torch.tensor(expected, dtype=actual.dtype), rtol=1e-6, atol=1e-7
    )


# ----------------------------------------------------------------------- hand references


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def bce_reference(logits, labels) -> tuple[float, dict[str, float]]:
    """Mean over the outputs of labelled task slices of -(y log s + (1-y) log(1-s))."""
    sums = {t.name: 0.0 for t in LAYOUT.tasks}
    count = 0
    for row, label_row in zip(logits, labels, strict=True):
        for task, s, label in zip(LAYOUT.tasks, LAYOUT.slices, label_row, strict=True):
            if label == -1:
                continue
            for c, z in enumerate(row[s]):
                y = 1.0 if c == label else 0.0
                p = sigmoid(z)
                sums[task.name] += -(y * math.log(p) + (1 - y) * math.log(1 - p))
                count += 1
    count = max(count, 1)
    return sum(sums.values()) / count, {k: v / count for k, v in sums.items()}


def ce_reference(logits, labels) -> tuple[float, dict[str, float]]:
    """Sum over tasks of the mean over labelled samples of -log softmax[target]."""
    parts = {}
    for j, (task, s) in enumerate(zip(LAYOUT.tasks, LAYOUT.slices, strict=True)):
        terms = []
        for row, label_row in zip(logits, labels, strict=True):
            if label_row[j] == -1:
                continue
            z = row[s]
            log_norm = math.log(sum(math.exp(v) for v in z))
            terms.append(log_norm - z[label_row[j]])
        parts[task.name] = sum(terms) / len(terms) if terms else 0.0
    return sum(parts.values()), parts


# ---------------------------------------------------------------------------- BCE loss


@pytest.mark.parametrize("labels", [LABELS, LABELS_MISSING], ids=["complete", "missing"])
def test_bce_matches_reference(labels):
    total, parts = bce_loss()(logits_tensor(), labels_tensor(labels))
    want_total, want_parts = bce_reference(LOGITS, labels)
    close(total, want_total)
    assert set(parts) == {"a", "b"}
    for name, value in want_parts.items():
        close(parts[name], value)
    close(parts["a"] + parts["b"], total.item())


def test_bce_complete_labels_is_plain_mean_over_all_outputs():
    logits = logits_tensor()
    target = torch.tensor(
        [[0, 0, 1, 1, 0], [0, 1, 0, 0, 1], [1, 0, 0, 0, 1], [0, 1, 0, 1, 0]], dtype=torch.float32
    )
    s = torch.sigmoid(logits)
    want = -(target * s.log() + (1 - target) * (1 - s).log()).mean()
    total, _ = bce_loss()(logits, labels_tensor(LABELS))
    torch.testing.assert_close(total, want, rtol=1e-6, atol=1e-7)


def test_bce_missing_label_is_out_of_numerator_and_denominator():
    labels = labels_tensor(LABELS_MISSING)
    logits = logits_tensor().requires_grad_(True)
    total, _ = bce_loss()(logits, labels)
    # Denominator: 4*5 outputs less sample 1's a-slice (3) and sample 2's b-slice (2) = 15.
    kept = [(0, slice(0, 5)), (1, slice(3, 5)), (2, slice(0, 3)), (3, slice(0, 5))]
    numerator = sum(_bce_sum(i, s) for i, s in kept)
    close(total, numerator / 15)
    # Whatever the masked logits are, neither the loss nor their gradient depends on them.
    total.backward()
    assert torch.count_nonzero(logits.grad[1, 0:3]) == 0
    assert torch.count_nonzero(logits.grad[2, 3:5]) == 0
    assert torch.count_nonzero(logits.grad[0]) == 5
    changed = logits_tensor()
    changed[1, 0:3] = torch.tensor([9.0, -9.0, 4.0])
    changed[2, 3:5] = torch.tensor([-7.0, 7.0])
    other, _ = bce_loss()(changed, labels)
    torch.testing.assert_close(other, total.detach(), rtol=0, atol=0)


def _bce_sum(i: int, s: slice) -> float:
    """Sum of BCE terms of sample i over outputs s, from LABELS_MISSING's multi-hot target."""
    hot = set()
    for j, t_slice in enumerate(LAYOUT.slices):
        if LABELS_MISSING[i][j] >= 0:
            hot.add(t_slice.start + LABELS_MISSING[i][j])
    out = 0.0
    for c in range(s.start, s.stop):
        p = sigmoid(LOGITS[i][c])
        out += -math.log(p) if c in hot else -math.log(1 - p)
    return out


def test_bce_task_with_all_labels_missing():
    labels = labels_tensor([[2, -1], [1, -1], [0, -1], [1, -1]])
    logits = logits_tensor().requires_grad_(True)
    total, parts = bce_loss()(logits, labels)
    close(parts["b"], 0.0)
    close(total, bce_reference(LOGITS, labels.tolist())[0])
    total.backward()
    assert torch.count_nonzero(logits.grad[:, 3:5]) == 0
    assert torch.count_nonzero(logits.grad[:, 0:3]) == 12


# ----------------------------------------------------------------------------- CE loss


@pytest.mark.parametrize("labels", [LABELS, LABELS_MISSING], ids=["complete", "missing"])
def test_ce_matches_reference(labels):
    total, parts = ce_loss()(logits_tensor(), labels_tensor(labels))
    want_total, want_parts = ce_reference(LOGITS, labels)
    close(total, want_total)
    assert set(parts) == {"a", "b"}
    for name, value in want_parts.items():
        close(parts[name], value)
    close(parts["a"] + parts["b"], total.item())


def test_ce_missing_label_is_a_mean_over_labelled_samples_only():
    # Task a: samples 0, 2, 3 labelled, so its mean divides by 3, not 4.
    total, parts = ce_loss()(logits_tensor(), labels_tensor(LABELS_MISSING))
    z = logits_tensor()[:, 0:3]
    nll = -torch.log_softmax(z, dim=1)[[0, 2, 3], [2, 0, 1]]
    torch.testing.assert_close(parts["a"], nll.sum() / 3, rtol=1e-6, atol=1e-7)


def test_ce_task_with_all_labels_missing_contributes_zero_with_zero_gradient():
    z_a = logits_tensor()[:, 0:3].clone().requires_grad_(True)
    z_b = logits_tensor()[:, 3:5].clone().requires_grad_(True)
    labels = labels_tensor([[2, -1], [1, -1], [0, -1], [1, -1]])
    total, parts = ce_loss()(torch.cat([z_a, z_b], dim=1), labels)
    assert torch.isfinite(total)
    close(parts["b"], 0.0)
    close(total, ce_reference(LOGITS, labels.tolist())[0])
    # The empty task's part itself stays in the graph (not merely reached through the other
    # task via the concatenation): its gradient is zeros, not "does not require grad".
    (grad_b,) = torch.autograd.grad(parts["b"], z_b, retain_graph=True)
    torch.testing.assert_close(grad_b, torch.zeros_like(z_b), rtol=0, atol=0)
    total.backward()
    assert z_b.grad is not None
    torch.testing.assert_close(z_b.grad, torch.zeros_like(z_b), rtol=0, atol=0)
    assert torch.count_nonzero(z_a.grad) == z_a.numel()


def test_ce_single_task_all_missing_still_backpropagates():
    z = logits_tensor()[:, 3:5].clone().requires_grad_(True)
    total, parts = ce_loss((B,))(z, labels_tensor([[-1]] * 4))
    close(total, 0.0)
    total.backward()
    assert z.grad is not None
    torch.testing.assert_close(z.grad, torch.zeros_like(z), rtol=0, atol=0)


# ----------------------------------------------------------------------- probabilities


def test_ce_probabilities_are_softmax_per_slice():
    probs = ce_loss().probabilities(logits_tensor())
    assert [p.shape for p in probs] == [(4, 3), (4, 2)]
    for p, s in zip(probs, LAYOUT.slices, strict=True):
        for i, row in enumerate(LOGITS):
            exps = [math.exp(v) for v in row[s]]
            want = torch.tensor([e / sum(exps) for e in exps])
            torch.testing.assert_close(p[i], want, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(p.sum(dim=1), torch.ones(4), rtol=0, atol=1e-6)


def test_bce_probabilities_are_normalised_sigmoids():
    probs = bce_loss().probabilities(logits_tensor())
    assert [p.shape for p in probs] == [(4, 3), (4, 2)]
    for p, s in zip(probs, LAYOUT.slices, strict=True):
        for i, row in enumerate(LOGITS):
            sig = [sigmoid(v) for v in row[s]]
            want = torch.tensor([v / sum(sig) for v in sig])
            torch.testing.assert_close(p[i], want, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(p.sum(dim=1), torch.ones(4), rtol=0, atol=1e-6)
        assert torch.equal(p.argmax(dim=1), logits_tensor()[:, s].argmax(dim=1))
    # Not the softmax: the two decodings really differ.
    soft = ce_loss().probabilities(logits_tensor())
    assert not torch.allclose(probs[0], soft[0], atol=1e-3)


def test_bce_probabilities_argmax_on_random_logits():
    logits = torch.randn(64, 5, generator=torch.Generator().manual_seed(0)) * 3
    probs = bce_loss().probabilities(logits)
    for p, s in zip(probs, LAYOUT.slices, strict=True):
        assert torch.equal(p.argmax(dim=1), logits[:, s].argmax(dim=1))
        torch.testing.assert_close(p.sum(dim=1), torch.ones(64), rtol=0, atol=1e-6)


# -------------------------------------------------------------------------- diagnostics


def test_bce_incoherent_flags():
    # a-slice positives: none, one, two, one (0.0 is sigmoid 0.5: not above); three.
    # b-slice positives: one, two, none, one, one.
    rows = [
        [-1.0, -2.0, -3.0, 1.0, -1.0],
        [2.0, -1.0, -1.0, 1.0, 1.0],
        [1.0, 1.0, -1.0, -1.0, -1.0],
        [0.0, -1.0, 3.0, -0.5, 0.5],
        [0.5, 0.2, 0.1, 0.0, 0.3],
    ]
    flags = bce_loss().diagnostics(logits_tensor(rows))
    assert set(flags) == {"incoherent_rate"}
    got = flags["incoherent_rate"]
    assert got.dtype == torch.bool and got.shape == (5, 2)
    hand = [[sum(sigmoid(v) > 0.5 for v in row[s]) != 1 for s in LAYOUT.slices] for row in rows]
    assert got.tolist() == hand
    assert hand == [[True, False], [False, True], [True, True], [False, False], [True, False]]


def test_ce_has_no_diagnostics():
    assert ce_loss().diagnostics(logits_tensor()) == {}
