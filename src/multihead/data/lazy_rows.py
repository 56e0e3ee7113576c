"""Model inputs computed per batch from a sparse or on-disk matrix (never densified whole)."""

from __future__ import annotations

import numpy as np
import torch

from multihead.data.matrix import BackedMatrix, SparseMatrix
from multihead.data.preprocess import Preprocessor


class LazyRows:
    """Indexable like a tensor of model inputs: `rows[index]` densifies just those rows.

    Used as `PreparedCohort.features` when the raw matrix is sparse or backed; `TensorRows`
    indexes it exactly as it indexes a dense tensor.
    """

    def __init__(self, matrix: SparseMatrix | BackedMatrix, preprocessor: Preprocessor) -> None:
        self.matrix = matrix
        self.preprocessor = preprocessor

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape[0], len(self.preprocessor.keep)

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def __getitem__(self, index: torch.Tensor | np.ndarray) -> torch.Tensor:
        rows = index.numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
        return torch.from_numpy(self.preprocessor.transform(self.matrix.take(rows)))
