"""`model=auto`: the MLP's size, regularisation and batch size from the cohort's shape.

n is the number of training samples, p the number of features after preprocessing. The rule
(reasoning in the README, "Small cohorts"):

* features: when p > 10 n, keep the first max(256, 2 n) of the `model.select` ranking
  (default: training variance). With p >> n a network fits the
  training samples through whichever of the many inputs it meets first (on the ALL cohort:
  1,000 inputs for 87 samples gave sex balanced accuracy 0.55, 200 gave 0.75-0.85);
  pre-selection keeps the signals and drops most of the noise;
* width = a power of two near n / 2, between 32 and 512: more units than samples only adds
  ways to memorise; depth 1 (one trunk layer) below 2,000 samples, 2 above;
* dropout 0.1 below 1,000 samples, 0.25 above: heavy dropout on a small trunk mostly adds
  gradient noise to a model that is already small;
* weight decay 0.01 x (features per sample), between 0.01 and 0.1: stronger shrinkage where
  there are many inputs per sample;
* batch size = a power of two near n / 8, between 16 and 128: about eight steps per epoch,
  so a 100-sample cohort gets many optimizer steps from the step budget.

Only keys whose value is `auto` are chosen; any of them can be pinned on the command line
(`model=auto model.trunk.dropout=0.3`).
"""

from __future__ import annotations

import math

from omegaconf import DictConfig, OmegaConf, open_dict

from multihead.models.trunk import AUTO

#: config key -> name of the rule's value
AUTO_KEYS = {
    "model.top_k": "top_k",
    "model.trunk.width": "width",
    "model.trunk.depth": "depth",
    "model.trunk.dropout": "dropout",
    "model.optimizer.weight_decay": "weight_decay",
    "model.batch_size": "batch_size",
}
#: features per training sample above which `auto` pre-selects features
MAX_FEATURES_PER_SAMPLE = 10
#: features per training sample that `auto` keeps when it pre-selects
KEPT_PER_SAMPLE = 2
#: fewest features `auto` keeps when it pre-selects
MIN_TOP_K = 256


def _power_of_two(x: float, low: int, high: int) -> int:
    return int(min(high, max(low, 2 ** round(math.log2(max(x, 1.0))))))


def auto_choices(n: int, p: int) -> dict[str, int | float | None]:
    """The rule above for n training samples and p features."""
    top_k = None
    if p > MAX_FEATURES_PER_SAMPLE * n:
        top_k = min(p, max(MIN_TOP_K, KEPT_PER_SAMPLE * n))
    kept = top_k or p
    return {
        "top_k": top_k,
        "width": _power_of_two(n / 2, 32, 512),
        "depth": 1 if n < 2000 else 2,
        "dropout": 0.1 if n < 1000 else 0.25,
        "weight_decay": round(min(0.1, max(0.01, 0.01 * kept / max(n, 1))), 4),
        "batch_size": _power_of_two(n / 8, 16, 128),
    }


def auto_keys(cfg: DictConfig) -> list[str]:
    """The config keys still set to `auto`."""
    return [k for k in AUTO_KEYS if OmegaConf.select(cfg, k) == AUTO]


def resolve_auto(cfg: DictConfig, n: int, p: int) -> dict[str, int | float | None]:
    """Replaces every `auto` value in `cfg` by the rule's choice; returns what was chosen."""
    keys = auto_keys(cfg)
    if not keys:
        return {}
    rule = auto_choices(n, p)
    chosen = {key: rule[AUTO_KEYS[key]] for key in keys}
    with open_dict(cfg):
        for key, value in chosen.items():
            OmegaConf.update(cfg, key, value, merge=False)
    return chosen
