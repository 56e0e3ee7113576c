"""Shared by the ordinal losses (CORN, CORAL): from exceedance probabilities P(y > k) to class
probabilities and a decoded rank."""

from __future__ import annotations

import torch


def class_probabilities(exceed: torch.Tensor) -> torch.Tensor:
    """P(y = k) = P(y > k-1) - P(y > k), with P(y > -1) = 1 and P(y > K-1) = 0.

    `exceed` (batch, K-1) must be non-increasing along dim 1, so every difference is >= 0 and
    the K probabilities sum to 1 exactly (the sum telescopes).
    """
    ones = torch.ones_like(exceed[:, :1])
    upper = torch.cat([ones, exceed], dim=1)
    lower = torch.cat([exceed, torch.zeros_like(ones)], dim=1)
    return upper - lower


def decode_rank(exceed: torch.Tensor) -> torch.Tensor:
    """Number of thresholds passed with probability > 0.5 (the CORAL/CORN papers' rule).

    For non-increasing `exceed` this is the median class of `class_probabilities(exceed)`.
    """
    return (exceed > 0.5).sum(dim=1)


def non_increasing(exceed: torch.Tensor) -> torch.Tensor:
    """Running minimum along the thresholds: unchanged when already rank-consistent."""
    return torch.cummin(exceed, dim=1).values
