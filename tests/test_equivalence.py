"""The central fact: a fused Linear(latent, m+n) and per-task Linears are the same network.

With the same seed they start from the same weights, and under the same (per-task CE) loss
they stay the same through training: only the loss and decoding can make designs differ.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from multihead.data.datamodule import prepare_cohort
from multihead.training.builders import build_module
from multihead.training.run import train


def stacked_split_head(module) -> tuple[torch.Tensor, torch.Tensor]:
    heads = list(module.net.head.heads.values())
    return torch.cat([h.weight for h in heads]), torch.cat([h.bias for h in heads])


def load_net(out: Path) -> dict[str, torch.Tensor]:
    state = torch.load(out / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    return state["state_dict"]


def test_same_seed_same_initial_weights(small_config):
    cfg_fused, cfg_split = small_config("head=fused"), small_config("head=split")
    cohort = prepare_cohort(cfg_fused.data)
    fused, split = build_module(cfg_fused, cohort, None), build_module(cfg_split, cohort, None)
    weight, bias = stacked_split_head(split)
    torch.testing.assert_close(fused.net.head.linear.weight, weight, rtol=0, atol=0)
    torch.testing.assert_close(fused.net.head.linear.bias, bias, rtol=0, atol=0)
    for (name_a, a), (name_b, b) in zip(
        fused.net.trunk.state_dict().items(), split.net.trunk.state_dict().items(), strict=True
    ):
        assert name_a == name_b
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    other = build_module(small_config("head=split", "seed=1"), cohort, None)
    assert not torch.equal(stacked_split_head(other)[0], weight)


def test_fused_ce_equals_split_ce_after_training(small_config):
    cfg_fused = small_config("head=fused", "loss=ce", out="fused")
    cfg_split = small_config("head=split", "loss=ce", out="split")
    m_fused, m_split = train(cfg_fused), train(cfg_split)
    a = load_net(Path(cfg_fused.paths.output_dir))
    b = load_net(Path(cfg_split.paths.output_dir))
    trunk = [k for k in a if k.startswith("net.trunk.")]
    assert trunk and all(k in b for k in trunk)
    for key in trunk:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4)
    for part in ("weight", "bias"):
        stacked = torch.cat([b[f"net.head.heads.{t}.{part}"] for t in ("age", "sex")])
        torch.testing.assert_close(a[f"net.head.linear.{part}"], stacked, rtol=1e-3, atol=1e-4)
    for task in ("age", "sex"):
        for name, value in m_fused["tasks"][task].items():
            assert m_split["tasks"][task][name] == pytest.approx(value, abs=1e-4), (task, name)
    # identical decoded classes for every test sample
    pf = pd.read_csv(Path(cfg_fused.paths.output_dir, "predictions.csv"))
    ps = pd.read_csv(Path(cfg_split.paths.output_dir, "predictions.csv"))
    assert len(pf) == m_fused["n_test"]
    pd.testing.assert_frame_equal(pf.filter(like="_pred"), ps.filter(like="_pred"))


def test_bce_and_ce_differ_on_the_same_network(small_config):
    """Same initial weights, different loss: the trained networks are no longer the same."""
    cfg_bce = small_config("head=split", "loss=bce", out="bce")
    cfg_ce = small_config("head=split", "loss=ce", out="ce")
    train(cfg_bce), train(cfg_ce)
    a = load_net(Path(cfg_bce.paths.output_dir))
    b = load_net(Path(cfg_ce.paths.output_dir))
    assert not torch.allclose(
        a["net.head.heads.age.weight"], b["net.head.heads.age.weight"], atol=1e-3
    )
