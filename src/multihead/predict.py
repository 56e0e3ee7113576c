"""Predict age class and sex for new samples with a trained run.

    python -m multihead.predict RUN_DIR NEW_FILE [--out predictions.csv]

RUN_DIR is a training run's folder (config.yaml + checkpoints/best.ckpt). NEW_FILE is a
matrix in any format `data=table` or `data=anndata` reads. Its features are matched to the
model's by name (order does not matter, extra features are ignored); a file without every
feature the model uses is refused, naming the missing ones. The checkpoint carries the
preprocessing fitted on the training split, so new samples get exactly the same transform.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from omegaconf import DictConfig, OmegaConf

from multihead.data.datamodule import CohortDataModule, PreparedCohort
from multihead.data.feature_match import match_features
from multihead.data.preprocess import Preprocessor
from multihead.errors import USAGE_EXIT_CODE, DataError, MultiheadError, print_error
from multihead.run_folder import BEST_CHECKPOINT, CONFIG_FILE
from multihead.tasks import Task


@dataclass
class TrainedRun:
    """What a run folder holds that prediction needs."""

    cfg: DictConfig
    tasks: tuple[Task, ...]
    preprocessor: Preprocessor
    state: dict  # the checkpoint


def load_run(run_dir: str | Path, checkpoint: str | Path | None = None) -> TrainedRun:
    """Config and checkpoint of a run; the checkpoint loads with `weights_only=True`."""
    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_FILE
    ckpt_path = Path(checkpoint) if checkpoint else run_dir / BEST_CHECKPOINT
    for path in (config_path, ckpt_path):
        if not path.is_file():
            raise DataError(f"{path} not found: RUN_DIR must be a training run's folder")
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    data_state = state.get(CohortDataModule.__qualname__)
    if not data_state or not data_state.get("preprocessor"):
        raise DataError(
            f"{ckpt_path} holds no fitted preprocessing (trained before it was "
            "saved with the model?); retrain to predict on new files"
        )
    tasks = tuple(Task.from_dict(t) for t in data_state["tasks"])
    return TrainedRun(
        OmegaConf.load(config_path),
        tasks,
        Preprocessor.from_state_dict(data_state["preprocessor"]),
        state,
    )


@dataclass
class NewSamples:
    ids: list[str]
    features: np.ndarray  # the model's input columns, raw values, in the model's order


def read_new_samples(
    path: str | Path, run: TrainedRun, orientation: str | None = None, layer: str | None = None
) -> NewSamples:
    """Read any supported matrix file and pick the model's features by name."""
    from multihead.data.anndata_reader import read_anndata
    from multihead.data.table_reader import read_matrix

    data = run.cfg.get("data", {})
    source = f"{path} (NEW_FILE)"
    needed = run.preprocessor.feature_names
    if str(path).lower().endswith(".h5ad"):
        adata = read_anndata(
            path, layer if layer is not None else data.get("layer"), key="NEW_FILE"
        )
        columns = match_features(needed, adata.feature_names, source)
        chosen = adata.features[:, columns]
        values = chosen.toarray() if sp.issparse(chosen) else np.asarray(chosen)
        return NewSamples(list(adata.obs.index), values.astype(np.float32, copy=False))
    table = read_matrix(
        path,
        "NEW_FILE",
        orientation or data.get("orientation", "samples_x_features"),
        data.get("matrix_index") if data.get("source") == "table" else None,
    )
    columns = match_features(needed, table.feature_names, source)
    return NewSamples(table.sample_ids, table.values[:, columns])


def _skeleton(run: TrainedRun) -> PreparedCohort:
    """The training cohort's shape and targets, no features: builds the same module."""
    data_state = run.state[CohortDataModule.__qualname__]
    labels, values = data_state["train_labels"], data_state["train_values"]
    n, p = len(labels), len(run.preprocessor.keep)
    empty = np.zeros(0, dtype=np.int64)
    return PreparedCohort(
        torch.zeros(1, p).expand(n, p),
        labels,
        values,
        [str(i) for i in range(n)],
        run.preprocessor.feature_names,
        run.tasks,
        {"train": np.arange(n), "val": empty, "test": empty},
        run.preprocessor.standardizer,
        preprocessor=run.preprocessor,
    )


def build_trained_module(run: TrainedRun):
    """The run's network with its trained weights, in eval mode."""
    from multihead.training.builders import build_module

    module = build_module(run.cfg, _skeleton(run), output_dir=None)
    module.load_state_dict(run.state["state_dict"])
    return module.eval()


def predict_frame(
    module, tasks: tuple[Task, ...], samples: NewSamples, batch_size: int = 1024
) -> pd.DataFrame:
    """sample_id, predicted class per task and, where the loss gives them, probabilities."""
    preds, probs = [], []
    with torch.no_grad():
        for start in range(0, len(samples.ids), batch_size):
            x = torch.from_numpy(samples.features[start : start + batch_size])
            logits = module(x)
            preds.append(module.loss_fn.predict(logits))
            probs.append(module.loss_fn.probabilities(logits))
    frame = pd.DataFrame({"sample_id": samples.ids})
    decoded = torch.cat(preds).numpy()
    for j, task in enumerate(tasks):
        frame[f"{task.name}_pred"] = np.asarray(task.classes, dtype=object)[decoded[:, j]]
        if probs[0][j] is None:
            continue
        p = torch.cat([batch[j] for batch in probs]).numpy()
        for k, name in enumerate(task.classes):
            frame[f"{task.name}_p[{name}]"] = p[:, k]
    return frame


def predict(
    run_dir: str | Path,
    new_file: str | Path,
    out: str | Path | None = None,
    orientation: str | None = None,
    layer: str | None = None,
) -> pd.DataFrame:
    """Everything is read and checked before the output file is written."""
    run = load_run(run_dir)
    samples = read_new_samples(new_file, run, orientation, layer)
    run.preprocessor.check_new(samples.features, samples.ids, f"{new_file} (NEW_FILE)")
    samples.features = run.preprocessor.apply_(np.array(samples.features, np.float32))
    frame = predict_frame(build_trained_module(run), run.tasks, samples)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m multihead.predict", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run_dir", type=Path, help="a training run's folder")
    parser.add_argument(
        "new_file", type=Path, help="matrix of new samples (.csv/.tsv/.gz, .parquet or .h5ad)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="CSV to write (default: RUN_DIR/predictions_<file name>.csv)",
    )
    parser.add_argument(
        "--orientation",
        choices=["samples_x_features", "features_x_samples"],
        default=None,
        help="layout of a table file (default: the run's)",
    )
    parser.add_argument("--layer", default=None, help=".h5ad layer instead of .X")
    args = parser.parse_args(argv)
    out = args.out or args.run_dir / f"predictions_{args.new_file.name.split('.')[0]}.csv"
    try:
        frame = predict(args.run_dir, args.new_file, out, args.orientation, args.layer)
    except MultiheadError as err:
        print_error(str(err))
        return USAGE_EXIT_CODE
    print(f"{len(frame)} samples predicted -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
