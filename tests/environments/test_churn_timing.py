"""Exact timing of churn and return in the logit user model.

With every user returning every step and never clicking (engagement 0), satisfaction after
``k`` visits is ``0.5 (1 - rate)^k``; a visit is poor once it falls below the threshold, and
the user churns on the ``patience``-th poor visit in a row and never returns. These tests
pin the step at which that happens, so a churn one visit late (or early) fails.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_small

from simlab.rng import Stream
from simlab.world import World


def _world(**users) -> World:
    sc = make_small(
        ("users", {"model": "logit", "num_users": 40, "return_spread": 0.0, **users}),
        agents=[{"model": "random"}],
        steps=12,
    )
    return World(sc, 0, 4)


def _expected_churn_visit(rate: float, threshold: float, patience: int) -> int:
    """The visit (1-based) on which a never-clicking user churns, in float32 as the model."""
    sat, poor = np.float32(0.5), 0
    for visit in range(1, 100):
        sat = np.float32((1 - rate) * sat + rate * 0.0)
        poor = poor + 1 if sat < threshold else 0
        if poor >= patience:
            return visit
    raise AssertionError("never churns")


@pytest.mark.parametrize(
    "rate, threshold, patience", [(0.2, 0.3, 2), (0.2, 0.3, 1), (0.5, 0.2, 3), (0.1, 0.45, 4)]
)
def test_never_clicking_users_churn_on_the_expected_visit(rate, threshold, patience):
    """Everyone is active up to the churn visit, nobody from the next step on."""
    world = _world(
        return_prob=1.0,
        no_click_utility=1e4,
        satisfaction_rate=rate,
        churn_threshold=threshold,
        churn_patience=patience,
    )
    churn_visit = _expected_churn_visit(rate, threshold, patience)
    active = [world.step(t)["users/active"] for t in range(churn_visit + 2)]
    assert active[:churn_visit] == [40.0] * churn_visit
    assert active[churn_visit:] == [0.0, 0.0]
    assert world.users.churned.all()


def test_worked_example_churns_on_the_fourth_visit():
    """0.5 -> 0.4 -> 0.32 -> 0.256 (poor 1) -> 0.2048 (poor 2: churn at step 3)."""
    assert _expected_churn_visit(0.2, 0.3, 2) == 4


def test_satisfied_users_never_churn():
    """Above the threshold nobody churns (threshold 0 disables churn)."""
    for threshold in (0.0, 0.01):
        world = _world(return_prob=1.0, no_click_utility=1e4, churn_threshold=threshold)
        if threshold:
            world.users._satisfaction[:] = 1.0  # far above 0.01 for many visits
        active = [world.step(t)["users/active"] for t in range(8)]
        assert active == [40.0] * 8


@pytest.mark.parametrize("prob", [0.3, 0.8])
def test_returns_follow_the_keyed_arrival_draws(prob: float):
    """User u returns at step t exactly when its keyed uniform is below its probability."""
    world = _world(return_prob=prob)
    draws = Stream(4, "users/arrival")
    for t in range(6):
        want = np.flatnonzero(draws.uniform(np.arange(40), t) < prob)
        np.testing.assert_array_equal(world.users.arrivals(t), want)
    active = [world.step(t)["users/active"] for t in range(6)]
    assert active == [float((draws.uniform(np.arange(40), t) < prob).sum()) for t in range(6)]
