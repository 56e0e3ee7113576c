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
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from multihead.report import load_run, load_runs, main
from multihead.reporting.document import build_report
from multihead.reporting.plots import expected_calibration_error, task_reliability
from multihead.reporting.runs import pooled_confusion, pooled_curves, pooled_per_class
from multihead.reporting.statistics import compare, holm, paired_test, t_interval
from multihead.run_folder import planned_overrides
from tests.conftest import ROOT
from tests.report_sweep import HEADS, LOSSES, SEEDS

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
    """One row per job straight from metrics.json: variant, seed, key metrics."""
    rows = []
    for job in sweep.job_dirs():
        m = metrics_of(job)
        row = {
            "variant": f"{m['head']}+{m['loss']}",
            "seed": m["seed"],
            "joint_accuracy": m["joint_accuracy"],
        }
        for column in KEY[:-1]:
            task, metric = column.split("/")
            row[column] = m["tasks"][task][metric]
        rows.append(row)
    return pd.DataFrame(rows)


def is_tie(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(np.abs(a - b) <= 1e-5 * np.maximum(1, np.maximum(abs(a), abs(b)))))


def holm_reference(p: list[float]) -> list[float]:
    """Holm step-down written out: sort, multiply by (m - rank), running maximum, cap at 1."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted


@pytest.fixture(scope="module")
def report(report_sweep):
    """`python -m multihead.report SWEEP` once, into the sweep folder, as a user runs it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(report_sweep.path)])
    assert code == 0
    return out.getvalue()


def test_sweep_prints_which_job_of_how_many(report_sweep):
    n = len(HEADS) * len(LOSSES) * len(SEEDS)
    for i in (1, n):
        assert f"job {i} of {n}:" in report_sweep.stdout
    assert f"job {n + 1} of" not in report_sweep.stdout


def test_load_runs_reads_every_job_as_written(report_sweep):
    runs = load_runs(report_sweep.path)
    expected = expected_jobs(report_sweep)
    assert len(runs) == len(expected) == len(HEADS) * len(LOSSES) * len(SEEDS)
    assert (runs["status"] == "ok").all() and (runs["weighting"] == "fixed").all()
    assert sorted(runs["variant"].unique()) == sorted(VARIANTS)
    merged = runs.merge(expected, on=["variant", "seed"], suffixes=("", "_expected"))
    assert len(merged) == len(expected)
    for column in KEY:
        np.testing.assert_allclose(merged[column], merged[f"{column}_expected"], rtol=1e-12)
    one = load_run(report_sweep.job_dirs()[0])
    assert one["status"] == "ok" and one["head"] == "fused" and one["seed"] == 0


def test_summary_is_mean_and_t_interval_of_the_jobs(report, report_sweep):
    summary = pd.read_csv(report_sweep.path / "summary.csv")
    variants = summary[summary["kind"] == "variant"].set_index("variant")
    assert sorted(variants.index) == sorted(VARIANTS)
    expected = expected_jobs(report_sweep)
    for column in KEY:
        means = expected.groupby("variant")[column].mean()
        higher = not column.endswith(LOWER_IS_BETTER)
        best = means.max() if higher else means.min()
        for variant, values in expected.groupby("variant")[column]:
            row = variants.loc[variant]
            mean = values.mean()
            low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
            upper = math.inf if column.endswith("mae_years") else 1.0
            assert row[f"{column}.mean"] == pytest.approx(mean, rel=1e-9), (variant, column)
            assert row[f"{column}.ci_low"] == pytest.approx(min(max(low, 0.0), upper), abs=1e-9)
            assert row[f"{column}.ci_high"] == pytest.approx(min(max(high, 0.0), upper), abs=1e-9)
            assert row[f"{column}.n"] == len(SEEDS)
            assert bool(row[f"{column}.best"]) == bool(
                abs(mean - best) <= 1e-5 * max(1.0, abs(best))
            ), (variant, column)


def test_comparisons_are_scipy_paired_tests_with_holm(report, report_sweep):
    comparisons = pd.read_csv(report_sweep.path / "comparisons.csv")
    expected = expected_jobs(report_sweep)
    assert len(comparisons) == (len(VARIANTS) - 1) * len(KEY)
    assert (comparisons["reference"] == REFERENCE).all()
    raw: dict[tuple[str, str], float] = {}
    for row in comparisons.itertuples():
        pivot = expected.pivot(index="seed", columns="variant", values=row.metric)
        a, b = pivot[row.variant].to_numpy(), pivot[REFERENCE].to_numpy()
        assert row.n == len(SEEDS)
        if is_tie(a, b):
            assert row.identical and row.verdict == "same" and math.isnan(row.p), row
            continue
        assert not row.identical
        test = stats.ttest_rel(a, b)
        d = a - b
        low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
        assert row.p == pytest.approx(test.pvalue, rel=1e-9)
        assert row.diff == pytest.approx(d.mean(), abs=1e-12)
        assert (row.ci_low, row.ci_high) == (pytest.approx(low), pytest.approx(high))
        assert row.effect_size == pytest.approx(d.mean() / d.std(ddof=1))
        raw[(row.variant, row.metric)] = test.pvalue
    keys = list(raw)
    adjusted = dict(zip(keys, holm_reference([raw[k] for k in keys]), strict=True))
    for row in comparisons.itertuples():
        if (row.variant, row.metric) not in adjusted:
            continue
        assert row.p_holm == pytest.approx(adjusted[(row.variant, row.metric)], rel=1e-9)
        gain = row.diff if not row.metric.endswith(LOWER_IS_BETTER) else -row.diff
        want = "unclear" if row.p_holm >= 0.05 else ("better" if gain > 0 else "worse")
        assert row.verdict == want
        assert row.variant in row.sentence and REFERENCE in row.sentence


def test_report_md_has_every_section_and_plot(report, report_sweep):
    text = (report_sweep.path / "report.md").read_text()
    for heading in ("## Summary", "## Paired comparisons", "## Plots", "## Failed or missing jobs"):
        assert heading in text
    assert "12 finished, 0 failed, 0 missing" in text
    assert "*logistic regression*" in text and "*majority class*" in text
    for name in PLOTS:
        path = report_sweep.path / "plots" / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert path.stat().st_size > 10_000, name
        assert f"](plots/{name}.png)" in text
    assert "differs from" not in text  # the rebuilt test split is the jobs' test split
    assert "report.md" in report
    jobs = pd.read_csv(report_sweep.path / "jobs.csv")
    assert len(jobs) == len(HEADS) * len(LOSSES) * len(SEEDS)


def test_reference_rows_are_sklearn_fits_on_the_same_split(report, report_sweep):
    from multihead.data.datamodule import prepare_cohort

    summary = pd.read_csv(report_sweep.path / "summary.csv").set_index("variant")
    job = report_sweep.job_dirs()[0]
    cohort = prepare_cohort(OmegaConf.load(job / "config.yaml").data)
    saved = pd.read_csv(job / "splits.csv", dtype={"sample_id": str})
    test_ids = [cohort.sample_ids[i] for i in cohort.splits["test"]]
    assert sorted(test_ids) == sorted(saved.loc[saved["split"] == "test", "sample_id"])
    x, labels = cohort.features.numpy(), cohort.labels.numpy()
    train, val, test = (cohort.splits[s] for s in ("train", "val", "test"))
    for j, task in enumerate(cohort.tasks):
        y = labels[:, j]
        majority = np.bincount(y[train]).argmax()
        constant = balanced_accuracy_score(y[test], np.full(len(test), majority))
        assert summary.loc[
            "majority class", f"{task.name}/balanced_accuracy.mean"
        ] == pytest.approx(constant, abs=1e-6)
        fits = [
            LogisticRegression(C=c, max_iter=2000).fit(x[train], y[train]) for c in (0.01, 0.1, 1.0)
        ]
        scores = [balanced_accuracy_score(y[val], f.predict(x[val])) for f in fits]
        best = fits[int(np.argmax(scores))]
        row = summary.loc["logistic regression"]
        assert row[f"{task.name}/balanced_accuracy.mean"] == pytest.approx(
            balanced_accuracy_score(y[test], best.predict(x[test])), abs=1e-6
        )
        probs = best.predict_proba(x[test])
        auroc = roc_auc_score(
            y[test], probs[:, 1] if probs.shape[1] == 2 else probs, multi_class="ovr"
        )
        assert row[f"{task.name}/auroc_macro.mean"] == pytest.approx(auroc, abs=1e-4)


def test_reliability_bins_reproduce_each_jobs_ece(report_sweep):
    for job in report_sweep.job_dirs()[:: len(SEEDS)]:  # one job per variant
        predictions = pd.read_csv(job / "predictions.csv", dtype={"sample_id": str})
        for task in ("age", "sex"):
            bins = task_reliability(predictions, task)
            assert bins["count"].sum() == len(predictions)
            assert expected_calibration_error(bins) == pytest.approx(
                metrics_of(job)["tasks"][task]["ece"], abs=2e-6
            )


def test_pooled_counts_and_curves_add_up_over_seeds(report_sweep):
    runs = load_runs(report_sweep.path)
    jobs = [j for j in report_sweep.job_dirs() if "head=split" in j.name and "loss=ce" in j.name]
    assert len(jobs) == len(SEEDS)
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
    np.testing.assert_allclose(mine["val/loss"], logged["val/loss"])


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
    (jobs[1] / "metrics.json").unlink()  # fused+bce seed 1 failed
    (jobs[1] / "failed.json").write_text(
        json.dumps({"error": "RuntimeError: CUDA out of memory\nsecond line", "traceback": "..."})
    )
    shutil.rmtree(jobs[4])  # fused+ce seed 1 never got a folder
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
    assert summary.loc["fused+bce", "n_seeds"] == 2 and summary.loc["fused+ce", "n_seeds"] == 2
    row = report.comparisons.set_index(["variant", "metric"]).loc[("split+ce", "joint_accuracy")]
    assert row["n"] == 2  # paired only on seeds both variants have
    assert (sweep / "summary.csv").exists()
    assert (sweep / "plots" / "metrics_by_variant.png").exists()


def test_clear_differences_read_as_plain_sentences():
    """Synthetic seeds where the verdict is known: higher- and lower-is-better metrics."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(6):
        base = {"status": "ok", "seed": seed, "weighting": "fixed", "loss": "x"}
        noise = rng.normal(0, 0.005)
        rows.append(
            {
                **base,
                "variant": "fused+bce",
                "head": "fused",
                "age/balanced_accuracy": 0.50 + noise,
                "age/ece": 0.20 + noise,
            }
        )
        rows.append(
            {
                **base,
                "variant": "split+ce",
                "head": "split",
                "age/balanced_accuracy": 0.54 + noise + rng.normal(0, 0.002),
                "age/ece": 0.10 + noise + rng.normal(0, 0.002),
            }
        )
    result = compare(pd.DataFrame(rows), "fused+bce").set_index("metric")
    for metric in ("age/balanced_accuracy", "age/ece"):
        assert result.loc[metric, "verdict"] == "better"
    sentence = result.loc["age/balanced_accuracy", "sentence"]
    assert sentence.startswith("split+ce beats fused+bce on age balanced accuracy by 0.04")
    assert "Holm" in sentence and "6 seeds" in sentence
    assert result.loc["age/ece", "sentence"].startswith("split+ce beats fused+bce on age ECE by")


def test_statistics_match_scipy_on_random_data():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.5, 0.1, 5), rng.normal(0.45, 0.1, 5)
    test = paired_test(a, b)
    assert test.p == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert test.t == pytest.approx(stats.ttest_rel(a, b).statistic)
    mean, low, high, n = t_interval(a)
    assert (low, high) == pytest.approx(stats.t.interval(0.95, 4, loc=a.mean(), scale=stats.sem(a)))
    p = list(rng.uniform(0, 0.2, 9))
    np.testing.assert_allclose(holm(p), holm_reference(p))
    assert math.isnan(holm([0.01, math.nan])[1]) and holm([0.01, math.nan])[0] == 0.01
    assert paired_test([0.3, 0.4], [0.3, 0.4 + 1e-9]).identical


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
    assert row["n"] == 0 and row["verdict"] == "untested"
    assert "–" in report.markdown_path.read_text()
