"""Where a cohort comes from. Each source returns features, feature names and a sample sheet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from multihead.errors import ConfigError


@dataclass
class RawCohort:
    """Features (samples x features, float32) with names, and a sample sheet indexed by id."""

    features: np.ndarray
    feature_names: list[str]
    samples: pd.DataFrame
    source: str
    informative: dict[str, list[str]] = field(default_factory=dict)


def _synthetic(cfg: DictConfig) -> RawCohort:
    from multihead.data.synthetic import make_cohort

    params = cfg.get("synthetic", {})
    cohort = make_cohort(seed=int(cfg.seed), **params)
    return RawCohort(cohort.features, list(cohort.feature_names), cohort.samples,
                     source="synthetic cohort", informative=dict(cohort.informative))


SOURCES: dict[str, Callable[[DictConfig], RawCohort]] = {"synthetic": _synthetic}


def load_raw_cohort(cfg: DictConfig) -> RawCohort:
    """Dispatch on `data.source`, listing the valid choices when it is unknown."""
    source = cfg.get("source")
    if source not in SOURCES:
        raise ConfigError(f"data.source={source!r} is unknown; choose one of {sorted(SOURCES)}")
    return SOURCES[source](cfg)
