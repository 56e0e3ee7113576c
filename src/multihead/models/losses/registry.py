"""Task losses by name: `loss.age=corn` is the TaskLoss named "corn" in `losses/corn.py`.

The module name is the loss name, so a new loss is one Python file here (plus one preset in
conf/loss/) and nothing else has to list it.
"""

from __future__ import annotations

import importlib
import pkgutil

from multihead.errors import ConfigError
from multihead.models.losses.base import TaskLoss

PACKAGE = "multihead.models.losses"


def _losses_in(module_name: str) -> dict[str, type[TaskLoss]]:
    module = importlib.import_module(f"{PACKAGE}.{module_name}")
    return {
        obj.name: obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, TaskLoss) and obj.name == module_name
    }


def available_losses() -> dict[str, type[TaskLoss]]:
    """Every task loss in the package, by name."""
    package = importlib.import_module(PACKAGE)
    found: dict[str, type[TaskLoss]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        found.update(_losses_in(info.name))
    return dict(sorted(found.items()))


def task_loss_class(name: object) -> type[TaskLoss]:
    """The class of the loss called `name`; ConfigError listing the valid names otherwise."""
    if isinstance(name, str) and name.isidentifier():
        try:
            found = _losses_in(name)
        except ModuleNotFoundError:
            found = {}
        if name in found:
            return found[name]
    raise ConfigError(f"unknown loss {name!r}; available: {', '.join(available_losses())}")
