"""The report's statistics against independent computations: scipy written out by hand,
baycomp's correlated t-test, scikit-learn on every bootstrap resample, and the honest
statements for zero variance and a single split."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from baycomp import CorrelatedTTest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score

from multihead.reporting.statistics import (
    compare,
    compare_pair,
    corrected_t,
    evaluations,
    holm,
    paired_bootstrap,
    posterior_shares,
    sentence,
    summarise,
    t_interval,
)


def holm_by_hand(p):
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        out[i] = min(1.0, running)
    return out


def test_t_interval_and_holm_match_scipy_and_a_hand_holm():
    rng = np.random.default_rng(1)
    a = rng.normal(0.5, 0.1, 5)
    _, low, high, _ = t_interval(a)
    assert (low, high) == pytest.approx(stats.t.interval(0.95, 4, loc=a.mean(), scale=stats.sem(a)))
    p = list(rng.uniform(0, 0.2, 9))
    np.testing.assert_allclose(holm(p), holm_by_hand(p))
    assert math.isnan(holm([0.01, math.nan])[1]) and holm([0.01, math.nan])[0] == 0.01
    mean, low, high, n = t_interval([0.8, 0.8, 0.8])  # no spread: no zero-width interval
    assert mean == pytest.approx(0.8) and n == 3 and math.isnan(low) and math.isnan(high)


def test_corrected_t_is_nadeau_bengio_written_out():
    diffs = np.array([0.01, 0.03, 0.02, 0.05, 0.04, 0.0, 0.02, 0.03, 0.01, 0.04])
    share = 0.25  # 5-fold: n_test / n_train = 1/4
    out = corrected_t(diffs, share, alpha=0.1)
    se = math.sqrt((1 / 10 + 0.25) * diffs.var(ddof=1))
    t = diffs.mean() / se
    assert out["t"] == pytest.approx(t)
    assert out["p"] == pytest.approx(2 * (1 - stats.t.cdf(abs(t), 9)))
    assert out["ci_high"] - out["diff"] == pytest.approx(stats.t.ppf(0.95, 9) * se)
    # the uncorrected paired t-test would be far more confident
    assert stats.ttest_1samp(diffs, 0).pvalue < out["p"] / 5


@pytest.mark.parametrize("rope", [0.0, 0.01, 0.05])
def test_posterior_probabilities_equal_baycomp(rope):
    rng = np.random.default_rng(3)
    k, runs = 5, 2
    x = rng.normal(0.80, 0.03, k * runs)  # variant
    y = x - rng.normal(0.02, 0.02, k * runs)  # reference
    out = corrected_t(x - y, 1 / (k - 1))
    mine = posterior_shares(out["diff"], out["scale"], out["df"], rope)
    # baycomp's diff is y - x: its left mass is "x better" (higher is better)
    probs = CorrelatedTTest.probs(x, y, rope=rope, runs=runs)
    if rope == 0:  # baycomp returns (x better, y better) without a rope
        assert (mine[2], mine[0]) == pytest.approx(probs, abs=1e-9) and mine[1] == 0
    else:
        assert (mine[2], mine[1], mine[0]) == pytest.approx(probs, abs=1e-9)


def predictions(true, pred, ids=None, task="sex"):
    ids = ids if ids is not None else [f"s{i}" for i in range(len(true))]
    return pd.DataFrame({"sample_id": ids, f"{task}_true": true, f"{task}_pred": pred})


def test_paired_bootstrap_is_scikit_learn_on_every_resample():
    rng = np.random.default_rng(0)
    n, resamples = 60, 200
    true = rng.choice(["female", "male"], n)
    a = np.where(rng.random(n) < 0.85, true, np.where(true == "male", "female", "male"))
    b = np.where(rng.random(n) < 0.70, true, np.where(true == "male", "female", "male"))
    out = paired_bootstrap(
        [predictions(true, a)],
        [predictions(true, b)],
        "sex/balanced_accuracy",
        alpha=0.05,
        resamples=resamples,
        seed=7,
    )
    idx = np.random.default_rng(7).integers(0, n, size=(resamples, n))
    by_hand = np.array(
        [
            balanced_accuracy_score(true[i], a[i]) - balanced_accuracy_score(true[i], b[i])
            for i in idx
        ]
    )
    np.testing.assert_allclose(np.sort(out["draws"]), np.sort(by_hand))
    assert out["diff"] == pytest.approx(
        balanced_accuracy_score(true, a) - balanced_accuracy_score(true, b)
    )
    assert (out["ci_low"], out["ci_high"]) == pytest.approx(
        tuple(np.quantile(by_hand, [0.025, 0.975]))
    )
    again = paired_bootstrap(
        [predictions(true, a)],
        [predictions(true, b)],
        "sex/balanced_accuracy",
        resamples=200,
        seed=7,
    )
    np.testing.assert_array_equal(again["draws"], out["draws"])  # seeded


def evals_of(values: dict[str, list[float]], column="sex/balanced_accuracy", n_test=100):
    rows = []
    for variant, per_split in values.items():
        for j, v in enumerate(per_split):
            rows.append(
                {
                    "variant": variant,
                    "kind": "network",
                    "split": f"fold={j}",
                    "data_key": "d",
                    "n_seeds": 1,
                    "n_train": 300,
                    "n_val": 100,
                    "n_test": n_test,
                    column: v,
                }
            )
    return pd.DataFrame(rows)


def test_zero_variance_gives_words_not_infinities():
    same = compare_pair(
        evals_of({"a": [0.8, 0.7, 0.9], "b": [0.8, 0.7, 0.9]}),
        "a",
        "b",
        "sex/balanced_accuracy",
        "primary",
    )
    assert same.status == "identical" and same.diff == 0.0 and math.isnan(same.p)
    const = compare_pair(
        evals_of({"a": [0.81, 0.71, 0.91], "b": [0.8, 0.7, 0.9]}),
        "a",
        "b",
        "sex/balanced_accuracy",
        "primary",
    )
    assert const.status == "constant" and math.isnan(const.ci_low) and math.isnan(const.p)
    frame = compare(evals_of({"b": [0.8, 0.7, 0.9], "a": [0.81, 0.71, 0.91]}), reference="b")
    text = frame.set_index("variant").loc["a", "sentence"]
    assert "too little to test" in text and "inf" not in text
    assert frame.loc[0, "verdict"] == "untested"
    one = compare_pair(
        evals_of({"a": [0.8], "b": [0.7]}), "a", "b", "sex/balanced_accuracy", "primary"
    )  # one split, no predictions to resample
    assert one.status == "too few" and one.diff == pytest.approx(0.1)
    row = {**one.as_dict(), "p_holm": math.nan, "verdict": "untested"}
    assert "not tested" in sentence(row) and "nan" not in sentence(row)


def test_sentences_print_signed_intervals_at_the_level_of_alpha():
    row = {
        "variant": "split+ce",
        "reference": "fused+bce",
        "metric": "sex/balanced_accuracy",
        "family": "primary",
        "n_splits": 10,
        "diff": 0.013,
        "ci_low": -0.006,
        "ci_high": 0.032,
        "p": 0.2,
        "p_holm": 0.4,
        "p_worse": 0.01,
        "p_equal": 0.3,
        "p_better": 0.69,
        "rope": 0.01,
        "method": "corrected t",
        "status": "tested",
        "verdict": "unclear",
    }
    text = sentence(row, alpha=0.1)
    assert "[-0.006, +0.032] (90%)" in text and "does not differ clearly" in text
    lower = {
        **row,
        "metric": "age/mae_years",
        "diff": -1.5,
        "ci_low": -2.5,
        "ci_high": -0.5,
        "verdict": "better",
        "p_holm": 0.01,
    }
    assert "beats" in sentence(lower) and "[-2.500, -0.500]" in sentence(lower)


def test_seeds_are_averaged_within_a_split_and_their_spread_kept():
    runs = pd.DataFrame(
        [
            {
                "status": "ok",
                "variant": "a",
                "split": f"fold={f}",
                "data_key": "d",
                "seed": s,
                "n_train": 300,
                "n_val": 100,
                "n_test": 100,
                "sex/balanced_accuracy": 0.8 + f / 100 + s / 1000,
            }
            for f in range(3)
            for s in range(2)
        ]
    )
    evals = evaluations(runs)
    assert len(evals) == 3 and (evals["n_seeds"] == 2).all()
    np.testing.assert_allclose(evals["sex/balanced_accuracy"], [0.8005, 0.8105, 0.8205])
    np.testing.assert_allclose(evals["sex/balanced_accuracy.seed_sd"], np.std([0, 0.001], ddof=1))
    summary = summarise(evals).set_index("variant")
    assert summary.loc["a", "n_splits"] == 3
    assert summary.loc["a", "sex/balanced_accuracy.seed_sd"] == pytest.approx(0.000707, abs=1e-6)


def test_one_split_gets_a_bootstrap_interval_from_its_test_samples():
    rng = np.random.default_rng(2)
    n = 80
    true = rng.choice(["female", "male"], n)
    pred = {
        v: np.where(rng.random(n) < acc, true, np.where(true == "male", "female", "male"))
        for v, acc in (("a", 0.9), ("b", 0.6))
    }
    frames = {v: predictions(true, p) for v, p in pred.items()}
    evals = evals_of({v: [balanced_accuracy_score(true, p)] for v, p in pred.items()}, n_test=n)
    summary = summarise(evals, lambda v, s: [frames[v]]).set_index("variant")
    low, high = summary.loc["a", ["sex/balanced_accuracy.ci_low", "sex/balanced_accuracy.ci_high"]]
    assert low < summary.loc["a", "sex/balanced_accuracy.mean"] < high and high - low > 0.05
    frame = compare(evals, reference="b", predictions=lambda v, s: [frames[v]])
    row = frame.set_index("metric").loc["sex/balanced_accuracy"]
    assert row["method"] == "bootstrap" and row["verdict"] == "better"
    assert row["p_better"] > 0.95 and "paired bootstrap" in row["sentence"]
