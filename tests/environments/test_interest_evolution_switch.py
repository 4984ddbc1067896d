"""Which computation the interest-evolution choice takes, by dimension (d <= 16 or above).

The two computations of the user-document distances (a loop over the dimensions, and the
expanded ``|x|^2 + |f|^2 - 2 x.f``) agree only to rounding, so the switch at ``d = 16`` is
part of what a run computes: pinned here on both sides of it.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_interest_evolution import table as docs
from test_interest_evolution_paths import users

from simlab.environments.interest_evolution_choice import distances


def _loop(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Squared differences summed dimension by dimension in float32, then the root."""
    acc = np.zeros((x.shape[0], f.shape[0]), np.float32)
    for j in range(x.shape[1]):
        acc += np.square(f[:, j][None, :] - x[:, j][:, None])
    return np.sqrt(acc)


def _expanded(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``sqrt(max(|x|^2 + |f|^2 - 2 x.f, 0))`` with the cross term by einsum, in float32."""
    ft = f.T[None]
    cross = np.einsum("bd,bdk->bk", x, ft)
    d2 = (x * x).sum(1)[:, None] + (ft * ft).sum(1) - 2.0 * cross
    return np.sqrt(np.maximum(d2, 0.0))


@pytest.mark.parametrize("d", [1, 15, 16, 17, 18, 40])
def test_distances_loop_up_to_16_dimensions_and_expand_above(d):
    """Bit for bit: the loop for ``d <= 16``, the expanded form for ``d > 16``."""
    g = np.random.default_rng(d)
    x = g.normal(size=(7, d)).astype(np.float32)
    f = g.normal(size=(9, d)).astype(np.float32)
    want = _loop(x, f) if d <= 16 else _expanded(x, f)
    np.testing.assert_array_equal(distances(x, f), want)


@pytest.mark.parametrize(("d", "general"), [(2, False), (16, False), (17, True), (30, True)])
def test_choices_take_the_slot_by_slot_path_up_to_16_dimensions(monkeypatch, d, general):
    """``d > 16`` (or an empty batch) goes to the general path, ``d <= 16`` does not."""
    pop = users(6, d)
    g = np.random.default_rng(d)
    items = docs(g.normal(size=(8, d)), np.zeros(8))
    calls = []
    real = pop._choose_general
    monkeypatch.setattr(pop, "_choose_general", lambda *a: calls.append(a) or real(*a))
    pop.respond(0, np.arange(6), np.tile(np.arange(3), (6, 1)), items)
    assert bool(calls) == general
