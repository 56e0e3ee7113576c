"""`model.top_k`: selecting after loading is the same as `data.preprocess.top_k` while reading,
and a checkpoint trained with it predicts new files with the same features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from multihead.data.datamodule import prepare_cohort
from multihead.data.feature_selection import select_top_variance
from multihead.predict import predict
from multihead.training.run import train
from tests.conftest import compose_config
from tests.data_files import small_frames, write_table


def test_same_as_selecting_while_reading(tmp_path):
    matrix, sheet = small_frames(n_samples=120, n_features=40)
    table = write_table(tmp_path, matrix, sheet)
    full = prepare_cohort(compose_config(table).data)
    read = prepare_cohort(compose_config([*table, "data.preprocess.top_k=12"]).data)
    after = select_top_variance(full, 12)
    assert after.feature_names == read.feature_names
    torch.testing.assert_close(after.features, read.features)
    assert after.preprocessor.feature_names == read.preprocessor.feature_names
    np.testing.assert_allclose(
        after.preprocessor.standardizer.scale, read.preprocessor.standardizer.scale
    )
    assert after.report["features"]["kept"] == 12
    assert select_top_variance(full, None) is full and select_top_variance(full, 99) is full


def test_prediction_applies_the_selection(tmp_path):
    matrix, sheet = small_frames(n_samples=160, n_features=30)
    cfg = compose_config(
        [
            *write_table(tmp_path / "in", matrix, sheet),
            "model=linear",
            "model.top_k=8",
            "logger=none",
            "callbacks.progress=null",
            "budget.min_steps=5",
            "budget.patience_steps=2",
            "trainer.max_epochs=1",
        ],
        tmp_path / "run",
    )
    metrics = train(cfg)
    assert metrics["num_features"] == 8
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype={"sample_id": str})
    matrix.loc[preds.sample_id].to_csv(tmp_path / "new.csv")
    got = predict(tmp_path / "run", tmp_path / "new.csv")
    probs = [c for c in preds.columns if "_p[" in c]
    np.testing.assert_allclose(got[probs].to_numpy(), preds[probs].to_numpy(), atol=1e-4)
