"""Task weighting: fixed weights, learned uncertainty weights (Kendall et al. 2018) and PCGrad
(Yu et al. 2020) against hand-worked examples and independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from multihead.data.datamodule import prepare_cohort
from multihead.errors import ConfigError
from multihead.models.weighting.fixed import FixedWeighting
from multihead.models.weighting.pcgrad import (
    PCGradWeighting,
    conflicting_pairs,
    project_conflicting,
    task_gradients,
)
from multihead.models.weighting.uncertainty import UncertaintyWeighting
from multihead.training.builders import build_module
from multihead.training.validation import validate_config
from tests.conftest import SMALL, compose_config

CATEGORICAL = {"age": "categorical", "sex": "categorical"}
PARTS = {"age": torch.tensor(2.0), "sex": torch.tensor(0.5)}


# ---------------------------------------------------------------------------------- fixed


def test_fixed_weights_default_to_one_and_are_configurable():
    close = pytest.approx
    assert float(FixedWeighting(CATEGORICAL)(PARTS)) == close(2.5)
    weighted = FixedWeighting(CATEGORICAL, weights={"sex": 4.0})
    assert float(weighted(PARTS)) == close(2.0 + 4.0 * 0.5)
    assert float(weighted.selection_loss(PARTS)) == close(4.0)
    assert weighted.task_weights() == {"age": 1.0, "sex": 4.0}


@pytest.mark.parametrize(
    "weights,message",
    [
        ({"height": 1.0}, r"names \['height'\], which are not tasks"),
        ({"sex": -1.0}, "numbers >= 0"),
        ({"age": 0, "sex": 0}, "every task has weight 0"),
    ],
)
def test_bad_fixed_weights_are_named(weights, message):
    with pytest.raises(ConfigError, match=message):
        FixedWeighting(CATEGORICAL, weights=weights)


# ---------------------------------------------------------------------------- uncertainty


def test_uncertainty_objective_by_hand():
    w = UncertaintyWeighting({"age": "gaussian", "sex": "categorical"}, init_log_var=0.0)
    with torch.no_grad():
        w.log_vars.copy_(torch.tensor([0.4, -0.3]))
    # Gaussian (eq. 7): L / (2 sigma^2) + log sigma; categorical (eq. 10): L / sigma^2 + log sigma
    sigma2 = (math.exp(0.4), math.exp(-0.3))
    want = (
        2.0 / (2 * sigma2[0])
        + math.log(math.sqrt(sigma2[0]))
        + 0.5 / sigma2[1]
        + math.log(math.sqrt(sigma2[1]))
    )
    assert float(w(PARTS).detach()) == pytest.approx(want, rel=1e-6)
    assert w.task_weights() == pytest.approx({"age": 0.5 / sigma2[0], "sex": 1 / sigma2[1]})
    assert float(w.selection_loss(PARTS)) == pytest.approx(2.5)  # plain sum picks checkpoints
    values = w.epoch_values()
    assert values["age/log_var"] == pytest.approx(0.4) and values["sex/weight"] == pytest.approx(
        1 / sigma2[1]
    )


@pytest.mark.parametrize("likelihood,factor", [("categorical", 1.0), ("gaussian", 0.5)])
def test_learned_log_variance_reaches_its_optimum(likelihood, factor):
    """d/ds [c e^-s L + s/2] = 0 at s* = log(2 c L): a task with a high loss gets a low weight."""
    w = UncertaintyWeighting({"a": likelihood, "b": likelihood})
    losses = {"a": torch.tensor(3.0), "b": torch.tensor(0.2)}
    optimizer = torch.optim.SGD(w.parameters(), lr=0.2)
    for _ in range(500):
        optimizer.zero_grad()
        w(losses).backward()
        optimizer.step()
    want = [math.log(2 * factor * 3.0), math.log(2 * factor * 0.2)]
    np.testing.assert_allclose(w.log_vars.detach().numpy(), want, atol=1e-3)
    weights = w.task_weights()
    assert weights["a"] < weights["b"]


def test_uncertainty_log_variances_are_optimised_without_weight_decay():
    cfg = compose_config([*SMALL, "weighting=uncertainty"])
    module = build_module(cfg, prepare_cohort(cfg.data), None)
    optimizer = module.configure_optimizers()
    groups = optimizer.param_groups
    assert len(groups) == 2
    assert groups[1]["params"] == [module.weighting.log_vars]
    assert groups[1]["weight_decay"] == 0.0 and groups[0]["weight_decay"] == 0.01
    in_model = {id(p) for p in groups[0]["params"]}
    assert id(module.weighting.log_vars) not in in_model
    assert in_model == {id(p) for p in module.net.parameters()} | {
        id(p) for p in module.loss_fn.parameters()
    }
    assert module.parameter_counts()["weighting"] == 2


# ---------------------------------------------------------------------------------- PCGrad


def pcgrad_reference(grads: np.ndarray, orders) -> np.ndarray:
    """Algorithm 1 of Yu et al. (2020), written out with plain loops."""
    out = np.zeros(grads.shape[1])
    for i in range(len(grads)):
        g = grads[i].astype(np.float64).copy()
        for j in orders[i]:
            dot = float(np.dot(g, grads[j]))
            if dot < 0:
                g = g - dot / float(np.dot(grads[j], grads[j])) * grads[j]
        out += g
    return out


def test_pcgrad_two_dimensional_example_by_hand():
    grads = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # dot -1: they conflict
    # g1 - (-1 / 2) g2 = (0.5, 0.5); g2 - (-1 / 1) g1 = (0, 1); sum (0.5, 1.5)
    torch.testing.assert_close(project_conflicting(grads, [[1], [0]]), torch.tensor([0.5, 1.5]))
    assert conflicting_pairs(grads) == (1, 1)
    agreeing = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(project_conflicting(agreeing, [[1], [0]]), torch.tensor([2.0, 1.0]))
    assert conflicting_pairs(agreeing) == (0, 1)


def test_pcgrad_three_tasks_match_the_reference_in_every_order():
    grads = torch.tensor([[1.0, 2.0, -1.0, 0.5], [-2.0, 0.5, 1.0, 0.0], [0.3, -1.5, -0.5, 2.0]])
    results = []
    for orders in ([[1, 2], [0, 2], [0, 1]], [[2, 1], [2, 0], [1, 0]]):
        got = project_conflicting(grads, orders)
        np.testing.assert_allclose(
            got.numpy(), pcgrad_reference(grads.numpy(), orders), rtol=1e-6, atol=1e-6
        )
        results.append(got)
    assert not torch.allclose(results[0], results[1])  # order matters with 3 tasks
    assert conflicting_pairs(grads) == (3, 3)


def test_pcgrad_sets_gradients_of_a_small_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x, target = torch.randn(8, 3), torch.randn(8, 2)
    params = list(model.parameters())

    def losses():
        out = model(x)
        return {
            "a": (out[:, 0] - target[:, 0]).square().mean(),
            "b": (out[:, 1] + out[:, 0] * 3 - target[:, 1]).abs().mean(),
        }

    flat = []
    for name in ("a", "b"):  # independent per-task gradients: one backward each
        model.zero_grad()
        losses()[name].backward()
        flat.append(torch.cat([p.grad.reshape(-1) for p in params]))
    flat = torch.stack(flat)
    torch.testing.assert_close(task_gradients(list(losses().values()), params), flat)

    weighting = PCGradWeighting({"a": "gaussian", "b": "gaussian"})
    model.zero_grad()
    weighting.set_gradients(losses(), params, reduce=lambda t: t)
    got = torch.cat([p.grad.reshape(-1) for p in params])
    want = pcgrad_reference(flat.numpy(), [[1], [0]])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    conflict = float(flat[0] @ flat[1]) < 0
    assert weighting.epoch_values()["conflict_rate"] == float(conflict)
    assert "conflict_rate" not in weighting.epoch_values()  # reset after each epoch


def test_pcgrad_order_is_seeded_and_changes_with_the_step():
    names = {n: "categorical" for n in "abcd"}
    a, b = PCGradWeighting(names, seed=3), PCGradWeighting(names, seed=3)
    assert a.orders() == b.orders()
    first = a.orders()
    assert all(sorted(o) == [j for j in range(4) if j != i] for i, o in enumerate(first))
    a.steps = 1
    assert a.orders() != first  # a new random order each step (fixed by seed and step)


def test_pcgrad_refuses_gradient_clipping_and_accumulation():
    for override, message in (
        ("+trainer.gradient_clip_val=1.0", "gradient_clip_val must be null"),
        ("+trainer.accumulate_grad_batches=2", "accumulate_grad_batches"),
    ):
        with pytest.raises(ConfigError, match=message):
            validate_config(compose_config([*SMALL, "weighting=pcgrad", override]))
    validate_config(
        compose_config([*SMALL, "weighting=uncertainty", "+trainer.gradient_clip_val=1.0"])
    )
