"""Feature standardisation fitted on the training split only (no leakage into val/test)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Standardizer:
    """Per-feature training mean and scale (see `multihead.data.preprocess`, which fits it)."""

    mean: np.ndarray
    scale: np.ndarray

    def transform_(self, features: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """In place, chunk by chunk, so a large matrix is never copied whole."""
        for start in range(0, len(features), chunk):
            block = features[start : start + chunk]
            block -= self.mean
            block /= self.scale
        return features

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale}
