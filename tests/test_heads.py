"""Head designs: output layout in task order, what is shared, parameter counts by hand, and
options that fail before training."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from multihead.errors import ConfigError
from multihead.models.network import build_network, count_parameters
from multihead.tasks import Task, TaskLayout, bin_labels
from multihead.training.validation import validate_config
from tests.conftest import SMALL, compose_config

EDGES = (18.0, 30.0, 45.0, 60.0, 90.0)
AGE = Task("age", "age", bin_labels(EDGES), edges=EDGES, ordered=True)
SEX = Task("sex", "sex", ("female", "male"))
LAYOUT = TaskLayout((AGE, SEX), (4, 2))
IN, HIDDEN, LATENT = 10, 8, 6

MODEL = OmegaConf.create({"trunk": {"hidden": [HIDDEN], "latent": LATENT, "dropout": 0.0}})


def head_cfg(name: str, **options) -> OmegaConf:
    targets = {
        "fused": "fused.FusedHead",
        "split": "split.SplitHead",
        "towers": "towers.TowersHead",
        "separate": "separate.SeparateHead",
    }
    return OmegaConf.create(
        {"name": name, "_target_": f"multihead.models.heads.{targets[name]}", **options}
    )


def net_for(name: str, **options):
    torch.manual_seed(0)
    return build_network(MODEL, head_cfg(name, **options), LAYOUT, IN)


def linear(a: int, b: int) -> int:
    return a * b + b


TRUNK = linear(IN, HIDDEN) + linear(HIDDEN, LATENT)


@pytest.mark.parametrize(
    "name,options,trunk,head",
    [
        ("fused", {}, TRUNK, linear(LATENT, 6)),
        ("split", {}, TRUNK, linear(LATENT, 4) + linear(LATENT, 2)),
        (
            "towers",
            {"depth": 1, "width": 5},
            TRUNK,
            linear(LATENT, 5) * 2 + linear(5, 4) + linear(5, 2),
        ),
        (
            "towers",
            {"depth": 3, "width": 7},
            TRUNK,
            (linear(LATENT, 7) + 2 * linear(7, 7)) * 2 + linear(7, 4) + linear(7, 2),
        ),
        ("separate", {}, 0, (TRUNK + linear(LATENT, 4)) + (TRUNK + linear(LATENT, 2))),
    ],
)
def test_parameter_counts_by_hand(name, options, trunk, head):
    net = net_for(name, **options)
    assert count_parameters(net.trunk) == trunk
    assert count_parameters(net.head) == head
    assert net(torch.randn(3, IN)).shape == (3, LAYOUT.total)


@pytest.mark.parametrize("name", ["split", "towers", "separate"])
def test_each_task_slice_comes_from_its_own_branch_in_task_order(name):
    """Zeroing the sex branch's output layer changes exactly the sex columns (4:6)."""
    net = net_for(name)
    x = torch.randn(5, IN)
    before = net(x).detach()
    branch = {
        "split": lambda: net.head.heads["sex"],
        "towers": lambda: net.head.towers["sex"][-1],
        "separate": lambda: net.head.networks["sex"][-1],
    }[name]()
    with torch.no_grad():
        branch.weight.zero_()
        branch.bias.fill_(3.0)
    after = net(x).detach()
    torch.testing.assert_close(after[:, :4], before[:, :4], rtol=0, atol=0)
    torch.testing.assert_close(after[:, 4:], torch.full((5, 2), 3.0))


def test_towers_are_mlps_of_the_configured_depth_and_width():
    net = net_for("towers", depth=2, width=9, dropout=0.25)
    tower = net.head.towers["age"]
    kinds = [type(m) for m in tower]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert [m.out_features for m in tower if isinstance(m, nn.Linear)] == [9, 9, 4]
    assert tower[2].p == 0.25


def test_separate_shares_nothing():
    net = net_for("separate")
    assert isinstance(net.trunk, nn.Identity)
    out = net(torch.randn(4, IN))
    out[:, :4].sum().backward()  # the age outputs only
    age = list(net.head.networks["age"].parameters())
    sex = list(net.head.networks["sex"].parameters())
    assert all(p.grad is not None and torch.count_nonzero(p.grad) > 0 for p in age[-2:])
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in sex)


def test_towers_share_the_trunk():
    net = net_for("towers")
    out = net(torch.randn(4, IN))
    out[:, 4:].sum().backward()  # the sex outputs reach the shared trunk, not the age tower
    assert all(torch.count_nonzero(p.grad) > 0 for p in net.trunk.parameters())
    assert all(
        p.grad is None or torch.count_nonzero(p.grad) == 0
        for p in net.head.towers["age"].parameters()
    )


@pytest.mark.parametrize(
    "override,message",
    [
        ("head.depth=0", "head.depth must be an integer >= 1.*depth 0 is head=split"),
        ("head.width=0", "head.width must be an integer >= 1"),
        ("head.dropout=1.0", "head.dropout must be in"),
    ],
)
def test_bad_tower_options_fail_in_validation(override, message):
    cfg = compose_config([*SMALL, "head=towers", override])
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


def test_unknown_head_option_is_named():
    cfg = compose_config([*SMALL, "head=split", "+head.depth=2"])
    with pytest.raises(ConfigError, match=r"SplitHead has no option\(s\) \['depth'\]"):
        validate_config(cfg)


SKIP_MODEL = OmegaConf.create(
    {"trunk": {"hidden": [HIDDEN], "latent": LATENT, "dropout": 0.0, "skip": True}}
)


@pytest.mark.parametrize(
    "name,trunk,head",
    [
        ("fused", TRUNK, linear(LATENT + IN, 6)),
        ("split", TRUNK, linear(LATENT + IN, 4) + linear(LATENT + IN, 2)),
        ("separate", 0, 2 * TRUNK + linear(LATENT + IN, 4) + linear(LATENT + IN, 2)),
    ],
)
def test_skip_appends_the_features_to_what_the_heads_read(name, trunk, head):
    """`model.trunk.skip`: the heads read [latent, features]; with the latent part of a head
    zeroed, that head is exactly a linear model of the features."""
    torch.manual_seed(0)
    net = build_network(SKIP_MODEL, head_cfg(name), LAYOUT, IN)
    assert count_parameters(net.trunk) == trunk
    assert count_parameters(net.head) == head
    x = torch.randn(5, IN)
    if name != "separate":
        torch.testing.assert_close(net.trunk(x), torch.cat([net.trunk.mlp(x), x], dim=1))
    if name == "split":
        sex = net.head.heads["sex"]
        with torch.no_grad():
            sex.weight[:, :LATENT] = 0.0
        expected = x @ sex.weight[:, LATENT:].T + sex.bias
        torch.testing.assert_close(net(x)[:, 4:], expected)


def test_skip_must_be_a_boolean():
    cfg = compose_config([*SMALL, "model.trunk.skip=maybe"])
    with pytest.raises(ConfigError, match="model.trunk.skip must be true or false"):
        validate_config(cfg)
