"""Find the model's features, by name, among a new file's columns (any order, extras ignored)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from multihead.data.examples import examples
from multihead.errors import DataError


def match_features(needed: Sequence[str], available: Sequence[str], source: str) -> np.ndarray:
    """Positions in `available` of each name in `needed`; missing names are a DataError."""
    position = {name: i for i, name in enumerate(available)}
    missing = [name for name in needed if name not in position]
    if missing:
        raise DataError(
            f"{source}: {len(missing)} of the model's {len(needed)} features are missing: "
            f"{examples(missing, 10)}; the file must have every feature the model was trained "
            "on (extra features are ignored, order does not matter)"
        )
    return np.array([position[name] for name in needed], dtype=np.int64)
