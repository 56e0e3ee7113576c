"""The comparison report of a real sweep, checked against every job's own files and scipy.

Expected values are recomputed here from the jobs' metrics.json, predictions and CSVs with
independent code (scipy.stats, sklearn, a separate Holm implementation), never by calling the
report's own helpers.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import balanced_accuracy_score, log_loss, mean_absolute_error

from multihead.report import load_run, load_runs, main
from multihead.reporting.document import build_report
from multihead.reporting.plots import expected_calibration_error, task_reliability
from multihead.reporting.runs import pooled_confusion, pooled_curves, pooled_per_class
from multihead.run_folder import planned_overrides
from tests.conftest import ROOT
from tests.report_sweep import FOLDS, HEADS, LOSSES, SEEDS
from tests.test_statistics import holm_by_hand

KEY = [
    "age/balanced_accuracy",
    "age/f1_macro",
    "age/auroc_macro",
    "age/ece",
    "age/mae_years",
    "sex/balanced_accuracy",
    "sex/f1_macro",
    "sex/auroc_macro",
    "sex/ece",
    "joint_accuracy",
]
LOWER_IS_BETTER = ("ece", "mae_years")
REFERENCE = "fused+bce"
VARIANTS = [f"{h}+{loss}" for h in HEADS for loss in LOSSES]
PLOTS = [
    "metrics_by_variant",
    "confusion_age",
    "confusion_sex",
    "reliability_age",
    "reliability_sex",
    "incoherent_rate",
    "validation_curves",
]


def metrics_of(job_dir: Path) -> dict:
    return json.loads((job_dir / "metrics.json").read_text())


def expected_jobs(sweep) -> pd.DataFrame:
    """One row per job straight from metrics.json: variant, seed, fold, sizes, key metrics."""
    rows = []
    for job in sweep.job_dirs():
        m = metrics_of(job)
        row = {
            "variant": f"{m['head']}+{m['loss']}",
            "seed": m["seed"],
            "cv_fold": m["cv_fold"],
            "share": m["split_sizes"]["test"]
            / (m["split_sizes"]["train"] + m["split_sizes"]["val"]),
            "joint_accuracy": m["joint_accuracy"],
        }
        for column in KEY[:-1]:
            task, metric = column.split("/")
            row[column] = m["tasks"][task][metric]
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def report(report_sweep):
    """`python -m multihead.report SWEEP` once, into the sweep folder, as a user runs it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(report_sweep.path)])
    assert code == 0
    return out.getvalue()


N_JOBS = len(HEADS) * len(LOSSES) * len(FOLDS) * len(SEEDS)


def test_sweep_prints_which_job_of_how_many(report_sweep):
    n = N_JOBS
    for i in (1, n):
        assert f"job {i} of {n}:" in report_sweep.stdout
    assert f"job {n + 1} of" not in report_sweep.stdout


def test_load_runs_reads_every_job_as_written(report_sweep):
    runs = load_runs(report_sweep.path)
    expected = expected_jobs(report_sweep)
    assert len(runs) == len(expected) == N_JOBS
    assert (runs["status"] == "ok").all() and (runs["weighting"] == "fixed").all()
    assert sorted(runs["variant"].unique()) == sorted(VARIANTS)  # folds are replicates
    assert runs["split"].nunique() == len(FOLDS) and set(runs["cv_fold"]) == set(FOLDS)
    merged = runs.merge(expected, on=["variant", "seed", "cv_fold"], suffixes=("", "_expected"))
    assert len(merged) == len(expected)
    for column in KEY:
        np.testing.assert_allclose(merged[column], merged[f"{column}_expected"], rtol=1e-12)
    one = load_run(report_sweep.job_dirs()[0])
    assert one["status"] == "ok" and one["head"] == "fused" and one["seed"] == 0


def corrected_interval(values: np.ndarray, share: float, level: float = 0.95):
    """Nadeau-Bengio: mean +- t(J-1) sqrt((1/J + n_test/n_train) var), written out."""
    j = len(values)
    half = stats.t.ppf(0.5 + level / 2, j - 1) * math.sqrt((1 / j + share) * values.var(ddof=1))
    return values.mean(), values.mean() - half, values.mean() + half


def test_summary_is_the_mean_over_splits_with_a_corrected_interval(report, report_sweep):
    summary = pd.read_csv(report_sweep.path / "summary.csv").set_index("variant")
    expected = expected_jobs(report_sweep)
    share = expected["share"].mean()
    for variant, jobs in expected.groupby("variant"):
        row = summary.loc[variant]
        assert row["kind"] == "network" and row["n_splits"] == len(FOLDS)
        for column in ("age/mae_years", "sex/balanced_accuracy", "joint_accuracy"):
            values = jobs.sort_values("cv_fold")[column].to_numpy(float)
            mean, low, high = corrected_interval(values, share)
            assert row[f"{column}.mean"] == pytest.approx(mean, rel=1e-9)
            if values.std() > 0:
                lowest, highest = (0.0, math.inf) if "mae" in column else (0.0, 1.0)
                assert row[f"{column}.ci_low"] == pytest.approx(max(low, lowest), rel=1e-6)
                assert row[f"{column}.ci_high"] == pytest.approx(min(high, highest), rel=1e-6)
                # wider than the naive t interval: the splits share training samples
                naive = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(3)
                assert high - mean > naive


def test_primary_comparisons_are_corrected_t_tests_with_holm(report, report_sweep):
    comparisons = pd.read_csv(report_sweep.path / "comparisons.csv")
    expected = expected_jobs(report_sweep)
    share = expected["share"].mean()
    primary = comparisons[comparisons["family"] == "primary"]
    assert set(primary["metric"]) == {"age/mae_years", "sex/balanced_accuracy", "joint_accuracy"}
    tested = primary[primary["status"] == "tested"]
    assert len(tested) > 0
    for row in tested.itertuples():
        if row.reference not in VARIANTS:
            continue  # best network vs best linear model: checked below
        a = expected[expected["variant"] == row.variant].sort_values("cv_fold")[row.metric]
        b = expected[expected["variant"] == row.reference].sort_values("cv_fold")[row.metric]
        d = a.to_numpy() - b.to_numpy()
        se = math.sqrt((1 / len(d) + share) * d.var(ddof=1))
        assert row.diff == pytest.approx(d.mean(), rel=1e-9, abs=1e-12)
        assert row.p == pytest.approx(2 * stats.t.sf(abs(d.mean() / se), len(d) - 1), rel=1e-6)
        half = stats.t.ppf(0.975, len(d) - 1) * se
        assert (row.ci_low, row.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    np.testing.assert_allclose(
        primary["p_holm"].to_numpy(float)[primary["p"].notna().to_numpy()],
        holm_by_hand(primary["p"].dropna().tolist()),
    )
    assert primary["reference"].isin(["logistic regression", "ridge regression"]).any()
    secondary = comparisons[comparisons["family"] == "secondary"]
    assert "age/balanced_accuracy" in set(secondary["metric"])
    np.testing.assert_allclose(
        secondary["p_holm"].to_numpy(float)[secondary["p"].notna().to_numpy()],
        holm_by_hand(secondary["p"].dropna().tolist()),
    )


def test_the_verdict_comes_first_and_names_the_winning_linear_model(report, report_sweep):
    """In this tiny 3-epoch sweep the networks barely learn age: ridge regression on years
    must win, and the verdict must say so first, with numbers; the console says the same."""
    text = (report_sweep.path / "report.md").read_text()
    verdict = text.split("## Verdict", 1)[1].split("Sweep folder", 1)[0]
    assert text.index("## Verdict") < text.index("## Summary")
    assert verdict.count(". ") + verdict.count(".\n") <= 7
    assert "On 3-fold CV x 1 partition (3 splits" in verdict
    assert "ridge regression beats every network" in verdict
    assert "ridge regression beats every network" in report
    summary = pd.read_csv(report_sweep.path / "summary.csv").set_index("variant")
    assert summary.loc["ridge regression", "age/mae_years.best"]
    assert not summary.loc[VARIANTS, "age/mae_years.best"].any()


def test_report_md_has_every_section_and_plot(report, report_sweep):
    text = (report_sweep.path / "report.md").read_text()
    headings = (
        "## Verdict",
        "## Summary",
        "## Comparisons",
        "## Plots",
        "## Failed or missing jobs",
    )
    for heading in headings:
        assert heading in text
    assert f"{N_JOBS} finished, 0 failed, 0 missing" in text
    assert "*logistic regression*" in text and "*majority class*" in text
    assert "*ridge regression*" in text
    assert f"python -m multihead.explain {report_sweep.path}" in text
    for name in PLOTS:
        path = report_sweep.path / "plots" / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert path.stat().st_size > 10_000, name
        assert f"](plots/{name}.png)" in text
    assert "differs from" not in text  # the rebuilt test split is the jobs' test split
    assert "report.md" in report
    jobs = pd.read_csv(report_sweep.path / "jobs.csv")
    assert len(jobs) == N_JOBS
    oof = pd.read_csv(report_sweep.path / "oof_predictions.csv", dtype={"sample_id": str})
    for variant in [*VARIANTS, "logistic regression"]:
        mine = oof[oof["variant"] == variant]
        # out of fold: every sample of the cohort exactly once per partition (and seed)
        assert mine["sample_id"].is_unique and set(mine["fold"]) == set(FOLDS)
    n_samples = oof.loc[oof["variant"] == VARIANTS[0], "sample_id"].nunique()
    pooled = pd.read_csv(report_sweep.path / "pooled_per_class.csv")
    sex = pooled[(pooled["variant"] == "split+ce") & (pooled["task"] == "sex")]
    assert sex["support"].sum() == n_samples  # every labelled sample counted once
    part = oof[oof["variant"] == "split+ce"]
    assert sex.set_index("class").loc["male", "tp"] == int(
        ((part["sex_true"] == "male") & (part["sex_pred"] == "male")).sum()
    )


def test_reference_rows_are_sklearn_fits_on_each_split(report, report_sweep):
    """Refit per split on the full feature matrix (no row-space shortcut) with scikit-learn:
    the report's references must give the same test scores."""
    from multihead.data.datamodule import prepare_cohort

    evaluations = pd.read_csv(report_sweep.path / "evaluations.csv")
    for job in report_sweep.job_dirs()[: len(FOLDS)]:  # fused+bce on each fold
        cohort = prepare_cohort(OmegaConf.load(job / "config.yaml").data)
        saved = pd.read_csv(job / "splits.csv", dtype={"sample_id": str})
        test_ids = [cohort.sample_ids[i] for i in cohort.splits["test"]]
        assert sorted(test_ids) == sorted(saved.loc[saved["split"] == "test", "sample_id"])
        split = load_run(job)["split"]
        rows = evaluations[evaluations["split"] == split].set_index("variant")
        x, labels = cohort.features.numpy().astype(np.float64), cohort.labels.numpy()
        train, val, test = (cohort.splits[s] for s in ("train", "val", "test"))
        for j, task in enumerate(cohort.tasks):
            y = labels[:, j]
            majority = np.bincount(y[train]).argmax()
            constant = balanced_accuracy_score(y[test], np.full(len(test), majority))
            assert rows.loc["majority class", f"{task.name}/balanced_accuracy"] == pytest.approx(
                constant, abs=1e-6
            )
            # strength by validation log loss, fitted on the full features (no shortcut)
            fits = [
                LogisticRegression(C=c, max_iter=3000, tol=1e-8).fit(x[train], y[train])
                for c in np.logspace(-3, 1, 5)
            ]
            k = task.num_classes
            losses = [log_loss(y[val], f.predict_proba(x[val]), labels=range(k)) for f in fits]
            model = fits[int(np.argmin(losses))]
            want = balanced_accuracy_score(y[test], model.predict(x[test]))
            got = rows.loc["logistic regression", f"{task.name}/balanced_accuracy"]
            assert got == pytest.approx(want, abs=0.01), (split, task.name)
        years = cohort.values.numpy()[:, 0].astype(np.float64)
        ridge = RidgeCV(alphas=list(np.logspace(-3, 5, 17))).fit(x[train], years[train])
        mae = mean_absolute_error(years[test], ridge.predict(x[test]))
        assert rows.loc["ridge regression", "age/mae_years"] == pytest.approx(mae, rel=1e-4)


def test_reliability_bins_reproduce_each_jobs_ece(report_sweep):
    for job in report_sweep.job_dirs()[:: len(SEEDS)]:  # one job per variant
        predictions = pd.read_csv(job / "predictions.csv", dtype={"sample_id": str})
        for task in ("age", "sex"):
            bins = task_reliability(predictions, task)
            assert bins["count"].sum() == len(predictions)
            assert expected_calibration_error(bins) == pytest.approx(
                metrics_of(job)["tasks"][task]["ece"], abs=2e-6
            )


def test_pooled_counts_and_curves_add_up_over_jobs(report_sweep):
    runs = load_runs(report_sweep.path)
    jobs = [j for j in report_sweep.job_dirs() if "head=split" in j.name and "loss=ce" in j.name]
    assert len(jobs) == len(SEEDS) * len(FOLDS)
    for task in ("age", "sex"):
        per_class = pooled_per_class(runs, "split+ce", task)
        tables = [pd.read_csv(j / f"per_class_{task}.csv") for j in jobs]
        for column in ("tp", "fp", "tn", "fn", "support"):
            assert per_class[column].tolist() == list(sum(t[column] for t in tables))
        confusion = pooled_confusion(runs, "split+ce", task)
        assert np.trace(confusion.to_numpy()) == per_class["tp"].sum()
        assert confusion.to_numpy().sum() == sum(metrics_of(j)["n_test"] for j in jobs)
    curves = pooled_curves(runs)
    assert len(curves) == len(runs) * 3  # 3 epochs per job
    logged = pd.read_csv(jobs[0] / "csv" / "metrics.csv").dropna(subset=["val/loss"])
    mine = curves[(curves["variant"] == "split+ce") & (curves["seed"] == 0)]
    np.testing.assert_allclose(mine["val/loss"].iloc[:3], logged["val/loss"])


def test_failed_and_missing_jobs_are_listed_and_the_report_still_builds(report_sweep, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(
        report_sweep.path,
        sweep,
        ignore=shutil.ignore_patterns("checkpoints", "plots", "*.png", "report.md", "*summary.csv"),
    )
    jobs = sorted(
        (p for p in sweep.iterdir() if p.is_dir()), key=lambda p: int(p.name.split("_", 1)[0])
    )
    (jobs[1] / "metrics.json").unlink()  # fused+bce fold 1 failed
    (jobs[1] / "failed.json").write_text(
        json.dumps({"error": "RuntimeError: CUDA out of memory\nsecond line", "traceback": "..."})
    )
    shutil.rmtree(jobs[4])  # fused+ce fold 1 never got a folder
    report = build_report(sweep, baselines=False)
    runs = report.runs
    assert len(runs) == 12
    assert runs.set_index("num").loc[1, "status"] == "failed"
    assert runs.set_index("num").loc[4, "status"] == "missing"
    assert runs.set_index("num").loc[4, "variant"] == "fused+ce"  # from the sweep's plan
    text = report.markdown_path.read_text()
    assert "RuntimeError: CUDA out of memory" in text and "second line" not in text
    assert "no job folder" in text and "10 finished, 1 failed, 1 missing" in text
    summary = report.summary.set_index("variant")
    assert summary.loc["fused+bce", "n_splits"] == 2 and summary.loc["fused+ce", "n_splits"] == 2
    row = report.comparisons.set_index(["variant", "metric"]).loc[("split+ce", "joint_accuracy")]
    assert row["n_splits"] == 2  # paired only on splits both variants have
    assert (sweep / "summary.csv").exists()
    assert (sweep / "plots" / "metrics_by_variant.png").exists()


def test_planned_jobs_follow_hydras_expansion():
    hydra = OmegaConf.create(
        {
            "sweeper": {
                "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                "params": {"head": "fused,split", "seed": "0,1,2"},
            },
            "overrides": {"task": ["loss=bce,ce", "seed=5,6", "debug=fast"]},
        }
    )
    plan = planned_overrides(hydra)
    assert len(plan) == 2 * 2 * 2  # the command line's seed=5,6 replaces the params' seeds
    assert plan[0] == ["head=fused", "seed=5", "loss=bce", "debug=fast"]
    assert {o for job in plan for o in job if o.startswith("seed")} == {"seed=5", "seed=6"}


def test_cli_refuses_a_missing_folder_and_make_report_calls_it(tmp_path):
    assert main([str(tmp_path / "nope")]) == 2
    dry = subprocess.run(
        ["make", "-n", "report", f"DIR={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    assert f"-m multihead.report {tmp_path}" in dry.stdout


def test_metrics_a_design_does_not_define_are_left_empty(tmp_path):
    """A regression loss writes null AUROC/ECE: those cells stay empty, nothing is tested."""
    pairs = [(loss, seed) for loss in ("bce", "regression") for seed in (0, 1)]
    for num, (loss, seed) in enumerate(pairs):
        job = tmp_path / f"{num}_loss={loss},seed={seed}"
        job.mkdir()
        auroc = None if loss == "regression" else 0.7 + seed / 100
        (job / "metrics.json").write_text(
            json.dumps(
                {
                    "head": "fused",
                    "loss": loss,
                    "weighting": "fixed",
                    "seed": seed,
                    "tasks": {"age": {"balanced_accuracy": 0.3 + seed / 10, "auroc_macro": auroc}},
                    "joint_accuracy": 0.2,
                }
            )
        )
    runs = load_runs(tmp_path)
    assert runs["age/auroc_macro"].isna().sum() == 2
    report = build_report(tmp_path, baselines=False)
    summary = report.summary.set_index("variant")
    assert math.isnan(summary.loc["fused+regression", "age/auroc_macro.mean"])
    assert summary.loc["fused+regression", "age/auroc_macro.n"] == 0
    assert bool(summary.loc["fused+bce", "age/auroc_macro.best"])
    row = report.comparisons.set_index("metric").loc["age/auroc_macro"]
    assert row["n_splits"] == 0 and row["verdict"] == "untested"
    assert "–" in report.markdown_path.read_text()
