"""The project's metrics against independent computations (sklearn, numpy by hand).

Predictions are fixed and seeded: softmax of random logits, with targets that agree with the
argmax most of the time so that every metric lands well away from its trivial value. Data are
fed through `update` in several uneven batches, so accumulation is checked everywhere.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    recall_score,
    roc_auc_score,
)
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassStatScores,
)

from multihead.metrics.evaluation import EvaluationMetrics
from multihead.metrics.joint import JointAccuracy
from multihead.metrics.per_class import per_class_table
from multihead.metrics.prediction_store import PredictionStore
from multihead.metrics.task_metrics import TaskMetrics
from multihead.tasks import Task, TaskLayout, bin_labels

EDGES = (18.0, 30.0, 45.0, 60.0, 90.0)
AGE = Task("age", "age", bin_labels(EDGES), edges=EDGES, ordered=True)
SEX = Task("sex", "sex", ("female", "male"))
COLOUR = Task("colour", "colour", ("red", "green", "blue", "grey", "pink"))
BATCHES = (37, 50, 1, 64, 48)  # 200 samples in uneven batches

TOL = {"rel": 1e-5, "abs": 1e-6}


@pytest.fixture(autouse=True)
def _quiet_torchmetrics():
    # torchmetrics warns about absent classes and ill-defined scores; those are the cases
    # these tests exercise on purpose.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------------------------- data


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def make_predictions(
    seed: int,
    n: int,
    k: int,
    *,
    absent_target: int | None = None,
    never_predicted: int | None = None,
    agree: float = 0.6,
):
    """float32 probabilities (n, k) and int64 targets (n,).

    `absent_target` never occurs in the targets; `never_predicted` is never the argmax.
    """
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(n, k))
    if never_predicted is not None:
        logits[:, never_predicted] -= 20.0
    probs = softmax(logits).astype(np.float32)
    target = np.where(rng.random(n) < agree, probs.argmax(axis=1), rng.integers(0, k, size=n))
    if absent_target is not None:
        others = [c for c in range(k) if c != absent_target]
        hit = target == absent_target
        target[hit] = rng.choice(others, size=int(hit.sum()))
    return probs, target.astype(np.int64)


def batches(*arrays: np.ndarray, sizes=BATCHES):
    """Yield the arrays as torch tensors in consecutive batches of `sizes`."""
    assert sum(sizes) == len(arrays[0])
    start = 0
    for size in sizes:
        yield tuple(torch.from_numpy(np.ascontiguousarray(a[start : start + size])) for a in arrays)
        start += size


def feed(
    metrics: TaskMetrics,
    probs: np.ndarray,
    target: np.ndarray,
    value: np.ndarray | None = None,
    sizes=BATCHES,
) -> TaskMetrics:
    if value is None:
        value = np.full(len(target), np.nan, dtype=np.float32)
    for p, t, v in batches(probs, target, value, sizes=sizes):
        metrics.update(p, t, v)
    return metrics


def years_for(target: np.ndarray, seed: int, nan_share: float = 0.25) -> np.ndarray:
    """True ages inside each target's bin, NaN for a share of samples (-1 targets get NaN)."""
    rng = np.random.default_rng(seed)
    edges = np.asarray(EDGES)
    t = np.clip(target, 0, None)
    years = edges[t] + rng.random(len(target)) * (edges[t + 1] - edges[t])
    years[(rng.random(len(target)) < nan_share) | (target < 0)] = np.nan
    return years.astype(np.float32)


# --------------------------------------------------------------------- hand references


def ece_reference(probs: np.ndarray, target: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE with equal-width bins [b_i, b_i+1) over [0, 1]."""
    probs = probs.astype(np.float64)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == target).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.digitize(confidence, edges[1:-1])
    ece = 0.0
    for b in range(n_bins):
        inside = which == b
        if inside.any():
            ece += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(ece)


def auroc_per_class(probs: np.ndarray, target: np.ndarray) -> dict[int, float]:
    """One-vs-rest sklearn AUROC of every class that occurs in `target`."""
    return {
        c: roc_auc_score(target == c, probs[:, c].astype(np.float64))
        for c in range(probs.shape[1])
        if (target == c).any()
    }


def ordinal_reference(probs: np.ndarray, target: np.ndarray, years: np.ndarray):
    """MAE of the expected years sum_k p_k mid_k, and within-one-bin accuracy."""
    mid = (np.asarray(EDGES[:-1]) + np.asarray(EDGES[1:])) / 2
    pred = probs.argmax(axis=1)
    true_years = np.where(np.isnan(years), mid[target], years.astype(np.float64))
    expected = probs.astype(np.float64) @ mid
    return np.abs(expected - true_years).mean(), (np.abs(pred - target) <= 1).mean()


def argmax_midpoint_mae(probs: np.ndarray, target: np.ndarray, years: np.ndarray) -> float:
    mid = (np.asarray(EDGES[:-1]) + np.asarray(EDGES[1:])) / 2
    true_years = np.where(np.isnan(years), mid[target], years.astype(np.float64))
    return float(np.abs(mid[probs.argmax(axis=1)] - true_years).mean())


def sklearn_scalars(probs: np.ndarray, target: np.ndarray) -> dict[str, float]:
    pred = probs.argmax(axis=1)
    per_class = auroc_per_class(probs, target)
    return {
        "accuracy": accuracy_score(target, pred),
        "balanced_accuracy": balanced_accuracy_score(target, pred),
        "f1_macro": f1_score(target, pred, average="macro", zero_division=0),
        "auroc_macro": float(np.mean(list(per_class.values()))),
        "ece": ece_reference(probs, target),
    }


def assert_scalars(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(want) <= set(got)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, **TOL), name


# ------------------------------------------------------------------------- TaskMetrics


def test_scalars_match_sklearn_all_classes_present():
    probs, target = make_predictions(0, 200, COLOUR.num_classes)
    pred = probs.argmax(axis=1)
    assert set(target) == set(pred) == set(range(COLOUR.num_classes))  # precondition

    got = feed(TaskMetrics(COLOUR), probs, target).compute_scalars()

    assert set(got) == {"accuracy", "balanced_accuracy", "f1_macro", "auroc_macro", "ece"}
    assert_scalars(got, sklearn_scalars(probs, target))
    # With every class present the library's own multi-class forms agree as well.
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(target, pred), **TOL)
    assert got["auroc_macro"] == pytest.approx(
        roc_auc_score(target, probs.astype(np.float64), multi_class="ovr", average="macro"), **TOL
    )
    # The numbers are not trivial, so a wrong average would show.
    assert 0.5 < got["accuracy"] < 0.9
    assert got["balanced_accuracy"] != pytest.approx(got["accuracy"], abs=1e-3)
    assert got["ece"] > 0.01


def test_one_batch_equals_many_batches():
    probs, target = make_predictions(1, 200, COLOUR.num_classes)
    many = feed(TaskMetrics(COLOUR), probs, target).compute_scalars()
    one = feed(TaskMetrics(COLOUR), probs, target, sizes=(200,)).compute_scalars()
    assert many == pytest.approx(one, rel=1e-6, abs=1e-7)


def test_class_never_predicted_and_never_true():
    # Class 3 never occurs at all; class 1 occurs in the targets but is never predicted.
    probs, target = make_predictions(2, 200, COLOUR.num_classes, absent_target=3)
    logits = np.log(probs)
    logits[:, 3] -= 30.0
    logits[:, 1] -= 30.0
    probs = softmax(logits.astype(np.float64)).astype(np.float32)
    pred = probs.argmax(axis=1)
    assert 3 not in target and 3 not in pred and 1 in target and 1 not in pred

    got = feed(TaskMetrics(COLOUR), probs, target).compute_scalars()

    # sklearn's macro F1 runs over the labels seen in y_true or y_pred, and torchmetrics
    # leaves out classes with tp + fp + fn == 0: both skip class 3 and keep class 1 at 0.
    # Balanced accuracy is the mean recall over the classes in y_true (class 1 counts as 0).
    want = sklearn_scalars(probs, target)
    for name in ("accuracy", "balanced_accuracy", "f1_macro", "ece"):
        assert got[name] == pytest.approx(want[name], **TOL), name
    recalls = recall_score(target, pred, labels=[0, 1, 2, 4], average=None)
    assert recalls[1] == 0.0
    assert got["balanced_accuracy"] == pytest.approx(recalls.mean(), **TOL)


def test_balanced_accuracy_ignores_a_predicted_class_that_is_never_true():
    """The issue's case: a rare class predicted for samples of other classes but absent from
    the test labels. torchmetrics' macro recall scores it 0 and divides by every class;
    scikit-learn's balanced accuracy averages over the classes that occur."""
    target = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 3, 2, 2, 3])  # class 3 is predicted, never true
    probs = np.full((len(pred), COLOUR.num_classes), 0.01, dtype=np.float32)
    probs[np.arange(len(pred)), pred] = 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    got = feed(TaskMetrics(COLOUR), probs, target, sizes=(9,)).compute_scalars()
    want = balanced_accuracy_score(target, pred)
    assert want == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)  # by hand: 0.778
    assert got["balanced_accuracy"] == pytest.approx(want, **TOL)
    assert got["balanced_accuracy"] > recall_score(target, pred, average="macro") + 0.1


def test_auroc_macro_with_class_absent_from_targets_is_mean_over_present_classes():
    """torchmetrics' macro AUROC scores a class with no positives as 0 and divides by all k
    classes; the project averages the per-class AUROCs of the classes that occur instead."""
    k = COLOUR.num_classes
    probs, target = make_predictions(3, 200, k, absent_target=2)
    assert 2 not in target and 2 in probs.argmax(axis=1)
    got = feed(TaskMetrics(COLOUR), probs, target).compute_scalars()["auroc_macro"]
    present = auroc_per_class(probs, target)
    assert sorted(present) == [0, 1, 3, 4]
    assert got == pytest.approx(np.mean(list(present.values())), **TOL)
    assert got > sum(present.values()) / k + 0.1


def test_ece_matches_hand_computation_on_overconfident_predictions():
    # Sharper logits and a weaker link to the target: clearly miscalibrated.
    rng = np.random.default_rng(4)
    probs = softmax(rng.normal(scale=4.0, size=(200, 3))).astype(np.float32)
    target = np.where(rng.random(200) < 0.4, probs.argmax(axis=1), rng.integers(0, 3, 200))
    task = Task("t", "t", ("a", "b", "c"))
    got = feed(TaskMetrics(task), probs, target.astype(np.int64)).compute_scalars()["ece"]
    want = ece_reference(probs, target)
    assert want > 0.2
    assert got == pytest.approx(want, **TOL)


def test_binned_task_mae_years_and_within_one_bin():
    probs, target = make_predictions(5, 200, AGE.num_classes, agree=0.4)
    years = years_for(target, seed=5)
    assert np.isnan(years).any() and not np.isnan(years).all()

    got = feed(TaskMetrics(AGE), probs, target, years).compute_scalars()

    mae, within_one = ordinal_reference(probs, target, years)
    assert got["mae_years"] == pytest.approx(mae, **TOL)
    argmax_mae = argmax_midpoint_mae(probs, target, years)
    assert got["mae_years_argmax"] == pytest.approx(argmax_mae, **TOL)
    assert argmax_mae != pytest.approx(mae, abs=1e-2)  # two different estimates of the age
    assert got["within_one_bin_accuracy"] == pytest.approx(within_one, **TOL)
    assert 0 < within_one < 1  # some predictions are two or more bins off
    assert_scalars(got, sklearn_scalars(probs, target))
    # The NaN fallback matters: ignoring it (midpoint for every sample) gives another number.
    mid_only, _ = ordinal_reference(probs, target, np.full_like(years, np.nan))
    assert mae != pytest.approx(mid_only, abs=1e-3)


def test_unbinned_task_has_no_ordinal_metrics():
    probs, target = make_predictions(6, 200, SEX.num_classes)
    got = feed(TaskMetrics(SEX), probs, target).compute_scalars()
    assert "mae_years" not in got and "within_one_bin_accuracy" not in got
    assert_scalars(got, sklearn_scalars(probs, target))
    assert got["auroc_macro"] == pytest.approx(
        roc_auc_score(target, probs[:, 1].astype(np.float64)), **TOL
    )


def test_confusion_matrix_matches_sklearn():
    k = COLOUR.num_classes
    probs, target = make_predictions(7, 200, k, absent_target=4)
    metrics = feed(TaskMetrics(COLOUR), probs, target)
    got = metrics.confusion.compute().numpy()
    want = confusion_matrix(target, probs.argmax(axis=1), labels=range(k))
    np.testing.assert_array_equal(got, want)
    assert got.sum() == 200


def test_label_metrics_from_the_confusion_equal_torchmetrics_own_metrics():
    """Accuracy, macro F1 and the stat scores come from one confusion matrix: bit for bit
    what torchmetrics' MulticlassAccuracy, MulticlassF1Score and MulticlassStatScores give
    (classes never predicted and never true included)."""
    k = COLOUR.num_classes
    probs, target = make_predictions(12, 200, k, absent_target=2, never_predicted=4)
    got = feed(TaskMetrics(COLOUR), probs, target)
    scalars = got.compute_scalars()
    reference = {
        "accuracy": MulticlassAccuracy(k, average="micro"),
        "f1_macro": MulticlassF1Score(k, average="macro"),
        "stat_scores": MulticlassStatScores(k, average=None),
    }
    for p, t, _ in batches(probs, target, target, sizes=BATCHES):
        for metric in reference.values():
            metric.update(p.argmax(dim=1), t)
    assert torch.equal(got.stat_scores(), reference["stat_scores"].compute())
    for name in ("accuracy", "f1_macro"):
        assert scalars[name] == float(reference[name].compute()), name
    assert scalars["f1_macro"] == pytest.approx(
        f1_score(target, probs.argmax(axis=1), average="macro", zero_division=0), **TOL
    )


def test_stat_scores_and_per_class_table():
    k = COLOUR.num_classes
    # Class 4 never predicted (precision 0/0 -> 0), class 2 never a target (recall 0/0 -> 0).
    probs, target = make_predictions(8, 200, k, absent_target=2, never_predicted=4)
    pred = probs.argmax(axis=1)
    assert 4 in target and 4 not in pred and 2 not in target and 2 in pred

    stats = feed(TaskMetrics(COLOUR), probs, target).stat_scores().numpy()
    table = per_class_table(stats, list(COLOUR.classes))

    for c in range(k):
        tp = int(((pred == c) & (target == c)).sum())
        fp = int(((pred == c) & (target != c)).sum())
        fn = int(((pred != c) & (target == c)).sum())
        tn = int(((pred != c) & (target != c)).sum())
        row = table.iloc[c]
        assert row["class"] == COLOUR.classes[c]
        assert (row["tp"], row["fp"], row["tn"], row["fn"], row["support"]) == (
            tp,
            fp,
            tn,
            fn,
            tp + fn,
        ), c
    precision, recall, f1, support = precision_recall_fscore_support(
        target, pred, labels=range(k), zero_division=0
    )
    np.testing.assert_allclose(table["precision"], precision, rtol=1e-12, atol=0)
    np.testing.assert_allclose(table["recall"], recall, rtol=1e-12, atol=0)
    np.testing.assert_allclose(table["f1"], f1, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(table["support"], support)
    assert table["precision"].iloc[4] == 0 and table["recall"].iloc[2] == 0


def test_missing_labels_are_left_out_of_every_metric():
    probs, target = make_predictions(9, 200, AGE.num_classes, agree=0.5)
    years = years_for(target, seed=9)
    rng = np.random.default_rng(90)
    with_missing = target.copy()
    with_missing[rng.random(200) < 0.3] = -1
    with_missing[50:87] = -1  # the whole second batch and the single-sample third one
    with_missing[87] = -1
    keep = with_missing >= 0
    assert 0 < keep.sum() < 150

    metrics = feed(TaskMetrics(AGE), probs, with_missing, years)
    got = metrics.compute_scalars()

    p, t, y = probs[keep], target[keep], years[keep]
    assert_scalars(got, sklearn_scalars(p, t))
    mae, within_one = ordinal_reference(p, t, y)
    assert got["mae_years"] == pytest.approx(mae, **TOL)
    assert got["within_one_bin_accuracy"] == pytest.approx(within_one, **TOL)
    np.testing.assert_array_equal(
        metrics.confusion.compute().numpy(),
        confusion_matrix(t, p.argmax(axis=1), labels=range(AGE.num_classes)),
    )
    assert int(metrics.stat_scores()[:, 4].sum()) == int(keep.sum())
    # Using all samples would have given something else.
    assert got["accuracy"] != pytest.approx(accuracy_score(target, probs.argmax(axis=1)), abs=1e-4)


def test_reset_forgets_the_first_round():
    metrics = TaskMetrics(AGE)
    probs1, target1 = make_predictions(10, 200, AGE.num_classes)
    feed(metrics, probs1, target1, years_for(target1, seed=10))
    first = metrics.compute_scalars()
    metrics.reset()

    probs2, target2 = make_predictions(11, 200, AGE.num_classes, agree=0.3)
    years2 = years_for(target2, seed=11)
    feed(metrics, probs2, target2, years2, sizes=(120, 80))
    second = metrics.compute_scalars()

    want = sklearn_scalars(probs2, target2)
    want["mae_years"], want["within_one_bin_accuracy"] = ordinal_reference(probs2, target2, years2)
    assert_scalars(second, want)
    assert second["accuracy"] != pytest.approx(first["accuracy"], abs=1e-3)
    np.testing.assert_array_equal(
        metrics.confusion.compute().numpy(),
        confusion_matrix(target2, probs2.argmax(axis=1), labels=range(AGE.num_classes)),
    )
    assert int(metrics.stat_scores()[:, 4].sum()) == 200


# ------------------------------------------------------------- joint and prediction store


def test_joint_accuracy_over_fully_labelled_samples():
    rng = np.random.default_rng(12)
    n = 150
    target = np.stack([rng.integers(0, 4, n), rng.integers(0, 2, n)], axis=1)
    preds = np.where(
        rng.random((n, 2)) < 0.7,
        target,
        np.stack([rng.integers(0, 4, n), rng.integers(0, 2, n)], axis=1),
    )
    target[rng.random(n) < 0.2, 0] = -1
    target[rng.random(n) < 0.2, 1] = -1

    metric = JointAccuracy()
    for p, t in batches(preds, target, sizes=(40, 60, 50)):
        metric.update(p, t)

    full = (target >= 0).all(axis=1)
    want = (preds[full] == target[full]).all(axis=1).sum() / full.sum()
    assert float(metric.compute()) == pytest.approx(want, rel=1e-6)
    # A missing label must not count as a wrong (or right) answer.
    assert want != pytest.approx((preds == target).all(axis=1).mean(), abs=1e-3)

    metric.reset()
    metric.update(torch.tensor([[1, 0], [2, 1]]), torch.tensor([[1, 0], [2, 0]]))
    assert float(metric.compute()) == pytest.approx(0.5)


def test_prediction_store_sorts_by_index():
    rng = np.random.default_rng(13)
    index = rng.permutation(100).astype(np.int64)
    probs = rng.random((100, 6)).astype(np.float32)
    store = PredictionStore()
    for i, p in batches(index, probs, sizes=(30, 1, 69)):
        store.update(i, p)
    got_index, got_probs, _, _ = store.compute()
    order = np.argsort(index)
    np.testing.assert_array_equal(got_index.numpy(), np.arange(100))
    np.testing.assert_array_equal(got_probs.numpy(), probs[order])

    store.reset()
    store.update(torch.tensor([5, 2]), torch.tensor([[0.5], [0.2]]))
    got_index, got_probs, _, _ = store.compute()
    assert got_index.tolist() == [2, 5]
    assert got_probs.squeeze(1).tolist() == pytest.approx([0.2, 0.5])


# -------------------------------------------------------------------- EvaluationMetrics


def evaluation_round(seed: int, sizes=BATCHES):
    """Inputs for EvaluationMetrics on an (age, sex) layout, with some labels missing."""
    n = sum(sizes)
    p_age, t_age = make_predictions(seed, n, AGE.num_classes, agree=0.5)
    p_sex, t_sex = make_predictions(seed + 100, n, SEX.num_classes, agree=0.7)
    rng = np.random.default_rng(seed + 200)
    labels = np.stack([t_age, t_sex], axis=1)
    labels[rng.random(n) < 0.15, 0] = -1
    labels[rng.random(n) < 0.15, 1] = -1
    values = np.stack([years_for(labels[:, 0], seed), np.full(n, np.nan, np.float32)], axis=1)
    flags = rng.random((n, 2)) < 0.3
    index = rng.permutation(n).astype(np.int64)
    losses = rng.random(len(sizes)).astype(np.float32)
    return p_age, p_sex, labels, values, flags, index, losses


def feed_evaluation(metrics: EvaluationMetrics, inputs, sizes=BATCHES) -> None:
    p_age, p_sex, labels, values, flags, index, losses = inputs
    for b, (pa, ps, lab, val, flg, idx) in enumerate(
        batches(p_age, p_sex, labels, values, flags, index, sizes=sizes)
    ):
        metrics.update([pa, ps], lab, val, idx, torch.tensor(losses[b]), {"incoherent_rate": flg})


def expected_evaluation(inputs, sizes=BATCHES) -> dict[str, float]:
    p_age, p_sex, labels, values, flags, index, losses = inputs
    out: dict[str, float] = {}
    for j, (task, probs) in enumerate(((AGE, p_age), (SEX, p_sex))):
        keep = labels[:, j] >= 0
        p, t = probs[keep], labels[keep, j]
        for name, value in sklearn_scalars(p, t).items():
            out[f"{task.name}/{name}"] = value
        if task.is_binned:
            mae, within_one = ordinal_reference(p, t, values[keep, j])
            out[f"{task.name}/mae_years"] = mae
            out[f"{task.name}/mae_years_argmax"] = argmax_midpoint_mae(p, t, values[keep, j])
            out[f"{task.name}/within_one_bin_accuracy"] = within_one
        out[f"{task.name}/incoherent_rate"] = flags[keep, j].mean()
    full = (labels >= 0).all(axis=1)
    preds = np.stack([p_age.argmax(axis=1), p_sex.argmax(axis=1)], axis=1)
    out["joint_accuracy"] = (preds[full] == labels[full]).all(axis=1).mean()
    out["loss"] = float(np.dot(losses, sizes) / sum(sizes))  # weighted by batch size
    return out


def test_evaluation_metrics_keys_and_values():
    layout = TaskLayout((AGE, SEX), (AGE.num_classes, SEX.num_classes))
    metrics = EvaluationMetrics(layout, ["incoherent_rate"], keep_predictions=True)
    inputs = evaluation_round(20)
    feed_evaluation(metrics, inputs)

    got = metrics.compute_scalars()
    want = expected_evaluation(inputs)
    assert (
        set(got)
        == set(want)
        == {
            "age/accuracy",
            "age/balanced_accuracy",
            "age/f1_macro",
            "age/auroc_macro",
            "age/ece",
            "age/mae_years",
            "age/mae_years_argmax",
            "age/within_one_bin_accuracy",
            "age/incoherent_rate",
            "sex/accuracy",
            "sex/balanced_accuracy",
            "sex/f1_macro",
            "sex/auroc_macro",
            "sex/ece",
            "sex/incoherent_rate",
            "joint_accuracy",
            "loss",
        }
    )
    for key, value in want.items():
        assert got[key] == pytest.approx(value, **TOL), key
        assert isinstance(got[key], float), key

    p_age, p_sex, _, _, _, index, _ = inputs
    got_index, got_probs, _, _ = metrics.predictions.compute()
    order = np.argsort(index)
    np.testing.assert_array_equal(got_index.numpy(), index[order])
    np.testing.assert_array_equal(got_probs.numpy(), np.concatenate([p_age, p_sex], 1)[order])


def test_evaluation_metrics_reset():
    layout = TaskLayout((AGE, SEX), (AGE.num_classes, SEX.num_classes))
    metrics = EvaluationMetrics(layout, ["incoherent_rate"], keep_predictions=True)
    feed_evaluation(metrics, evaluation_round(30))
    first = metrics.compute_scalars()
    metrics.reset()

    sizes = (90, 110)
    inputs = evaluation_round(31, sizes=sizes)
    feed_evaluation(metrics, inputs, sizes=sizes)
    got = metrics.compute_scalars()
    for key, value in expected_evaluation(inputs, sizes=sizes).items():
        assert got[key] == pytest.approx(value, **TOL), key
    assert got["loss"] != pytest.approx(first["loss"], abs=1e-4)
    got_index = metrics.predictions.compute().index
    np.testing.assert_array_equal(got_index.numpy(), np.arange(200))
