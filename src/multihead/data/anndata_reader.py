"""Read an .h5ad file: features from `.X` or a layer (dense or sparse), labels from `.obs`.

The file is opened with h5py and its elements read with anndata's element readers, so only
what is used is loaded: a dense matrix is copied into float32 in row chunks, a sparse one
stays sparse, and in backed mode rows are read from disk per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from multihead.data.examples import duplicated, examples
from multihead.data.file_formats import open_checked
from multihead.data.inplace import chunk_rows
from multihead.data.matrix import FLOAT32_MAX, BackedMatrix, beyond_float32
from multihead.data.progress import advance, loading
from multihead.errors import DataError


@dataclass
class AnnDataFile:
    """Features (samples x features) with names, and `.obs` indexed by sample id (text)."""

    features: np.ndarray | sp.csr_matrix | BackedMatrix
    feature_names: list[str]
    obs: pd.DataFrame
    path: Path


def _frame(handle, name: str, path: Path):
    from anndata.io import read_elem

    if name not in handle:
        raise DataError(f"{path} (data.path): no {name!r} group; is it an .h5ad file?")
    try:
        return read_elem(handle[name])
    except Exception as err:  # anndata raises its own IORegistryError and others
        raise DataError(f"{path} (data.path): cannot read .{name}: {err}") from None


def _names(frame: pd.DataFrame, column: str | None, what: str, key: str, path: Path) -> list[str]:
    """Index (or a column) as unique, non-empty text."""
    if column is None:
        values = frame.index
    elif column in frame.columns:
        values = frame[column]
    else:
        raise DataError(
            f"{path}: column {column!r} ({key}) not found; available: {list(frame.columns)}"
        )
    names = ["" if pd.isna(v) else str(v).strip() for v in values]
    empty = [i for i, n in enumerate(names) if n == ""]
    if empty:
        raise DataError(f"{path}: empty {what} at positions {examples(empty)}")
    dups = duplicated(names)
    if dups:
        raise DataError(
            f"{path}: {len(dups)} duplicated {what} ({key}): {examples(dups)}; "
            "make them unique (e.g. AnnData.obs_names_make_unique())"
        )
    return names


def _element_key(handle, layer: str | None, path: Path) -> str:
    if layer is None:
        if "X" not in handle:
            raise DataError(f"{path}: no .X matrix; name a layer with data.layer")
        return "X"
    layers = list(handle["layers"].keys()) if "layers" in handle else []
    if layer not in layers:
        raise DataError(f"{path}: layer {layer!r} (data.layer) not found; layers: {layers}")
    return f"layers/{layer}"


def _check_numeric(element, key: str, path: Path) -> tuple[int, int]:
    """Shape of a dense dataset or sparse group, refusing text or empty matrices."""
    import h5py

    if isinstance(element, h5py.Group):
        dtype = element["data"].dtype
        shape = tuple(int(s) for s in element.attrs["shape"])
    else:
        dtype, shape = element.dtype, element.shape
    if dtype.kind not in "biuf":
        raise DataError(
            f"{path}: .{key} holds non-numeric values (dtype {dtype}); features must be numbers"
        )
    if len(shape) != 2 or 0 in shape:
        raise DataError(f"{path}: empty matrix: .{key} has shape {shape}")
    return shape


def _dense_float32(element, shape: tuple[int, int], path: Path) -> np.ndarray:
    """A dense dataset copied into float32 a chunk of rows at a time."""
    out = np.empty(shape, dtype=np.float32)
    step = chunk_rows(shape[1], itemsize=element.dtype.itemsize)
    with loading(f"reading {path.name}", shape[0], path.stat().st_size) as bar:
        for start in range(0, shape[0], step):
            block = element[start : start + step]
            if beyond_float32(block).any():
                r, c = np.argwhere(beyond_float32(block))[0]
                raise DataError(
                    f"{path}: values beyond the float32 range (+-{FLOAT32_MAX:.3g}) the model "
                    f"computes in, e.g. row {start + int(r)}, column {int(c)} = "
                    f"{float(block[r, c]):g}; rescale them (e.g. log-transform) before training"
                )
            out[start : start + step] = block
            advance(bar, min(step, shape[0] - start))
    return out


def _load(element, key: str, shape: tuple[int, int], backed: bool, path: Path):
    import h5py
    from anndata.io import sparse_dataset

    if backed:
        return BackedMatrix(path, key)
    if isinstance(element, h5py.Group):
        matrix = sp.csr_matrix(sparse_dataset(element).to_memory())
        return matrix.astype(np.float32, copy=False)
    return _dense_float32(element, shape, path)


def read_anndata(
    path: str | Path | None,
    layer: str | None = None,
    backed: bool = False,
    id_column: str | None = None,
    feature_column: str | None = None,
    key: str = "data.path",
) -> AnnDataFile:
    """Read and check the file; every problem is a DataError naming the file and key."""
    import h5py

    resolved, _ = open_checked(path, key, ("h5ad",))
    try:
        handle = h5py.File(resolved, "r")
    except OSError as err:
        raise DataError(f"{resolved} ({key}): unreadable HDF5 file: {err}") from None
    with handle:
        obs = _frame(handle, "obs", resolved)
        var = _frame(handle, "var", resolved)
        ids = _names(obs, id_column, "sample ids (.obs_names)", "data.id_column", resolved)
        names = _names(
            var, feature_column, "feature names (.var_names)", "data.feature_column", resolved
        )
        element_key = _element_key(handle, layer, resolved)
        shape = _check_numeric(handle[element_key], element_key, resolved)
        if shape != (len(ids), len(names)):
            raise DataError(
                f"{resolved}: .{element_key} is {shape} but .obs has {len(ids)} rows "
                f"and .var {len(names)}"
            )
        features = _load(handle[element_key], element_key, shape, backed, resolved)
    obs = obs.copy()
    for column in obs.columns:
        if isinstance(obs[column].dtype, pd.CategoricalDtype):
            obs[column] = obs[column].astype(object).where(obs[column].notna(), None)
    obs.index = pd.Index(ids, name="sample_id")
    return AnnDataFile(features, names, obs, resolved)
