"""Predicting on a new file applies the saved preprocessing and matches features by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from multihead.data.datamodule import CohortDataModule
from multihead.errors import DataError
from multihead.predict import main, predict
from multihead.training.run import train
from tests.conftest import compose_config
from tests.data_files import small_frames, write_h5ad, write_table


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small trained run: top-k and constant-feature dropping make the kept set a subset."""
    folder = tmp_path_factory.mktemp("predict")
    matrix, sheet = small_frames(n_samples=200, n_features=30)
    matrix["flat"] = 1.0  # constant: dropped, so a new file need not have it
    overrides = write_table(folder / "in", matrix, sheet)
    cfg = compose_config(
        [
            *overrides,
            "logger=none",
            "trainer.max_epochs=2",
            "callbacks.early_stopping=null",
            "callbacks.progress=null",
            "data.preprocess.top_k=20",
            "data.preprocess.log1p=true",
        ],
        folder / "run",
    )
    train(cfg)
    preds = pd.read_csv(folder / "run" / "predictions.csv", dtype={"sample_id": str})
    return folder / "run", matrix, sheet, preds


def _kept(run_dir) -> list[str]:
    state = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    pre = state[CohortDataModule.__qualname__]["preprocessor"]
    return [pre["feature_names"][i] for i in pre["keep"].tolist()]


def test_checkpoint_carries_the_fitted_preprocessing(run):
    run_dir, matrix, _, _ = run
    kept = _kept(run_dir)  # loads with weights_only=True: plain tensors and lists only
    assert len(kept) == 20 and "flat" not in kept
    logged = np.log1p(matrix.to_numpy(np.float64))
    order = np.argsort(-logged.var(axis=0))  # all samples: only roughly the train ranking
    assert len(set(kept) & {matrix.columns[i] for i in order[:20]}) >= 15


def test_prediction_on_reordered_features_matches_the_run(run, tmp_path):
    """Test samples written features x samples, columns shuffled, one extra feature."""
    run_dir, matrix, _, preds = run
    new = matrix.loc[preds.sample_id].drop(columns=["flat"]).assign(extra=5.0)
    new = new[new.columns[::-1]]
    new.T.rename_axis("feature").to_parquet(tmp_path / "new.parquet")
    got = predict(run_dir, tmp_path / "new.parquet", orientation="features_x_samples")
    assert list(got.sample_id) == list(preds.sample_id)
    probs = [c for c in preds.columns if "_p[" in c]
    np.testing.assert_allclose(got[probs].to_numpy(), preds[probs].to_numpy(), atol=1e-5)
    for task in ("age", "sex"):
        assert (got[f"{task}_pred"] == preds[f"{task}_pred"]).all()


def test_prediction_on_an_h5ad_file(run, tmp_path):
    run_dir, matrix, sheet, preds = run
    subset = matrix.loc[preds.sample_id]
    rows = sheet.set_index("sample_id").loc[preds.sample_id].reset_index()
    path = write_h5ad(tmp_path / "new.h5ad", subset, rows, sparse=True)
    got = predict(run_dir, path)
    probs = [c for c in preds.columns if "_p[" in c]
    np.testing.assert_allclose(got[probs].to_numpy(), preds[probs].to_numpy(), atol=1e-5)


def test_missing_features_are_named_and_nothing_is_written(run, tmp_path):
    run_dir, matrix, _, _ = run
    kept = _kept(run_dir)
    new = matrix.drop(columns=kept[:3]).iloc[:5]
    new.to_csv(tmp_path / "new.csv")
    out = tmp_path / "out.csv"
    with pytest.raises(DataError) as err:
        predict(run_dir, tmp_path / "new.csv", out)
    message = str(err.value)
    assert "new.csv" in message and "3 of the model's 20 features are missing" in message
    for name in kept[:3]:
        assert repr(name) in message
    assert not out.exists()


def test_command_line_writes_the_file_or_reports_the_error(run, tmp_path, capsys):
    run_dir, matrix, _, _ = run
    matrix.iloc[:7].to_csv(tmp_path / "new.csv")
    assert main([str(run_dir), str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 7
    bad = matrix.iloc[:7].copy()
    bad.loc[bad.index[2], _kept(run_dir)[0]] = np.nan
    bad.to_csv(tmp_path / "bad.csv")
    assert main([str(run_dir), str(tmp_path / "bad.csv"), "--out", str(tmp_path / "q.csv")]) == 2
    err = capsys.readouterr().err
    assert "NaN or inf" in err and "'00002'" in err and not (tmp_path / "q.csv").exists()
