"""Small cohorts written to disk in each supported format, for the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from multihead.data.synthetic import make_cohort


def small_frames(
    n_samples: int = 240, n_features: int = 40, seed: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(matrix samples x features with a `sample_id` index, sample sheet with age and sex)."""
    cohort = make_cohort(
        n_samples=n_samples,
        n_features=n_features,
        seed=seed,
        n_age_features=min(20, n_features - 12),
        n_modules=2,
    )
    ids = pd.Index([f"0{i:04d}" for i in range(n_samples)], name="sample_id")  # leading zeros
    matrix = pd.DataFrame(cohort.features, index=ids, columns=cohort.feature_names)
    sheet = cohort.samples.set_axis(ids, axis=0).reset_index()
    return matrix, sheet


def write_table(
    folder: Path,
    matrix: pd.DataFrame,
    sheet: pd.DataFrame,
    name: str = "matrix.csv",
    orientation: str = "samples_x_features",
) -> list[str]:
    """Write the matrix in the format its name says; returns the data=table overrides."""
    folder.mkdir(parents=True, exist_ok=True)
    path, samples = folder / name, folder / "samples.csv"
    frame = matrix if orientation == "samples_x_features" else matrix.T.rename_axis("feature")
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, sep="\t" if ".tsv" in name else ",")
    sheet.to_csv(samples, index=False)
    return [
        "data=table",
        f"data.matrix={path}",
        f"data.samples={samples}",
        f"data.orientation={orientation}",
    ]


def write_h5ad(
    path: Path,
    matrix: pd.DataFrame | np.ndarray,
    sheet: pd.DataFrame,
    sparse: bool = False,
    layer: str | None = None,
) -> Path:
    import anndata
    import scipy.sparse as sp

    values = np.asarray(matrix, dtype=np.float32)
    x = sp.csr_matrix(values) if sparse else values
    obs = sheet.set_index("sample_id")
    var = pd.DataFrame(index=pd.Index([str(c) for c in matrix.columns], name="feature"))
    adata = anndata.AnnData(
        X=None if layer else x, obs=obs, var=var, layers={layer: x} if layer else None
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(path)
    return path


def option_overrides(option: str, folder: Path) -> list[str]:
    """What `data=<option>` needs on top of the defaults to load a small cohort."""
    if option == "synthetic":
        return []
    matrix, sheet = small_frames(n_samples=300)
    if option == "table":
        return write_table(folder / "table", matrix, sheet)[1:]
    if option == "anndata":
        return [f"data.path={write_h5ad(folder / 'cohort.h5ad', matrix, sheet)}"]
    raise ValueError(f"no small files for data={option}")


_BASES: dict[str, object] = {}


def data_config(overrides: list[str]):
    """`cfg.data` as `compose_config(overrides).data` gives it, composed once per data option.

    Hydra takes ~0.5 s per composition; the data tests only vary `data.*` keys, so they are
    set on a copy of a cached composition (values parsed as YAML, like Hydra does).
    """
    import yaml
    from omegaconf import OmegaConf

    from tests.conftest import compose_config

    option = next((o.split("=", 1)[1] for o in overrides if o.startswith("data=")), "synthetic")
    if option not in _BASES:
        _BASES[option] = compose_config(
            [f"data={option}", "data.matrix=unset", "data.samples=unset"]
            if option == "table"
            else [f"data={option}", "data.path=unset"]
            if option == "anndata"
            else []
        ).data
    cfg = OmegaConf.create(OmegaConf.to_container(_BASES[option]))
    for item in overrides:
        key, _, value = item.partition("=")
        if key == "data" or key in ("logger",):
            continue
        if key.startswith("~"):
            OmegaConf.update(cfg, key[len("~data.") :], None, merge=False)
            continue
        if not key.startswith("data."):
            raise ValueError(f"data_config handles data.* overrides only, got {item!r}")
        OmegaConf.update(cfg, key[len("data.") :], yaml.safe_load(value), merge=False)
    return cfg
