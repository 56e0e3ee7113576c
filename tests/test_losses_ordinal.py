"""CORN, CORAL, soft labels, regression and class weights against hand-written references on a
tiny batch, and their decoding against hand-worked examples.

Age has 4 bins (edges 18, 30, 45, 60, 90); sex has 2 classes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from multihead.errors import ConfigError
from multihead.models.losses.base import TaskTargets
from multihead.models.losses.class_weights import balanced_class_weights
from multihead.models.losses.multitask import MultiTaskLoss
from multihead.tasks import Task, bin_labels

EDGES = (18.0, 30.0, 45.0, 60.0, 90.0)
AGE = Task("age", "age", bin_labels(EDGES), edges=EDGES, ordered=True)
SEX = Task("sex", "sex", ("female", "male"))
GRADE = Task("grade", "grade", ("low", "mid", "high"), ordered=True)  # ordered, not binned

AGE_LABELS = [0, 2, 3, 1, 2]
SEX_LABELS = [1, 0, 0, 1, 1]
AGE_YEARS = [25.0, 50.0, 88.0, 31.0, float("nan")]  # last: raw value unknown -> bin midpoint


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def bce(z: float, t: float) -> float:
    p = sigmoid(z)
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def close(actual: torch.Tensor, expected: float, tol: float = 1e-6) -> None:
    assert float(actual.detach()) == pytest.approx(expected, rel=tol, abs=tol)


def labels(age=AGE_LABELS, sex=SEX_LABELS) -> torch.Tensor:
    return torch.tensor(list(zip(age, sex, strict=True)), dtype=torch.long)


def values(years=AGE_YEARS) -> torch.Tensor:
    return torch.tensor([[y, float("nan")] for y in years], dtype=torch.float32)


def targets_for(age_labels, years, sex_labels) -> dict[str, TaskTargets]:
    return {
        "age": TaskTargets(torch.tensor(age_labels), torch.tensor(years, dtype=torch.float32)),
        "sex": TaskTargets(torch.tensor(sex_labels), torch.full((len(sex_labels),), float("nan"))),
    }


# A training split for fitted settings: 1 x bin 0, 2 x bin 1, 1 x bin 2, 4 x bin 3, 1 missing.
TRAIN = targets_for(
    [0, 1, 1, 2, 3, 3, 3, 3, -1],
    [20.0, 35.0, 40.0, 50.0, 70.0, 80.0, 65.0, 75.0, float("nan")],
    [0, 0, 0, 1, 1, 1, 1, 1, 0],
)


# --------------------------------------------------------------------------------- CORN

CORN_LOGITS = [
    [0.4, -0.3, 1.1],
    [1.5, 0.2, -0.7],
    [2.0, 1.3, 0.6],
    [-0.5, 0.9, 0.3],
    [0.1, -1.2, 0.8],
]


def corn_reference(rows, ys) -> float:
    """Output k is the question "y > k?", asked only of samples with y > k-1; one mean over
    every (sample, question) asked."""
    total, asked = 0.0, 0
    for row, y in zip(rows, ys, strict=True):
        for k, z in enumerate(row):
            if y > k - 1:
                total += bce(z, 1.0 if y > k else 0.0)
                asked += 1
    return total / asked


def corn_loss() -> MultiTaskLoss:
    return MultiTaskLoss((AGE, SEX), default="ce", age="corn")


def test_corn_matches_reference():
    sex_logits = torch.zeros(5, 2)
    loss = corn_loss()
    assert loss.layout.sizes == (3, 2)
    total, parts = loss(torch.cat([torch.tensor(CORN_LOGITS), sex_logits], 1), labels())
    close(parts["age"], corn_reference(CORN_LOGITS, AGE_LABELS))
    close(parts["sex"], math.log(2))  # zero logits: CE is log 2 for every sample
    close(total, float(parts["age"] + parts["sex"]))
    # the conditional subsets (labels 0, 2, 3, 1, 2): 5 samples asked "y > 0", 4 asked
    # "y > 1" (those with y >= 1), 3 asked "y > 2" (those with y >= 2)
    weight_sum = loss.losses["age"].terms(
        torch.tensor(CORN_LOGITS), torch.tensor(AGE_LABELS), torch.zeros(5)
    )[1]
    assert float(weight_sum) == 5 + 4 + 3


def test_corn_probabilities_and_decoding_by_hand():
    # sigmoids 0.9, 0.5, 0.2 -> P(y>0)=0.9, P(y>1)=0.45, P(y>2)=0.09
    z = torch.tensor([[logit(0.9), 0.0, logit(0.2)]])
    corn = corn_loss().losses["age"]
    torch.testing.assert_close(corn.probabilities(z), torch.tensor([[0.1, 0.45, 0.36, 0.09]]))
    assert corn.predict(z).tolist() == [1]
    # P(y>k) = 0.56, 0.46, 0.0046: probabilities 0.44, 0.10, 0.4554, 0.0046. The papers' rule
    # (count of P(y>k) > 0.5, the median) gives 1; the most probable class would be 2.
    z = torch.tensor([[logit(0.56), logit(0.46 / 0.56), logit(0.01)]])
    probs = corn.probabilities(z)
    torch.testing.assert_close(probs, torch.tensor([[0.44, 0.10, 0.4554, 0.0046]]))
    assert corn.predict(z).tolist() == [1] and probs.argmax(1).tolist() == [2]


# -------------------------------------------------------------------------------- CORAL


def coral_reference(scores, biases, ys) -> float:
    """P(y > k) = sigmoid(g + b_k); per sample the sum over the K-1 questions, then the mean."""
    per_sample = [
        sum(bce(g + b, 1.0 if y > k else 0.0) for k, b in enumerate(biases))
        for g, y in zip(scores, ys, strict=True)
    ]
    return sum(per_sample) / len(per_sample)


def coral_loss() -> MultiTaskLoss:
    return MultiTaskLoss((AGE, SEX), default="ce", age="coral", targets=TRAIN)


def test_coral_thresholds_start_at_the_training_label_distribution():
    # TRAIN's 8 labelled ages: bins 0, 1, 1, 2, 3, 3, 3, 3 -> 7, 5 and 4 samples above bins
    # 0, 1, 2; smoothed shares (count + 1/2) / 9 = 5/6, 11/18, 1/2
    bias = coral_loss().losses["age"].bias.detach()
    torch.testing.assert_close(bias, torch.tensor([math.log(5), math.log(11 / 7), 0.0]))
    # an untrained model (score 0) then predicts the (smoothed) training class shares
    (probs,) = MultiTaskLoss((AGE,), default="coral", targets=TRAIN).probabilities(
        torch.zeros(1, 1)
    )
    torch.testing.assert_close(probs, torch.tensor([[1 / 6, 2 / 9, 1 / 9, 1 / 2]]))


def test_coral_matches_reference_with_its_learned_biases():
    loss = coral_loss()
    assert loss.layout.sizes == (1, 2)
    coral = loss.losses["age"]
    start = coral.bias.detach().tolist()
    scores = [0.3, -1.1, 2.2, -0.4, 0.9]
    logits = torch.cat([torch.tensor(scores)[:, None], torch.zeros(5, 2)], 1)
    _, parts = loss(logits, labels())
    close(parts["age"], coral_reference(scores, start, AGE_LABELS))
    with torch.no_grad():
        coral.bias.copy_(torch.tensor([0.5, -0.2, -1.5]))
    _, parts = loss(logits, labels())
    close(parts["age"], coral_reference(scores, [0.5, -0.2, -1.5], AGE_LABELS))
    # the biases are trained: the loss reaches them
    parts["age"].backward()
    assert coral.bias.grad is not None and torch.count_nonzero(coral.bias.grad) == 3


def test_coral_decoding_by_hand():
    coral = coral_loss().losses["age"]
    with torch.no_grad():
        coral.bias.copy_(torch.tensor([1.0, 2 / 3, 1 / 3]))
    # biases 1, 2/3, 1/3: score 0 passes all three thresholds; -0.5 passes two
    # (sigmoid 0.62, 0.54, 0.46); -1.5 passes none (sigmoid 0.38, 0.30, 0.24)
    assert coral.predict(torch.tensor([[0.0], [-0.5], [-1.5]])).tolist() == [3, 2, 0]
    p = [sigmoid(-0.5 + b) for b in (1.0, 2 / 3, 1 / 3)]
    torch.testing.assert_close(
        coral.probabilities(torch.tensor([[-0.5]])),
        torch.tensor([[1 - p[0], p[0] - p[1], p[1] - p[2], p[2]]]),
    )


def test_coral_unordered_biases_stay_valid_and_are_flagged():
    coral = coral_loss().losses["age"]
    with torch.no_grad():
        coral.bias.copy_(torch.tensor([logit(0.45), logit(0.6), logit(0.2)]))
    z = torch.zeros(1, 1)
    # raw P(y>k) = 0.45, 0.6, 0.2 is not non-increasing; running minimum -> 0.45, 0.45, 0.2
    torch.testing.assert_close(coral.probabilities(z), torch.tensor([[0.55, 0.0, 0.25, 0.2]]))
    assert coral.predict(z).tolist() == [0]  # the raw count of sigmoids > 0.5 would say 1
    assert coral.diagnostics(z)["rank_inconsistent_rate"].tolist() == [True]
    with torch.no_grad():
        coral.bias.copy_(torch.tensor([1.0, 0.0, -1.0]))
    assert coral.diagnostics(z)["rank_inconsistent_rate"].tolist() == [False]


@pytest.mark.parametrize("name", ["corn", "coral"])
def test_ordinal_probabilities_are_distributions(name):
    loss = MultiTaskLoss((AGE,), default=name, targets=TRAIN)
    if name == "coral":
        with torch.no_grad():
            loss.losses["age"].bias.copy_(torch.tensor([0.3, 1.2, -0.8]))  # unordered
    z = torch.randn(200, loss.layout.total, generator=torch.Generator().manual_seed(0)) * 3
    (probs,) = loss.probabilities(z)
    assert probs.shape == (200, 4) and (probs >= 0).all()
    torch.testing.assert_close(probs.sum(1), torch.ones(200))


# ----------------------------------------------------------------------------- soft labels


def soft_reference(rows, ys, sigma) -> float:
    """Mean over samples of KL(q || softmax(z)), q_k proportional to exp(-(k-y)^2 / 2 sigma^2)."""
    out = []
    for row, y in zip(rows, ys, strict=True):
        q = [math.exp(-((k - y) ** 2) / (2 * sigma**2)) for k in range(len(row))]
        q = [v / sum(q) for v in q]
        log_norm = math.log(sum(math.exp(v) for v in row))
        out.append(sum(qk * (math.log(qk) - (z - log_norm)) for qk, z in zip(q, row, strict=True)))
    return sum(out) / len(out)


SOFT_LOGITS = [
    [0.2, 1.4, -0.3, 0.5],
    [-1.0, 0.3, 2.2, 0.1],
    [0.0, 0.0, 0.4, 1.9],
    [1.1, 0.7, -0.6, -1.3],
    [0.3, -0.2, 0.8, 0.6],
]


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.5])
def test_soft_labels_match_reference(sigma):
    loss = MultiTaskLoss((AGE, SEX), default="ce", age="soft", options={"soft": {"sigma": sigma}})
    _, parts = loss(torch.cat([torch.tensor(SOFT_LOGITS), torch.zeros(5, 2)], 1), labels())
    close(parts["age"], soft_reference(SOFT_LOGITS, AGE_LABELS, sigma))


def test_soft_labels_with_narrow_width_are_cross_entropy():
    z = torch.tensor(SOFT_LOGITS)
    soft = MultiTaskLoss((AGE,), default="soft", options={"soft": {"sigma": 0.05}})
    _, parts = soft(z, labels()[:, :1])
    close(parts["age"], float(F.cross_entropy(z, torch.tensor(AGE_LABELS))))
    (probs,) = soft.probabilities(z)
    torch.testing.assert_close(probs, torch.softmax(z, 1))


def test_soft_labels_cost_less_for_a_near_miss():
    """The point of soft targets: off by one bin costs less than off by three."""
    soft = MultiTaskLoss((AGE,), default="soft")
    near = torch.tensor([[0.0, 5.0, 0.0, 0.0]])  # confident in bin 1
    far = torch.tensor([[0.0, 0.0, 0.0, 5.0]])  # confident in bin 3
    truth = torch.tensor([[0]])
    assert float(soft(near, truth)[0]) < float(soft(far, truth)[0])
    ce = MultiTaskLoss((AGE,), default="ce")
    close(ce(near, truth)[0], float(ce(far, truth)[0]))  # plain CE cannot tell them apart


# ------------------------------------------------------------------------------ regression


def huber(x: float, delta: float) -> float:
    return 0.5 * x * x if abs(x) <= delta else delta * (abs(x) - 0.5 * delta)


# TRAIN's labelled ages: 20, 35, 40, 50, 70, 80, 65, 75
TRAIN_YEARS = [20.0, 35.0, 40.0, 50.0, 70.0, 80.0, 65.0, 75.0]
MEAN = sum(TRAIN_YEARS) / 8
SD = math.sqrt(sum((y - MEAN) ** 2 for y in TRAIN_YEARS) / 8)


def regression_loss(kind: str = "huber", delta: float = 1.0) -> MultiTaskLoss:
    return MultiTaskLoss(
        (AGE, SEX),
        default="ce",
        age="regression",
        targets=TRAIN,
        options={"regression": {"kind": kind, "delta": delta}},
    )


@pytest.mark.parametrize("kind,delta", [("huber", 1.0), ("huber", 0.3), ("mse", 1.0)])
def test_regression_matches_reference(kind, delta):
    loss = regression_loss(kind, delta)
    assert loss.layout.sizes == (1, 2)
    reg = loss.losses["age"]
    close(reg.center, MEAN)
    close(reg.scale, SD)
    preds = [0.5, -0.2, 1.9, -1.4, 0.1]
    midpoint = (45 + 60) / 2  # sample 4 has no raw age: its bin's midpoint stands in
    years = AGE_YEARS[:4] + [midpoint]
    want = []
    for z, y in zip(preds, years, strict=True):
        x = z - (y - MEAN) / SD
        want.append(huber(x, delta) if kind == "huber" else x * x)
    logits = torch.cat([torch.tensor(preds)[:, None], torch.zeros(5, 2)], 1)
    _, parts = loss(logits, labels(), values())
    close(parts["age"], sum(want) / 5)


def test_regression_decodes_years_and_bins_by_hand():
    reg = regression_loss().losses["age"]
    years = [17.0, 18.0, 29.99, 30.0, 59.9, 60.0, 90.0, 95.0, MEAN]
    z = torch.tensor([[(y - MEAN) / SD] for y in years])
    torch.testing.assert_close(reg.years(z), torch.tensor(years), rtol=1e-5, atol=1e-4)
    # bins are left-closed, the last one closed; outside the range: the first or last bin
    assert reg.predict(z).tolist() == [0, 0, 0, 1, 2, 3, 3, 3, 2]  # MEAN = 54.4 -> 45-60
    assert reg.probabilities(z) is None


def test_regression_needs_years_and_a_missing_label_is_left_out():
    loss = regression_loss("mse")
    logits = torch.cat([torch.tensor([[0.7], [9.0], [-0.3]]), torch.zeros(3, 2)], 1)
    y = torch.tensor([[1, 0], [-1, 1], [3, 1]])
    v = torch.tensor([[40.0, float("nan")], [99.0, float("nan")], [70.0, float("nan")]])
    _, parts = loss(logits, y, v)
    want = ((0.7 - (40 - MEAN) / SD) ** 2 + (-0.3 - (70 - MEAN) / SD) ** 2) / 2
    close(parts["age"], want)


# ---------------------------------------------------------------------------- class weights


def test_balanced_weights_match_scikit_learn():
    got = balanced_class_weights(TRAIN["age"].labels, 4)
    labelled = [y for y in TRAIN["age"].labels.tolist() if y >= 0]
    want = compute_class_weight("balanced", classes=np.arange(4), y=labelled)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    # a class absent from training gets weight 0 instead of infinity: 3 labelled, 3 classes,
    # class 0 twice (3 / (3 * 2)), class 2 once (3 / (3 * 1))
    assert balanced_class_weights(torch.tensor([0, 0, 2, -1]), 3).tolist() == [0.5, 0.0, 1.0]


def test_balanced_cross_entropy_is_torch_weighted_mean():
    loss = MultiTaskLoss((AGE, SEX), default="ce", class_weights="balanced", targets=TRAIN)
    z = torch.tensor(SOFT_LOGITS)
    logits = torch.cat([z, torch.zeros(5, 2)], 1)
    _, parts = loss(logits, labels())
    w_age = torch.tensor(
        compute_class_weight("balanced", classes=np.arange(4), y=[0, 1, 1, 2, 3, 3, 3, 3]),
        dtype=torch.float32,
    )
    close(parts["age"], float(F.cross_entropy(z, torch.tensor(AGE_LABELS), weight=w_age)))
    # by hand: sum of w[y] * nll over sum of w[y]
    nll = -torch.log_softmax(z, 1)[range(5), AGE_LABELS]
    w = w_age[AGE_LABELS]
    close(parts["age"], float((w * nll).sum() / w.sum()))


@pytest.mark.parametrize("name", ["bce", "corn", "coral", "soft", "regression"])
def test_balanced_weights_reweight_every_loss(name):
    """Duplicating a sample and halving both copies' weight changes nothing; each loss's
    class-weighted value is the weighted mean of its unweighted per-sample values."""
    plain = MultiTaskLoss((AGE,), default=name, targets=TRAIN)
    weighted = MultiTaskLoss((AGE,), default=name, targets=TRAIN, class_weights="balanced")
    if name == "coral":
        weighted.losses["age"].bias = plain.losses["age"].bias
    w = weighted.losses["age"].class_weight
    z = torch.randn(5, plain.layout.total, generator=torch.Generator().manual_seed(1))
    y = labels()[:, :1]
    per_sample = torch.stack(
        [plain.losses["age"].terms(z[i : i + 1], y[i, :1], values()[i, :1])[0] for i in range(5)]
    )
    counts = torch.stack(
        [plain.losses["age"].terms(z[i : i + 1], y[i, :1], values()[i, :1])[1] for i in range(5)]
    )
    sw = w[y[:, 0]]
    _, parts = weighted(z, y, values()[:, :1])
    close(parts["age"], float((sw * per_sample).sum().detach() / (sw * counts).sum()), tol=1e-5)
    unweighted = float(plain(z, y, values()[:, :1])[0].detach())
    assert not math.isclose(float(parts["age"].detach()), unweighted, rel_tol=1e-3)


# ------------------------------------------------------------------ per-task combination


def test_each_task_loss_is_set_on_its_own_and_bce_pools_only_its_tasks():
    loss = MultiTaskLoss((AGE, SEX), default="bce", age="corn")
    assert loss.task_loss_names() == {"age": "corn", "sex": "bce"}
    z_age, z_sex = torch.tensor(CORN_LOGITS), torch.tensor(SOFT_LOGITS)[:, :2]
    _, parts = loss(torch.cat([z_age, z_sex], 1), labels())
    close(parts["age"], corn_reference(CORN_LOGITS, AGE_LABELS))
    # sex alone in the BCE pool: the mean over its 5 x 2 outputs
    want = (
        sum(
            bce(float(z_sex[i, c]), 1.0 if SEX_LABELS[i] == c else 0.0)
            for i in range(5)
            for c in range(2)
        )
        / 10
    )
    close(parts["sex"], want)
    assert set(loss.diagnostics(torch.cat([z_age, z_sex], 1))) == {"incoherent_rate"}
    assert loss.diagnostic_tasks() == {"incoherent_rate": ["sex"]}


@pytest.mark.parametrize("name", ["corn", "coral", "soft", "regression"])
def test_task_with_no_label_in_batch_gives_zero_and_keeps_the_graph(name):
    loss = MultiTaskLoss((AGE, SEX), default="ce", age=name, targets=TRAIN)
    logits = torch.randn(3, loss.layout.total, requires_grad=True)
    y = torch.tensor([[-1, 0], [-1, 1], [-1, 1]])
    total, parts = loss(logits, y, torch.full((3, 2), float("nan")))
    assert float(parts["age"].detach()) == 0.0 and torch.isfinite(total)
    (grad,) = torch.autograd.grad(parts["age"], logits)
    assert torch.count_nonzero(grad) == 0


# --------------------------------------------------------------------- what is allowed


@pytest.mark.parametrize(
    "name,task,message",
    [
        ("regression", SEX, "needs a task binned from values.*unordered categories"),
        ("regression", GRADE, "needs a task binned from values.*ordered classes"),
        ("corn", SEX, "needs ordered classes"),
        ("coral", SEX, "needs ordered classes"),
        ("soft", SEX, "needs ordered classes"),
    ],
)
def test_loss_that_does_not_fit_the_task_says_what_is_allowed(name, task, message):
    with pytest.raises(ConfigError, match=message) as err:
        MultiTaskLoss((AGE, task), default="ce", **{task.name: name})
    allowed = str(err.value).split("allowed for")[1]
    expected = ["bce", "ce"] + (["coral", "corn", "soft"] if task is GRADE else [])
    assert allowed.split(": ")[1].split(", ") == sorted(expected)


def test_ordered_categories_take_the_ordinal_losses():
    loss = MultiTaskLoss((AGE, GRADE), default="corn", age="soft")
    assert loss.task_loss_names() == {"age": "soft", "grade": "corn"}


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"age": "nonsense"}, "loss.age: unknown loss 'nonsense'; available: bce, ce, coral, corn"),
        ({"default": "base"}, "loss.default: unknown loss 'base'"),
        ({"height": "ce"}, "loss.height names no task; the tasks are \\['age', 'sex'\\]"),
        ({"class_weights": "inverse"}, "class_weights must be null .* or 'balanced'"),
        ({"options": {"soft": {"sigma": 0}}}, "soft.sigma must be a number > 0"),
        ({"options": {"regression": {"kind": "l1"}}}, "kind must be one of \\['huber', 'mse'\\]"),
        ({"options": {"regression": {"delta": -1}}}, "delta must be a number > 0"),
        ({"options": {"focal": {"gamma": 2}}}, "no loss is called 'focal'"),
        ({"options": {"ce": {"gamma": 2}}}, "loss 'ce' takes no options"),
    ],
)
def test_bad_loss_settings_are_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        MultiTaskLoss.check_config((AGE, SEX), **kwargs)
