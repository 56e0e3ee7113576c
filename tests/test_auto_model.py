"""`model=auto`: the written rule, its use for own cohorts, and what a run records."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from multihead.models.auto_size import auto_choices, resolve_auto
from multihead.training.run import train
from tests.conftest import compose_config


@pytest.mark.parametrize(
    "n,p,expected",
    [
        # the ALL cohort: 87 training samples x 12,625 probes -> pre-selection, small net
        (87, 12625, dict(top_k=256, width=32, depth=1, dropout=0.1, batch_size=16)),
        # a methylation cohort: 470 x 7,500 -> 940 CpGs
        (470, 7500, dict(top_k=940, width=256, depth=1, dropout=0.1, batch_size=64)),
        # the built-in cohort: 1,400 x 5,000 -> every feature, wider, larger batches
        (1400, 5000, dict(top_k=None, width=512, depth=1, dropout=0.25, batch_size=128)),
        # 200,000 cells x 20,000 genes
        (200_000, 20_000, dict(top_k=None, width=512, depth=2, dropout=0.25, batch_size=128)),
    ],
)
def test_rule(n, p, expected):
    chosen = auto_choices(n, p)
    assert {k: chosen[k] for k in expected} == expected
    assert 0.01 <= chosen["weight_decay"] <= 0.1


def test_weight_decay_grows_with_features_per_sample():
    assert auto_choices(100, 900)["weight_decay"] > auto_choices(100, 200)["weight_decay"]


def test_only_auto_values_are_replaced():
    cfg = compose_config(["model=auto", "model.trunk.dropout=0.3"])
    chosen = resolve_auto(cfg, 87, 12625)
    assert "model.trunk.dropout" not in chosen and cfg.model.trunk.dropout == 0.3
    assert cfg.model.trunk.width == 32 and cfg.model.top_k == 256
    assert not OmegaConf.select(cfg, "model.batch_size") == "auto"


def test_own_data_defaults_to_auto_and_the_command_line_wins():
    table = ["data=table", "data.matrix=x.csv", "data.samples=s.csv"]
    assert compose_config(table).model.name == "auto"
    assert compose_config([*table, "model=mlp"]).model.name == "mlp"
    assert compose_config([]).model.name == "mlp"  # the built-in cohort keeps its network


def test_auto_run_records_its_choices(small_config, tmp_path):
    metrics = train(small_config("model=auto", "data.synthetic.n_features=4000"))
    # 350 training samples x 4,000 features: p > 10 n, so 700 features are kept
    assert metrics["auto"]["top_k"] == 700 and metrics["num_features"] == 700
    assert metrics["auto"]["width"] == 128 and metrics["auto"]["batch_size"] == 32
    saved = OmegaConf.load(tmp_path / "run" / "config.yaml")
    assert saved.model.trunk.width == 128 and saved.data.batch_size == 32
