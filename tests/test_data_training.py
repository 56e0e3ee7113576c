"""Own data trains end to end: from the command line, with masked labels, sparse, real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multihead.training.run import train
from tests.conftest import ALL_LEUKEMIA, ALL_LEUKEMIA_OVERRIDES, compose_config
from tests.data_files import small_frames, write_h5ad, write_table

QUICK = [
    "logger=none",
    "trainer.max_epochs=3",
    "callbacks.early_stopping=null",
    "callbacks.progress=null",
    "trainer.enable_progress_bar=false",
]


def test_table_trains_from_the_short_command_line(tmp_path):
    """`python train.py data=table data.matrix=PATH data.samples=PATH` (+ orientation here):
    the same composition and `train` call as train.py, without a second interpreter."""
    matrix, sheet = small_frames(n_samples=200, n_features=30)
    overrides = write_table(tmp_path / "in", matrix, sheet, "m.tsv.gz", "features_x_samples")
    out = tmp_path / "run"
    metrics = train(compose_config([*overrides, *QUICK], out))
    assert metrics["tasks"]["sex"]["n"] == metrics["split_sizes"]["test"]
    report = json.loads((out / "data_report.json").read_text())
    assert report["samples"]["matched"] == 200 and report["features"]["input"] == 30
    assert (out / "checkpoints" / "best.ckpt").exists()


def test_masked_labels_train_and_are_measured_on_labelled_samples_only(tmp_path):
    matrix, sheet = small_frames(n_samples=240, n_features=30)
    missing = np.arange(0, 240, 8)  # every 8th sample has no sex
    sheet.loc[missing, "sex"] = None
    overrides = write_table(tmp_path / "in", matrix, sheet)
    cfg = compose_config([*overrides, *QUICK, "data.labels.missing=mask"], tmp_path / "run")
    metrics = train(cfg)
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype={"sample_id": str})
    unlabelled = set(sheet.sample_id[missing])
    in_test = preds.sample_id.isin(unlabelled)
    assert in_test.any()
    assert preds.loc[in_test, "sex_true"].isna().all()
    assert metrics["tasks"]["sex"]["n"] == int((~in_test).sum())  # masked: not counted
    assert metrics["tasks"]["age"]["n"] == len(preds)  # still measured on age
    accuracy = (preds.sex_true == preds.sex_pred)[~in_test].mean()
    assert metrics["tasks"]["sex"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_sparse_anndata_trains_in_process(tmp_path):
    matrix, sheet = small_frames(n_samples=200, n_features=30)
    path = write_h5ad(tmp_path / "c.h5ad", matrix, sheet, sparse=True)
    cfg = compose_config(["data=anndata", f"data.path={path}", *QUICK], tmp_path / "run")
    metrics = train(cfg)
    assert metrics["num_features"] == 30 and metrics["n_test"] == metrics["split_sizes"]["test"]


@pytest.mark.skipif(not ALL_LEUKEMIA.is_dir(), reason="shared ALL leukemia cohort not present")
def test_all_leukemia_cohort_trains_with_masked_labels(tmp_path):
    """The real cohort: 128 samples, 5 without age, 3 without sex (3 of them without both)."""
    cfg = compose_config(
        [
            *ALL_LEUKEMIA_OVERRIDES,
            *QUICK,
        ],
        tmp_path / "run",
    )
    metrics = train(cfg)
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert report["labels"]["age"]["missing"] == 5 and report["labels"]["sex"]["missing"] == 3
    assert report["labels"]["samples"]["kept"] == 125  # 3 samples have neither label
    assert report["features"] == {**report["features"], "input": 12625, "kept": 500}
    splits = pd.read_csv(tmp_path / "run" / "splits.csv", dtype=str)
    sheet = pd.read_csv(ALL_LEUKEMIA / "samples.csv", dtype=str).set_index("sample_id")
    test_ids = splits.loc[splits.split == "test", "sample_id"]
    assert metrics["tasks"]["sex"]["n"] == int(sheet.loc[test_ids, "sex"].notna().sum())
    assert metrics["tasks"]["age"]["n"] == int(sheet.loc[test_ids, "age"].notna().sum())
    assert Path(tmp_path / "run" / "checkpoints" / "best.ckpt").exists()
