"""The APAO prefix term at the edges of its keys and of the model's certainty.

``eta`` takes any float and ``tau`` any positive one, so ``eta * l_t`` reaches far beyond
float32's ``exp`` range (about +-88) both ways; and a model certain of every level of a
batch has every prefix loss ``l_t`` exactly 0. In each case the loss and its gradient must
stay finite and equal the written-out reference of ``test_generative_model.py`` (weights
``l_t exp(eta l_t)`` normalised in float64), and a certain batch adds no prefix term.
"""

from __future__ import annotations

import pytest
import torch
from test_generative_model import SIZES, make_model, random_history, random_targets, reference_loss

from simlab.agents.generative_model import sequence_loss
from simlab.agents.generative_params import PrefixLossParams

EXTREME = [
    {"eta": 30.0, "tau": 0.05},  # eta l_t ~ 10^3: exp overflows float32 (and float64)
    {"eta": 100.0, "tau": 1.0},
    {"eta": 40.0, "tau": 1.0},  # exp(eta l_t) alone fits float32, times l_t and sums near max
    {"eta": -100.0, "tau": 1.0},  # exp underflows to 0 for every t
    {"eta": -5.0, "tau": 0.01},
]


def check_against_reference(model, hist, target, prefix):
    """Finite loss and gradients, equal to :func:`reference_loss`; returns the loss."""
    got = sequence_loss(model, hist, target, prefix)
    want = reference_loss(model, hist, target, prefix)
    assert torch.isfinite(got)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    params = list(model.parameters())
    grads = torch.autograd.grad(got, params, allow_unused=True)
    wgrads = torch.autograd.grad(want, params, allow_unused=True)
    for g, wg in zip(grads, wgrads, strict=True):
        if wg is not None:
            assert torch.isfinite(g).all()
            torch.testing.assert_close(g, wg, rtol=1e-4, atol=1e-4)
    return got


@pytest.mark.parametrize("keys", EXTREME, ids=str)
@pytest.mark.parametrize("seed", range(3))
def test_any_focus_and_temperature_give_the_reference_loss(seed, keys):
    """Large ``|eta * l_t|``: finite, the reference, and the prefix term is there."""
    model = make_model(seed, layers=1)
    hist, target = random_history(seed, b=6), random_targets(seed)
    prefix = PrefixLossParams(enabled=True, beta=0.5, **keys)
    got = check_against_reference(model, hist, target, prefix)
    plain = sequence_loss(model, hist, target, PrefixLossParams())
    assert float(got.detach()) > float(plain.detach()) + 1e-3


def certain_model(seed: int, levels: int) -> torch.nn.Module:
    """A model that gives code 0 probability 1 (log-prob exactly 0) at its first ``levels``."""
    model = make_model(seed, layers=1)
    with torch.no_grad():
        for lv in range(levels):
            o = sum(SIZES[:lv])
            model.head.weight[o : o + SIZES[lv]] = 0.0
            model.head.bias[o : o + SIZES[lv]] = torch.tensor([200.0] + [0.0] * (SIZES[lv] - 1))
    return model


@pytest.mark.parametrize("eta", [0.0, 2.0, -100.0, 100.0])
@pytest.mark.parametrize("seed", range(2))
def test_certain_prefixes_add_nothing_and_the_rest_are_weighted(seed, eta):
    """All ``l_t = 0``: the loss is the cross-entropy alone; some ``l_t = 0``: weight 0."""
    hist = random_history(seed, b=6)
    target = random_targets(seed)
    target[:, : len(SIZES)] = 0  # the certain code at every level
    model = certain_model(seed, len(SIZES))
    prefix = PrefixLossParams(enabled=True, beta=3.0, eta=eta, tau=0.2)
    got = check_against_reference(model, hist, target, prefix)
    plain = sequence_loss(model, hist, target, PrefixLossParams())
    assert float(got.detach()) == float(plain.detach())
    assert float(got.detach()) == 0.0
    # certain first level only: l_1 = 0 gets no weight, l_2 and l_3 share it
    model = certain_model(seed, 1)
    target = random_targets(seed)
    target[:, 0] = 0
    got = check_against_reference(model, hist, target, prefix)
    plain = sequence_loss(model, hist, target, PrefixLossParams())
    assert float(got.detach()) > float(plain.detach()) + 1e-3
