"""Class weights against imbalance, fitted on the training split's labels."""

from __future__ import annotations

import torch

from multihead.errors import ConfigError

CLASS_WEIGHTS = (None, "balanced")


def check_class_weights(value: object) -> None:
    if value not in CLASS_WEIGHTS:
        raise ConfigError(
            f"loss.class_weights must be null (every sample counts the same) or "
            f"'balanced' (inverse class frequency), got {value!r}"
        )


def balanced_class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """n / (K * n_c) over labelled samples, as scikit-learn's 'balanced': every class then
    carries the same total weight. A class absent from training gets 0 (it has no samples)."""
    labelled = labels[labels >= 0]
    counts = torch.bincount(labelled, minlength=num_classes).double()
    weights = torch.zeros(num_classes, dtype=torch.float64)
    present = counts > 0
    weights[present] = labelled.numel() / (num_classes * counts[present])
    return weights.float()
