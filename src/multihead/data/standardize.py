"""Feature standardisation fitted on the training split only (no leakage into val/test)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Standardizer:
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, rows: np.ndarray, chunk: int = 4096) -> Standardizer:
        """Mean and std over `rows`, accumulated in float64 chunks to bound memory."""
        total = np.zeros(features.shape[1])
        total_sq = np.zeros(features.shape[1])
        for start in range(0, len(rows), chunk):
            block = features[rows[start:start + chunk]].astype(np.float64)
            total += block.sum(axis=0)
            total_sq += np.square(block).sum(axis=0)
        mean = total / len(rows)
        var = np.maximum(total_sq / len(rows) - mean**2, 0.0)
        scale = np.sqrt(var)
        scale[scale < 1e-8] = 1.0  # constant features stay finite (zero after centring)
        return cls(mean.astype(np.float32), scale.astype(np.float32))

    def transform_(self, features: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """In place, chunk by chunk, so a large matrix is never copied whole."""
        for start in range(0, len(features), chunk):
            block = features[start:start + chunk]
            block -= self.mean
            block /= self.scale
        return features

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale}
