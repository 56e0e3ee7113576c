"""Every config option composes and builds; unknown names and bad values fail before training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from multihead.data.datamodule import prepare_cohort
from multihead.errors import ConfigError
from multihead.training.builders import build_loss, build_module, build_trainer
from multihead.training.validation import validate_config
from tests.conftest import CONF, SMALL, compose_config, config_options, run_train_cli
from tests.data_files import option_overrides

GROUPS = [
    "data",
    "model",
    "head",
    "loss",
    "weighting",
    "trainer",
    "budget",
    "tune",
    "logger",
    "callbacks",
    "paths",
    "debug",
    "experiment",
]


def test_every_yaml_key_has_a_comment():
    """Users change keys from the command line; each must say what it does."""
    undocumented = []
    for path in CONF.rglob("*.yaml"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
                continue
            key, _, value = stripped.partition(":")
            is_leaf = value.strip() not in ("",) or key == "_target_"
            if key.startswith("_") or key in ("defaults",):
                continue
            if is_leaf and "#" not in value:
                undocumented.append(f"{path.relative_to(CONF)}:{number}: {stripped}")
    assert not undocumented, "\n".join(undocumented)


@pytest.fixture(scope="module")
def cohort():
    return prepare_cohort(compose_config(SMALL).data)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in config_options(g)])
def test_option_composes_and_builds(group, option, cohort, tmp_path):
    overrides = [*SMALL, f"{group}={option}"]
    if group == "data":
        overrides += option_overrides(option, tmp_path)  # data=table/anndata need small files
    if group == "logger":
        overrides += [f"logger={option}"]
    cfg = compose_config(overrides, tmp_path)
    if group == "logger" and "wandb" in cfg.logger:
        cfg.logger.wandb.mode = "disabled"
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            validate_config(cfg)
        return
    validate_config(cfg)
    if group == "data":
        assert prepare_cohort(cfg.data).num_features > 0
    module = build_module(cfg, cohort, str(tmp_path))
    assert module.layout.total == sum(module.loss_fn.output_size(t) for t in cohort.tasks)
    trainer = build_trainer(cfg, tmp_path)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    assert build_loss(cfg, cohort).name == cfg.loss.name


def test_progress_bar_can_be_turned_off(tmp_path):
    """`trainer.enable_progress_bar=false` with the default callbacks (which hold a bar):
    Lightning refuses both together; the bar is left out instead of failing after tuning."""
    bar = "callbacks.progress={_target_: pytorch_lightning.callbacks.RichProgressBar}"
    shown = compose_config([*SMALL, bar, "trainer.enable_progress_bar=true"], tmp_path)
    assert build_trainer(shown, tmp_path).progress_bar_callback is not None
    hidden = compose_config([*SMALL, bar, "trainer.enable_progress_bar=false"], tmp_path)
    assert build_trainer(hidden, tmp_path).progress_bar_callback is None


@pytest.mark.parametrize("group", ["head", "loss"])
def test_unknown_choice_lists_valid_ones(group):
    with pytest.raises(MissingConfigException) as err:
        compose_config([f"{group}=nonsense"])
    for valid in config_options(group):
        assert valid in str(err.value)


def test_unknown_head_on_command_line_fails_before_training(tmp_path):
    run = run_train_cli("head=nonsense", f"hydra.run.dir={tmp_path}")
    assert run.returncode != 0
    assert "fused" in run.stderr and "split" in run.stderr
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize(
    "override,key",
    [
        ("data.tasks.age.edges=[18,30,25,90]", "data.tasks.age.edges"),
        ("data.tasks.age.edges=[18,30,30,90]", "strictly increasing"),
        ("data.tasks.age.edges=[18,90]", "at least 3 edges"),
        ("data.tasks.age.bins.width=0", "width > 0"),
        ("data.tasks.age.bins={start:90,stop:18,width:4}", "stop > start"),
        ("seed=-1", "seed"),
        ("data.batch_size=0", "data.batch_size"),
        ("model.trunk.dropout=1.5", "model.trunk.dropout"),
        ("data.tasks.sex.classes=[male,male]", "data.tasks.sex.classes"),
        ("+trainer.strategy=ddp", "ddp_spawn"),
    ],
)
def test_bad_values_are_named(override, key):
    cfg = compose_config([*SMALL, override])
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace(".", r"\.")):
        validate_config(cfg)


def test_seed_zero_is_valid():
    validate_config(compose_config([*SMALL, "seed=0", "data.seed=0"]))


def test_experiment_grid_is_heads_by_losses_by_folds():
    cfg = compose_config(["experiment=head_vs_loss"])
    params = OmegaConf.to_container(cfg)  # hydra node is not in the composed job config
    assert "hydra" not in params and params["data"]["cv"]["folds"] == 3
    text = (CONF / "experiment" / "head_vs_loss.yaml").read_text()
    assert "head: fused,split" in text and "loss: bce,ce" in text
    assert "data.cv.fold: 0,1,2" in text


def test_compare_preset_is_the_replicated_question():
    cfg = compose_config(["experiment=compare"])
    assert cfg.data.cv.folds == 5
    text = (CONF / "experiment" / "compare.yaml").read_text()
    assert "head: fused,split" in text and "loss: bce,ce" in text
    assert "data.cv.fold: 0,1,2,3,4" in text


def test_bad_bin_edges_fail_before_anything_is_written(tmp_path):
    run = run_train_cli(
        "debug=fast", "data.tasks.age.edges=[18,40,30,90]", f"hydra.run.dir={tmp_path}"
    )
    assert run.returncode != 0
    assert "strictly increasing" in run.stderr
    assert not any(Path(tmp_path).glob("*.csv"))
