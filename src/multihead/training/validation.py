"""Check a composed config before anything is trained or written."""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from multihead.components import build_component, component_args, component_class
from multihead.data.feature_selection import check_selection
from multihead.data.placement import HOST, check_placement
from multihead.errors import ConfigError
from multihead.models.network import ensemble_size
from multihead.models.trunk import AUTO, FULL_BATCH, trunk_class
from multihead.tasks import Task, tasks_from_config
from multihead.training.budget import check_budget
from multihead.training.launchers import ranks_from_tasks
from multihead.training.search_space import check_tuning

#: numpy, torch and Lightning seeds are unsigned 32-bit integers
SEED_RANGE = (0, 2**32 - 1)
#: Lightning's "no limit" for trainer.max_steps (and max_epochs when max_steps bounds the run)
NO_LIMIT = -1


def _require_int(
    cfg: DictConfig, key: str, minimum: int, maximum: int | None = None, allowed: tuple = ()
) -> None:
    """An integer in [minimum, maximum] (or one of `allowed`), else a ConfigError naming the
    key and the range."""
    value = OmegaConf.select(cfg, key)
    if value in allowed and not isinstance(value, bool):
        return
    inside = (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= minimum
        and (maximum is None or value <= maximum)
    )
    if not inside:
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        extra = " (or -1 / null: no limit)" if allowed else ""
        raise ConfigError(f"{key} must be an integer {bound}{extra}, got {value!r}")


def _require_number(
    cfg: DictConfig, key: str, low: float, high: float, open_low: bool, open_high: bool = False
) -> None:
    """A number between low and high (each end open or closed), when the key is set at all
    and not left to `model=auto` (`auto`, resolved from the cohort's size before training)."""
    value = OmegaConf.select(cfg, key)
    if value is None or value == AUTO:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok:
        ok = (value > low if open_low else value >= low) and (
            value < high if open_high else value <= high
        )
    if not ok:
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise ConfigError(f"{key} must be a number in {interval} (or auto), got {value!r}")


def check_budget_and_seeds(cfg: DictConfig) -> None:
    """Seeds, training budget, split fractions and optimizer numbers, each named with the
    range it must lie in: a 0-epoch run would test an untrained model and write results."""
    _require_int(cfg, "seed", *SEED_RANGE)
    _require_int(cfg, "data.seed", *SEED_RANGE)
    trainer = cfg.get("trainer") or {}
    steps = trainer.get("max_steps", NO_LIMIT)
    _require_int(cfg, "trainer.max_steps", 1, allowed=(NO_LIMIT, None))
    if steps in (NO_LIMIT, None):
        _require_int(cfg, "trainer.max_epochs", 1)
    else:
        _require_int(cfg, "trainer.max_epochs", 1, allowed=(NO_LIMIT, None))
    for key in ("trainer.min_epochs", "trainer.check_val_every_n_epoch"):
        if OmegaConf.select(cfg, key) is not None:
            _require_int(cfg, key, 0 if key.endswith("min_epochs") else 1)
    for key in ("data.val_fraction", "data.test_fraction"):
        _require_number(cfg, key, 0.0, 1.0, open_low=True, open_high=True)
    _require_number(cfg, "model.optimizer.lr", 0.0, float("inf"), open_low=True)
    _require_number(cfg, "model.optimizer.weight_decay", 0.0, float("inf"), open_low=False)
    if OmegaConf.select(cfg, "callbacks.early_stopping.patience") is not None:
        _require_int(cfg, "callbacks.early_stopping.patience", 0)


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the key for anything that would fail later, or silently."""
    missing = OmegaConf.missing_keys(cfg)
    if missing:
        raise ConfigError(f"config keys without a value: {sorted(missing)}")
    check_budget_and_seeds(cfg)
    _require_int(cfg, "data.batch_size", 1)
    _require_int(cfg, "data.eval_batch_size", 1)
    check_placement(cfg.data.get("placement", HOST))
    if not isinstance(cfg.get("plots", False), bool):
        raise ConfigError(f"plots must be true or false, got {cfg.get('plots')!r}")
    for group in ("head", "loss", "weighting"):
        if group not in cfg or "_target_" not in cfg[group]:
            raise ConfigError(f"{group}: the config has no _target_ (which class builds it)")
    check_design(cfg, tasks_from_config(cfg.data.tasks))
    check_model(cfg)
    check_budget(cfg)
    check_tuning(cfg, check_model)
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator!r} but no CUDA GPU is visible; "
            "use trainer=cpu or trainer=ddp_cpu"
        )
    strategy = str(cfg.trainer.get("strategy", "auto"))
    no_relaunch = strategy.startswith("ddp_spawn") or ranks_from_tasks(cfg.trainer)
    if strategy.startswith("ddp") and not no_relaunch:
        raise ConfigError(
            f"trainer.strategy={strategy!r} relaunches the script with the command line and "
            "breaks Hydra runs and sweeps; use trainer=ddp_cpu (ddp_spawn), or a submitit "
            "launcher with hydra.launcher.tasks_per_node=N and trainer.devices=N (one rank per "
            "task)"
        )


def check_model(cfg: DictConfig) -> None:
    """The trunk's options, and an optimizer that needs a closure (L-BFGS) only where
    Lightning gives it one (automatic optimization)."""
    trunk_class(cfg.model.trunk).check_config(cfg.model.trunk)
    top_k = cfg.model.get("top_k")
    if top_k not in (None, AUTO) and (not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"model.top_k must be null, auto or an integer >= 1, got {top_k!r}")
    if cfg.model.get("select") is not None:
        check_selection(cfg.model.select)
    batch = cfg.model.get("batch_size")
    if batch not in (None, AUTO, FULL_BATCH) and (not isinstance(batch, int) or batch < 1):
        raise ConfigError(
            f"model.batch_size must be null (data.batch_size), {FULL_BATCH!r}, {AUTO!r} "
            f"or an integer >= 1, got {batch!r}"
        )
    check_head_decay(cfg)
    members = ensemble_size(cfg.model)
    if members > 1 and not trunk_class(cfg.model.trunk).learned:
        raise ConfigError(
            f"model.ensemble={members} with model={cfg.model.get('name')}: a penalised linear "
            "model has one optimum, every member would be the same; use model.ensemble=1"
        )
    optimizer = component_class("model.optimizer", cfg.model.optimizer)
    manual = getattr(component_class("weighting", cfg.weighting), "manual", False)
    if getattr(optimizer, "needs_closure", False) and manual:
        raise ConfigError(
            f"model={cfg.model.get('name')} optimizes with {optimizer.__name__}, which needs "
            f"Lightning's closure; weighting={cfg.weighting.name} sets gradients itself "
            "(manual optimization). Use weighting=fixed or weighting=uncertainty, or "
            "model.optimizer._target_=torch.optim.AdamW"
        )


def check_head_decay(cfg: DictConfig) -> None:
    """`model.head_decay`: task -> a number >= 0, for tasks of this config, on a head whose
    tasks own parameters (split, towers, separate: `fused` has one matrix for all)."""
    decays = cfg.model.get("head_decay") or {}
    if not decays:
        return
    if not isinstance(decays, DictConfig):
        raise ConfigError(
            f"model.head_decay must map task names to numbers, e.g. {{age: 1.0}}, got {decays!r}"
        )
    head = component_class("head", cfg.head)
    if not head.owns_task_parameters:
        raise ConfigError(
            f"model.head_decay needs a head with parameters per task (split, towers, "
            f"separate); head={cfg.head.get('name')} keeps every task in one matrix"
        )
    names = [t.name for t in tasks_from_config(cfg.data.tasks)]
    for task, value in decays.items():
        if task not in names:
            raise ConfigError(f"model.head_decay.{task}: no task {task!r}; tasks: {names}")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not 0 <= value < float("inf"):
            raise ConfigError(f"model.head_decay.{task} must be a number >= 0, got {value!r}")


def check_design(cfg: DictConfig, tasks: tuple[Task, ...]) -> None:
    """Head, loss and weighting options, and whether they fit the tasks and the trainer:
    every invalid combination fails here, before any data is loaded."""
    loss_class = component_class("loss", cfg.loss)
    chosen = loss_class.check_config(tasks, **component_args(cfg.loss))
    head_class = component_class("head", cfg.head)
    head_class.check_options(**component_args(cfg.head))
    likelihoods = {t.name: chosen[t.name].likelihood for t in tasks}
    weighting = build_component("weighting", cfg.weighting, likelihoods=likelihoods)
    if weighting.manual:
        _check_manual_optimization(cfg)


def _check_manual_optimization(cfg: DictConfig) -> None:
    """Gradient methods set the gradients themselves; Lightning cannot clip or accumulate
    gradients it never computed."""
    clip = cfg.trainer.get("gradient_clip_val")
    accumulate = cfg.trainer.get("accumulate_grad_batches", 1)
    name = cfg.weighting.name
    if clip not in (None, 0, 0.0):
        raise ConfigError(
            f"weighting={name} computes its own gradients (manual optimization): "
            f"trainer.gradient_clip_val must be null, got {clip}; "
            "use weighting=fixed or weighting=uncertainty to clip gradients"
        )
    if accumulate not in (None, 1):
        raise ConfigError(
            f"weighting={name} computes its own gradients (manual optimization): "
            f"trainer.accumulate_grad_batches must be 1, got {accumulate}; "
            "raise data.batch_size instead"
        )
