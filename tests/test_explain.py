"""Feature attributions per head (`multihead.explain`): the axioms on models whose answer is
known, the planted genes of the built-in cohort, the ALL cohort's sex probes, and the command
on runs and sweeps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from multihead import explain
from multihead.data.datamodule import prepare_cohort
from multihead.errors import USAGE_EXIT_CODE
from multihead.predict import load_run
from multihead.run_folder import (
    ATTRIBUTIONS_SUMMARY_FILE,
    BEST_CHECKPOINT,
    EXPLANATION_FILE,
    FAILED_FILE,
    SPLITS_FILE,
    attributions_file,
    attributions_plot_file,
    read_informative,
    write_failure,
)
from multihead.tasks import Task
from multihead.training.builders import build_module
from multihead.training.run import train
from tests.conftest import ALL_LEUKEMIA, ALL_LEUKEMIA_OVERRIDES, SMALL, compose_config

ROOT = Path(__file__).resolve().parents[1]
RPS4Y1, XIST = "41214_at", "38446_at"


# --------------------------------------------------------------------- axioms, no training


def test_ig_of_a_linear_map_is_coefficient_times_input():
    """f(x) = Wx + b: IG's attribution of output c is W[c] * (x - 0), exactly (completeness:
    they sum to f(x) - f(0)); gradient x input is the same for a linear map."""
    torch.manual_seed(0)
    linear = nn.Linear(30, 3)
    x = np.random.default_rng(0).normal(size=(40, 30)).astype(np.float32)
    target = np.arange(40) % 3
    w = linear.weight.detach().numpy()
    expected = w[target] * x
    for method in explain.METHODS:
        attr, delta = explain.attribute(linear, x, target, method, steps=7)
        np.testing.assert_allclose(attr, expected, rtol=1e-5, atol=1e-6)
    attr, delta = explain.attribute(linear, x, target, "ig", steps=7)
    f = linear(torch.from_numpy(x)).detach().numpy()[np.arange(40), target]
    f0 = linear.bias.detach().numpy()[target]
    np.testing.assert_allclose(attr.sum(axis=1), f - f0, rtol=1e-5, atol=1e-5)
    assert np.abs(delta).max() < 1e-5


def test_ig_is_complete_on_a_nonlinear_network_and_batching_changes_nothing(monkeypatch):
    """A softmax MLP: the attributions of the true class's probability sum to
    p(x) - p(0) up to the integration error that the convergence delta reports; splitting
    the samples into small batches (the memory bound) gives the same numbers."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(20, 16), nn.Tanh(), nn.Linear(16, 4), nn.Softmax(dim=1))
    x = np.random.default_rng(1).normal(size=(25, 20)).astype(np.float32)
    target = np.arange(25) % 4
    whole, delta = explain.attribute(net, x, target, "ig", steps=50)
    p = net(torch.from_numpy(x)).detach().numpy()[np.arange(25), target]
    p0 = net(torch.zeros(1, 20)).detach().numpy()[0, target]
    np.testing.assert_allclose(whole.sum(axis=1) - (p - p0), delta, atol=1e-6)
    assert np.abs(delta).max() < 1e-3
    monkeypatch.setattr(explain, "MAX_FLOATS", 20 * 50 * 3)  # 3 samples per batch
    assert explain.batch_rows(20, 50) == 3
    batched, _ = explain.attribute(net, x, target, "ig", steps=50)
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=1e-7)


def test_memory_bound_of_a_large_cohort():
    rows = explain.batch_rows(50_000, explain.DEFAULT_STEPS)
    assert rows >= 1 and rows * explain.DEFAULT_STEPS * 50_000 <= explain.MAX_FLOATS


def test_fused_and_split_heads_get_the_same_attributions(tmp_path):
    """Same seed, same weights, the same function: attributions agree to float rounding."""
    cfgs = {
        h: compose_config([*SMALL, f"head={h}", "loss=ce"], tmp_path / h)
        for h in ("fused", "split")
    }
    cohort = prepare_cohort(cfgs["fused"].data)
    x = cohort.feature_rows(cohort.splits["test"][:40])
    labels = cohort.labels[cohort.splits["test"][:40]].numpy()
    found = {}
    for head, cfg in cfgs.items():
        module = build_module(cfg, cohort, None).eval()
        found[head] = [
            explain.attribute(explain.task_output(module, j), x, labels[:, j], "ig", 20)[0]
            for j in range(len(cohort.tasks))
        ]
    for fused, split in zip(found["fused"], found["split"], strict=True):
        assert np.abs(fused).max() > 0
        np.testing.assert_allclose(fused, split, rtol=1e-4, atol=1e-6 * np.abs(fused).max())


def test_importance_table_ranks_and_splits_by_class():
    attr = np.array([[1.0, -3.0, 0.0], [-1.0, 1.0, 0.5], [2.0, -1.0, 0.0]])
    codes = np.array([0, 1, 1])
    task = Task(name="sex", column="sex", classes=("female", "male"))
    table = explain.importance_table(attr, codes, task, ["a", "b", "c"], {"a": "A"})
    assert list(table["feature"]) == ["b", "a", "c"]
    assert list(table["rank"]) == [1, 2, 3]
    row = table.set_index("feature").loc["b"]
    assert row["mean_abs"] == pytest.approx(5 / 3) and row["signed_mean"] == pytest.approx(-1)
    assert row["mean_abs[female]"] == pytest.approx(3) and row["mean_abs[male]"] == 1
    assert list(table["symbol"]) == ["", "A", ""]
    assert explain.precision_at_k(["a", "b", "c", "d"], {"b", "d", "x"}, 2) == 0.5


# ------------------------------------------------------------------ trained, built-in cohort


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("explain") / "run"
    train(compose_config(SMALL, out))
    return out


def test_heads_find_their_own_planted_genes(trained_run):
    facts = explain.explain_run(trained_run)
    informative = read_informative(trained_run)
    for task, t in facts["tasks"].items():
        table = pd.read_csv(trained_run / attributions_file(task))
        top = table["feature"].tolist()
        assert t["precision_at"]["10"] == explain.precision_at_k(top, informative[task], 10)
        assert t["delta_mean_abs"] < 1e-3
        assert (trained_run / attributions_plot_file(task)).stat().st_size > 0
    sex, age = facts["tasks"]["sex"], facts["tasks"]["age"]
    assert sex["precision_at"]["10"] >= 0.9
    assert age["precision_at"]["50"] >= 0.6  # 100 of 400 genes planted: chance is 0.25
    assert age["other_planted_at"]["50"] <= 0.2  # the sex genes do not dominate
    gxi = explain.explain_run(trained_run, method="gxi")
    assert gxi["tasks"]["sex"]["precision_at"]["10"] >= 0.9
    assert "delta_mean_abs" not in gxi["tasks"]["sex"]


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, ignore=shutil.ignore_patterns("attributions_*", EXPLANATION_FILE))
    return to


def test_sweep_with_a_failed_job_explains_the_others(trained_run, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    copy_run(trained_run, sweep / "0_seed=0")
    copy_run(trained_run, sweep / "1_seed=1")
    broken = copy_run(trained_run, sweep / "2_seed=2")
    (broken / "metrics.json").unlink()
    write_failure(broken, "boom")
    lost = copy_run(trained_run, sweep / "3_seed=3")
    (lost / BEST_CHECKPOINT).unlink()
    assert explain.main([str(sweep), "--steps", "10"]) == 0
    out = capsys.readouterr()
    assert "skipped 2_seed=2: boom" in out.out and str(lost / BEST_CHECKPOINT) in out.err
    assert (sweep / "0_seed=0" / EXPLANATION_FILE).exists() and not (
        broken / EXPLANATION_FILE
    ).exists()
    summary = pd.read_csv(sweep / ATTRIBUTIONS_SUMMARY_FILE)
    reps = summary[summary["comparison"] == "replicates"].set_index("task")
    assert set(reps.index) == {"age", "sex"} and (reps["jobs"] == 2).all()
    splits = pd.read_csv(sweep / "0_seed=0" / SPLITS_FILE)
    n_test = int((splits["split"] == "test").sum())
    assert reps.loc["sex", "samples"] == 2 * n_test  # both jobs' test samples
    # two copies of one run: identical importance vectors
    assert reps["spearman"].tolist() == pytest.approx([1.0, 1.0])
    assert reps["top_k_overlap"].tolist() == pytest.approx([1.0, 1.0])
    section = explain.explanation_section(sweep)
    assert section.startswith(explain.SECTION_TITLE) and "### sex" in section
    top_sex = pd.read_csv(sweep / "0_seed=0" / attributions_file("sex"))["feature"].iloc[0]
    assert top_sex in section.split("### sex")[1]
    lines = section.splitlines()
    start = lines.index(
        "| variant | jobs | Spearman | top-k overlap | precision@10 | precision@50 |"
    )
    table = lines[start : lines.index("", start)]
    assert len(table) == 3 and {line.count("|") for line in table} == {7}


def test_stability_of_two_different_vectors():
    a = pd.Series([4.0, 3.0, 2.0, 1.0], index=list("abcd"))
    b = pd.Series([1.0, 2.0, 3.0, 4.0], index=list("abcd"))
    rho, overlap = explain.compare_vectors(a, b, top_k=2)
    assert rho == pytest.approx(-1.0) and overlap == 0.0


def test_cli_on_a_run_and_on_bad_folders(trained_run, tmp_path, capsys):
    run = copy_run(trained_run, tmp_path / "run")
    assert explain.main([str(run), "--method", "gxi", "--top-k", "5"]) == 0
    facts = json.loads((run / EXPLANATION_FILE).read_text())
    assert facts["method"] == "gxi" and len(facts["tasks"]["sex"]["top"]) == 5
    empty = tmp_path / "empty"
    empty.mkdir()
    (run / BEST_CHECKPOINT).unlink()
    for folder in (empty, tmp_path / "absent", run):
        with pytest.raises(SystemExit) as exit_:
            explain.main([str(folder)])
        assert exit_.value.code == USAGE_EXIT_CODE
        assert str(folder) in capsys.readouterr().err


def test_feature_annotation_is_shown_next_to_the_id(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path / "run")
    names = load_run(run).preprocessor.feature_names
    annotation = tmp_path / "annotation.csv"
    symbols = pd.DataFrame({"feature": names, "symbol": [f"sym_{n}" for n in names]})
    symbols.to_csv(annotation, index=False)
    explain.explain_run(run, method="gxi", annotation=annotation)
    table = pd.read_csv(run / attributions_file("sex"))
    assert (table["symbol"] == "sym_" + table["feature"]).all()
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"id": ["x"]}).to_csv(bad)
    with pytest.raises(explain.DataError, match="bad.csv"):
        explain.explain_run(run, method="gxi", annotation=bad)
    assert FAILED_FILE not in {p.name for p in run.iterdir()}


# ------------------------------------------------------------------------------ real data


@pytest.mark.skipif(not ALL_LEUKEMIA.is_dir(), reason="shared ALL leukemia cohort not present")
def test_all_cohort_sex_head_reads_the_sex_probes(tmp_path):
    """The ALL cohort's README: RPS4Y1 (41214_at) and XIST (38446_at) separate the sexes."""
    out = tmp_path / "run"
    overrides = [
        *ALL_LEUKEMIA_OVERRIDES,
        "logger=none",
        "trainer.max_epochs=20",
        "callbacks.early_stopping=null",
        "callbacks.progress=null",
        "trainer.enable_progress_bar=false",
    ]
    train(compose_config(overrides, out))
    top = explain.explain_run(out)["tasks"]["sex"]["top"][:10]
    assert {RPS4Y1, XIST} & set(top), top


def test_anndata_gene_symbols_are_read_from_var(tmp_path):
    import anndata
    from omegaconf import OmegaConf

    var = pd.DataFrame(
        {"gene_symbol": ["XIST", "RPS4Y1"], "probe": ["p1", "p2"]}, index=["ENSG1", "ENSG2"]
    )
    path = tmp_path / "c.h5ad"
    anndata.AnnData(np.zeros((3, 2), dtype=np.float32), var=var).write_h5ad(path)
    cfg = OmegaConf.create({"data": {"source": "anndata", "path": str(path)}})
    assert explain.feature_symbols(cfg) == {"ENSG1": "XIST", "ENSG2": "RPS4Y1"}
    cfg.data.feature_column = "probe"
    assert explain.feature_symbols(cfg) == {"p1": "XIST", "p2": "RPS4Y1"}
    assert explain.label("p1", {"p1": "XIST"}) == "p1 (XIST)"


def test_regression_head_attributes_its_predicted_years(tmp_path):
    out = tmp_path / "run"
    train(compose_config([*SMALL, "loss=regression"], out))
    age = explain.explain_run(out)["tasks"]["age"]
    assert age["target"] == "predicted years"
    assert age["delta_mean_abs"] < 0.05  # years: IG's sum is the prediction minus f(0)
    assert age["precision_at"]["50"] >= 0.6


def test_linear_model_writes_its_coefficients_and_ig_is_coefficient_times_input(tmp_path):
    """`model=linear`: the coefficients table equals the head's weights, and IG of a class
    logit is exactly coefficient x (x - baseline) (completeness of a linear map)."""
    from multihead.predict import build_trained_module

    out = tmp_path / "linear"
    train(compose_config([*SMALL, "model=linear", "head=split", "loss=ce"], out))
    facts = explain.explain_run(out, method="gxi")
    table = pd.read_csv(out / "coefficients_sex.csv")
    assert facts["tasks"]["sex"]["top_coefficients"][:5] == table["feature"].head(5).tolist()
    run = load_run(out)
    module = build_trained_module(run)
    weight = module.net.head.heads["sex"].weight.detach().numpy()  # (classes, features)
    names = run.preprocessor.feature_names
    by_name = table.set_index("feature").loc[names]
    np.testing.assert_allclose(by_name["logit[female]"], weight[0], atol=1e-5)
    np.testing.assert_allclose(by_name["logit[male]"], weight[1], atol=1e-5)
    coef = explain.linear_coefficients(module, 1, len(names))
    x = np.random.default_rng(0).normal(size=(5, len(names))).astype(np.float32)

    def logits(t):
        return module(t)[:, module.loss_fn.layout.slices[1]]

    attr, delta = explain.attribute(logits, x, np.ones(5, dtype=int), "ig", 20)
    np.testing.assert_allclose(attr, coef[:, 1] * x, rtol=1e-4, atol=1e-5)
    assert np.abs(delta).max() < 1e-4
