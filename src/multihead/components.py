"""Build a head or loss from its config group: `_target_` names the class, the rest are args.

Hydra's `instantiate` merges runtime arguments into the config, which fails for objects like a
TaskLayout; so the class is resolved with Hydra and called directly.
"""

from __future__ import annotations

from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from multihead.errors import ConfigError

META_KEYS = ("_target_", "name")


def build_component(group: str, cfg: DictConfig, **runtime: Any) -> Any:
    """`group` names the config group in error messages (e.g. 'head')."""
    target = cfg.get("_target_")
    try:
        factory = get_object(target)
    except Exception as err:  # Hydra raises ImportError or its own errors
        raise ConfigError(f"{group}._target_={target!r} cannot be imported: {err}") from None
    args = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items()
            if k not in META_KEYS}
    try:
        return factory(**args, **runtime)
    except TypeError as err:
        raise ConfigError(f"{group}={cfg.get('name')!r}: bad arguments {sorted(args)}: {err}") \
            from None
