"""Tests for the synthetic cohort generator: structure, determinism and biology."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from multihead.data.synthetic import Cohort, _generate, make_cohort

FEMALE_GENES = ["XIST", "TSIX"]
Y_GENES = ["RPS4Y1", "DDX3Y", "KDM5D", "UTY", "EIF1AY", "ZFY", "USP9Y", "NLGN4Y"]
SEX_GENES = FEMALE_GENES + Y_GENES

SMALL = {"n_samples": 600, "n_features": 1500}


@pytest.fixture(scope="module")
def small():
    """A small cohort plus its latent truth, shared by the read-only tests."""
    return _generate(seed=7, **SMALL)


@pytest.fixture(scope="module")
def cohort(small) -> Cohort:
    return small[0]


def _col(cohort: Cohort, names: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(cohort.feature_names)}
    return np.array([index[n] for n in names], dtype=int)


def _abs_corr_with(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|Pearson r| between every column of x and the vector y (constant columns -> 0)."""
    xc = x - x.mean(axis=0)
    yc = y - y.mean()
    denom = np.sqrt((xc**2).sum(axis=0) * (yc**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (yc @ xc) / denom
    return np.abs(np.nan_to_num(r))


def _y_based_male_call(cohort: Cohort) -> np.ndarray:
    """Call sex from expression: mean Y-gene expression above XIST means male."""
    x = cohort.features
    y_score = x[:, _col(cohort, Y_GENES)].mean(axis=1)
    xist = x[:, _col(cohort, ["XIST"])[0]]
    return y_score > xist


# --------------------------------------------------------------------------- structure


def test_shapes_dtypes_and_names(cohort: Cohort) -> None:
    n, p = SMALL["n_samples"], SMALL["n_features"]
    assert isinstance(cohort.features, np.ndarray)
    assert cohort.features.shape == (n, p)
    assert cohort.features.dtype == np.float32
    assert np.isfinite(cohort.features).all()
    assert (cohort.features >= 0).all()

    names = cohort.feature_names
    assert isinstance(names, list) and len(names) == p
    assert len(set(names)) == p
    assert set(SEX_GENES) <= set(names)
    others = [n for n in names if n not in SEX_GENES]
    assert len(others) == p - len(SEX_GENES)
    assert all(re.fullmatch(r"GENE\d{5}", n) for n in others)
    assert sorted(others) == [f"GENE{i:05d}" for i in range(1, len(others) + 1)]

    s = cohort.samples
    assert isinstance(s, pd.DataFrame)
    assert s.index.name == "sample_id"
    assert list(s.index) == [f"S{i:05d}" for i in range(1, n + 1)]
    assert {"age", "sex", "batch"} <= set(s.columns)
    assert s["age"].dtype == np.float64
    assert set(s["sex"]) == {"female", "male"}
    assert set(s["batch"]) <= {"batch1", "batch2", "batch3"}
    assert all(isinstance(b, str) for b in s["batch"])


def test_informative_lists(cohort: Cohort) -> None:
    assert set(cohort.informative) == {"age", "sex"}
    assert set(cohort.informative["sex"]) == set(SEX_GENES)
    age_genes = cohort.informative["age"]
    assert len(age_genes) == len(set(age_genes)) == 300
    assert set(age_genes) <= set(cohort.feature_names)
    assert not set(age_genes) & set(SEX_GENES)


def test_log_normalised_to_10k(cohort: Cohort) -> None:
    """expm1 of each row sums to 1e4: log1p(counts / total * 1e4) was applied."""
    totals = np.expm1(cohort.features.astype(np.float64)).sum(axis=1)
    np.testing.assert_allclose(totals, 1e4, rtol=1e-4)
    # Count data: many exact zeros, and genes span a wide range of mean expression.
    assert 0.1 < (cohort.features == 0).mean() < 0.7
    gene_means = cohort.features.mean(axis=0)
    assert np.quantile(gene_means, 0.95) > 5 * np.quantile(gene_means, 0.05)


# --------------------------------------------------------------------------- determinism


def test_same_seed_is_identical() -> None:
    a = make_cohort(seed=3, n_samples=200, n_features=800)
    b = make_cohort(seed=3, n_samples=200, n_features=800)
    np.testing.assert_array_equal(a.features, b.features)
    assert a.feature_names == b.feature_names
    pd.testing.assert_frame_equal(a.samples, b.samples)
    assert a.informative == b.informative


def test_different_seed_differs() -> None:
    a = make_cohort(seed=3, n_samples=200, n_features=800)
    b = make_cohort(seed=4, n_samples=200, n_features=800)
    assert not np.array_equal(a.features, b.features)
    assert not np.allclose(a.samples["age"], b.samples["age"])
    assert a.informative["age"] != b.informative["age"]


def test_global_numpy_rng_untouched() -> None:
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    make_cohort(seed=0, n_samples=100, n_features=500)
    np.testing.assert_array_equal(np.random.random(3), expected)


# --------------------------------------------------------------------------- sex


def test_sex_roughly_balanced(cohort: Cohort) -> None:
    male_fraction = (cohort.samples["sex"] == "male").mean()
    assert 0.4 < male_fraction < 0.6


def test_sex_genes_differ_by_observed_sex(cohort: Cohort) -> None:
    x = cohort.features
    male = (cohort.samples["sex"] == "male").to_numpy()
    for gene in Y_GENES:
        j = _col(cohort, [gene])[0]
        m, f = x[male, j].mean(), x[~male, j].mean()
        assert m > 0.3, gene
        assert m > 5 * f, gene
        # Near zero in (truly) female samples: the median female has no read.
        assert np.median(x[~male, j]) == 0.0, gene
    for gene in FEMALE_GENES:
        j = _col(cohort, [gene])[0]
        assert x[~male, j].mean() > 3 * x[male, j].mean(), gene
    xist = x[:, _col(cohort, ["XIST"])[0]]
    assert xist[~male].mean() > 1.5


def test_sex_label_noise_rate() -> None:
    cohort, truth = _generate(seed=11, n_samples=2000, n_features=600, n_age_features=50)
    observed_male = (cohort.samples["sex"] == "male").to_numpy()
    disagreement = (_y_based_male_call(cohort) != observed_male).mean()
    assert 0.003 <= disagreement <= 0.03
    # The expression-based call recovers the hidden true sex almost perfectly.
    assert (_y_based_male_call(cohort) == truth.true_male).mean() > 0.995
    assert truth.flipped.sum() == 20
    np.testing.assert_array_equal(observed_male, truth.true_male ^ truth.flipped)


def test_no_label_noise_means_expression_agrees() -> None:
    cohort = make_cohort(
        seed=5, n_samples=800, n_features=600, n_age_features=50, sex_label_noise=0
    )
    observed_male = (cohort.samples["sex"] == "male").to_numpy()
    assert (_y_based_male_call(cohort) != observed_male).mean() < 0.003


# --------------------------------------------------------------------------- age


def test_ages_within_bounds_and_uneven(cohort: Cohort) -> None:
    age = cohort.samples["age"].to_numpy()
    assert age.min() >= 18.0 and age.max() <= 90.0
    assert len(np.unique(age)) > 0.9 * len(age)  # float years, not integers
    counts = np.bincount(((age - 18.0) // 4).astype(int), minlength=18)
    assert counts.size == 18
    assert counts.max() >= 3 * counts.min()
    # The extremes are the rare ends of the distribution.
    assert counts[0] < counts.mean() / 3 and counts[-1] < counts.mean() / 2


def test_custom_age_range() -> None:
    cohort = make_cohort(seed=1, n_samples=300, n_features=500, age_min=40, age_max=60)
    age = cohort.samples["age"]
    assert age.min() >= 40 and age.max() <= 60
    assert age.max() - age.min() > 15


def test_informative_age_genes_correlate_with_age(cohort: Cohort) -> None:
    age = cohort.samples["age"].to_numpy()
    r = _abs_corr_with(cohort.features.astype(np.float64), age)
    informative = _col(cohort, cohort.informative["age"])
    sex = _col(cohort, SEX_GENES)
    rest = np.setdiff1d(np.arange(cohort.features.shape[1]), np.r_[informative, sex])
    random_rest = np.random.default_rng(0).choice(rest, size=informative.size, replace=False)
    assert r[informative].mean() > 3 * r[random_rest].mean()
    assert r[informative].mean() > 0.1
    # ...but each gene alone is a weak predictor.
    assert np.median(r[informative]) < 0.5


def test_age_by_sex_interaction_genes(small) -> None:
    """Genes flagged as interacting have age slopes that differ between the sexes."""
    cohort, truth = small
    age = cohort.samples["age"].to_numpy()
    genes = cohort.informative["age"]
    kinds = np.array([truth.age_kind[g] for g in genes])
    assert set(kinds) == {"linear", "saturating", "interaction"}
    assert 0.03 < (kinds == "interaction").mean() < 0.2
    x = cohort.features[:, _col(cohort, genes)].astype(np.float64)

    def slopes(mask: np.ndarray) -> np.ndarray:
        a = age[mask] - age[mask].mean()
        return a @ (x[mask] - x[mask].mean(axis=0)) / (a @ a)

    gap = np.abs(slopes(truth.true_male) - slopes(~truth.true_male))
    assert gap[kinds == "interaction"].mean() > 2 * gap[kinds == "linear"].mean()


def test_ridge_on_informative_age_features_predicts_age(cohort: Cohort) -> None:
    x = cohort.features[:, _col(cohort, cohort.informative["age"])]
    age = cohort.samples["age"].to_numpy()
    x_tr, x_te, y_tr, y_te = train_test_split(x, age, test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(x_tr)
    model = Ridge(alpha=100.0).fit(scaler.transform(x_tr), y_tr)
    r = np.corrcoef(model.predict(scaler.transform(x_te)), y_te)[0, 1]
    assert 0.5 < r < 0.995


def test_random_features_do_not_predict_age(cohort: Cohort) -> None:
    """Control for the ridge test: non-informative genes carry (almost) no age signal."""
    informative = set(cohort.informative["age"]) | set(SEX_GENES)
    rest = [n for n in cohort.feature_names if n not in informative][:300]
    x = cohort.features[:, _col(cohort, rest)]
    age = cohort.samples["age"].to_numpy()
    x_tr, x_te, y_tr, y_te = train_test_split(x, age, test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(x_tr)
    model = Ridge(alpha=1000.0).fit(scaler.transform(x_tr), y_tr)
    r = np.corrcoef(model.predict(scaler.transform(x_te)), y_te)[0, 1]
    assert r < 0.3


# --------------------------------------------------------------------------- modules and batches


def test_genes_within_a_module_correlate(small) -> None:
    cohort, truth = small
    module = truth.module_of_feature
    assert module.shape == (cohort.features.shape[1],)
    cols = np.flatnonzero(module >= 0)
    assert len(np.unique(module[cols])) == 20
    corr = np.corrcoef(cohort.features[:, cols].T.astype(np.float64))
    same = module[cols][:, None] == module[cols][None, :]
    off_diag = ~np.eye(cols.size, dtype=bool)
    within = corr[same & off_diag].mean()
    across = corr[~same].mean()
    assert within > 0.05
    assert within > across + 0.05
    assert abs(across) < 0.03


def test_no_modules_option() -> None:
    _, truth = _generate(seed=2, n_samples=100, n_features=500, n_modules=0)
    assert (truth.module_of_feature == -1).all()


def test_batch_means_differ(cohort: Cohort) -> None:
    """Between-batch spread of gene means is far above that of a random relabelling."""
    x = cohort.features.astype(np.float64)
    batch = cohort.samples["batch"].to_numpy()
    assert len(set(batch)) == 3

    def between_batch_variance(labels: np.ndarray) -> float:
        means = np.stack([x[labels == b].mean(axis=0) for b in np.unique(labels)])
        return float(means.var(axis=0).mean())

    shuffled = np.random.default_rng(0).permutation(batch)
    assert between_batch_variance(batch) > 3 * between_batch_variance(shuffled)


def test_n_batches_option() -> None:
    cohort = make_cohort(seed=0, n_samples=400, n_features=500, n_batches=5)
    assert set(cohort.samples["batch"]) == {f"batch{i}" for i in range(1, 6)}


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": 10.5}, "n_samples"),
        ({"n_features": 310}, "n_features"),
        ({"n_features": 100, "n_age_features": 95}, "n_features"),
        ({"n_batches": 0}, "n_batches"),
        ({"n_modules": -1}, "n_modules"),
        ({"n_age_features": -3}, "n_age_features"),
        ({"sex_label_noise": -0.1}, "sex_label_noise"),
        ({"sex_label_noise": 0.6}, "sex_label_noise"),
        ({"sex_label_noise": float("nan")}, "sex_label_noise"),
        ({"age_min": 50.0, "age_max": 40.0}, "age_max"),
        ({"age_min": -1.0}, "age_min"),
        ({"seed": -1}, "seed"),
        ({"seed": True}, "seed"),
    ],
)
def test_invalid_arguments_raise(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        make_cohort(**kwargs)


def test_small_valid_edge_case() -> None:
    cohort = make_cohort(seed=0, n_samples=1, n_features=11, n_age_features=0, n_batches=1)
    assert cohort.features.shape == (1, 11)
    assert cohort.informative["age"] == []
    assert list(cohort.samples["batch"]) == ["batch1"]
