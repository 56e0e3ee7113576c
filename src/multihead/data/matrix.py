"""Raw feature matrices, dense, sparse or on disk, read the same way: by rows and by columns.

Preprocessing is fitted in row chunks and applied per batch, so a sparse or backed matrix is
never densified whole; a dense one is kept as the single float32 buffer it was loaded into.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from multihead.data.inplace import chunk_rows, keep_rows_inplace

#: the largest magnitude the float32 model inputs hold; a larger finite value becomes inf
FLOAT32_MAX = float(np.finfo(np.float32).max)


def beyond_float32(values: np.ndarray) -> np.ndarray:
    """Finite values that float32 cannot hold (they would silently turn into inf)."""
    if values.dtype.itemsize <= 4 or values.dtype.kind != "f":
        return np.zeros(values.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.abs(values) > FLOAT32_MAX)


class DenseMatrix:
    """An in-memory float32 matrix; row selection happens inside its own buffer."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        step = chunk_rows(self.shape[1])
        for start in range(0, self.shape[0], step):
            yield start, self.values[start : start + step]

    def take(self, rows: np.ndarray) -> np.ndarray:
        return self.values[rows]

    def columns(self, rows: np.ndarray, start: int, stop: int) -> np.ndarray:
        return self.values[rows, start:stop]

    def select_rows(self, rows: np.ndarray) -> DenseMatrix:
        return DenseMatrix(keep_rows_inplace(self.values, rows))


class SparseMatrix:
    """A CSR matrix: batches are densified one at a time, never the whole matrix."""

    def __init__(self, values: sp.csr_matrix) -> None:
        self.values = values
        self._train_csc: tuple[bytes, sp.csc_matrix] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        step = chunk_rows(self.shape[1])
        for start in range(0, self.shape[0], step):
            yield start, self.values[start : start + step].toarray()

    def sparse_chunks(self) -> Iterator[tuple[int, sp.csr_matrix]]:
        """Row chunks that stay sparse: statistics in O(non-zeros)."""
        step = chunk_rows(self.shape[1])
        for start in range(0, self.shape[0], step):
            yield start, self.values[start : start + step]

    def take(self, rows: np.ndarray) -> np.ndarray:
        return self.values[rows].toarray()

    def columns(self, rows: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Column blocks of the same rows, from one CSC copy of those rows (sparse)."""
        key = np.asarray(rows).tobytes()
        if self._train_csc is None or self._train_csc[0] != key:
            self._train_csc = (key, self.values[rows].tocsc())
        return self._train_csc[1][:, start:stop].toarray()

    def select_rows(self, rows: np.ndarray) -> SparseMatrix:
        if len(rows) == self.shape[0]:
            return self
        return SparseMatrix(self.values[rows])


class BackedMatrix:
    """Rows of `.X` or a layer of an .h5ad file, read from disk when asked (backed mode).

    The open file handle is not pickled, so the matrix survives ddp_spawn: each process
    reopens the file on first use.
    """

    def __init__(self, path: Path, key: str, rows: np.ndarray | None = None) -> None:
        self.path, self.key = Path(path), key
        self._element = None
        self._file = None
        n_file, self._n_columns = self._open().shape
        self.rows = np.arange(n_file) if rows is None else np.asarray(rows, dtype=np.int64)

    def _open(self):
        if self._element is None:
            import h5py
            from anndata.io import sparse_dataset

            self._file = h5py.File(self.path, "r")
            element = self._file[self.key]
            self._element = sparse_dataset(element) if isinstance(element, h5py.Group) else element
        return self._element

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_element": None, "_file": None}

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), self._n_columns

    def _read(self, file_rows: np.ndarray) -> np.ndarray:
        """Dense float32 rows for increasing file rows: one contiguous read when compact."""
        element = self._open()
        first, last = int(file_rows[0]), int(file_rows[-1]) + 1
        if last - first <= 4 * len(file_rows):
            block = element[first:last]
            block = block[file_rows - first] if last - first != len(file_rows) else block
        else:
            block = element[file_rows]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        return block.astype(np.float32, copy=False)

    def take(self, rows: np.ndarray) -> np.ndarray:
        file_rows = self.rows[np.asarray(rows)]
        unique, inverse = np.unique(file_rows, return_inverse=True)
        return (
            self._read(unique)[inverse]
            if len(unique)
            else np.zeros((0, self._n_columns), np.float32)
        )

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        step = chunk_rows(self._n_columns)
        for start in range(0, len(self.rows), step):
            yield start, self._read(self.rows[start : start + step])

    def columns(self, rows: np.ndarray, start: int, stop: int) -> np.ndarray:
        return np.concatenate(
            [self.take(rows[a : a + 8192])[:, start:stop] for a in range(0, len(rows), 8192)]
        )

    def select_rows(self, rows: np.ndarray) -> BackedMatrix:
        return BackedMatrix(self.path, self.key, self.rows[np.asarray(rows)])


FeatureMatrix = DenseMatrix | SparseMatrix | BackedMatrix


def as_matrix(features: np.ndarray | sp.spmatrix | BackedMatrix) -> FeatureMatrix:
    """Wrap what a source loaded; dense input becomes C-contiguous float32 (one copy at most)."""
    if isinstance(features, BackedMatrix):
        return features
    if sp.issparse(features):
        csr = sp.csr_matrix(features)
        return SparseMatrix(csr.astype(np.float32, copy=False))
    return DenseMatrix(np.ascontiguousarray(features, dtype=np.float32))
