"""Build a head or loss from its config group: `_target_` names the class, the rest are args.

Hydra's `instantiate` merges runtime arguments into the config, which fails for objects like a
TaskLayout; so the class is resolved with Hydra and called directly.
"""

from __future__ import annotations

import inspect
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from multihead.errors import ConfigError

META_KEYS = ("_target_", "name")


def component_class(group: str, cfg: DictConfig) -> Any:
    """The class `_target_` names, e.g. to read its class attributes before building it."""
    target = cfg.get("_target_")
    try:
        return get_object(target)
    except Exception as err:  # Hydra raises ImportError or its own errors
        raise ConfigError(f"{group}._target_={target!r} cannot be imported: {err}") from None


def component_args(cfg: DictConfig) -> dict[str, Any]:
    """The config's own arguments: everything except `_target_` and `name`."""
    return {
        k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in META_KEYS
    }


def build_component(group: str, cfg: DictConfig, **runtime: Any) -> Any:
    """`group` names the config group in error messages (e.g. 'head')."""
    factory = component_class(group, cfg)
    args = component_args(cfg)
    try:  # check the arguments only: a TypeError inside the constructor is a bug, not config
        inspect.signature(factory).bind(**args, **runtime)
    except TypeError as err:
        raise ConfigError(
            f"{group}={cfg.get('name')!r}: bad arguments {sorted(args)}: {err}"
        ) from None
    return factory(**args, **runtime)
