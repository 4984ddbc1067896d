"""The edges of the gamma and Beta' draws: what is refused, exactly at each bound.

Means must lie strictly inside (0, 1), standard deviations be positive and the variance
below ``mean (1 - mean)`` (where the Beta shape ``a`` would be 0 or less); gamma shapes
must be positive and finite. One bad entry among good ones is enough, and the message names
the first bad one.
"""

from __future__ import annotations

import numpy as np
import pytest

from simlab.rng import Stream
from simlab.rng_gamma import beta_prime_params


@pytest.mark.parametrize(
    ("mean", "sd", "match"),
    [
        (1.0, 0.1, r"means in \(0, 1\)"),  # the upper bound itself
        (-0.1, 0.1, r"means in \(0, 1\)"),
        ([0.2, 1.0, 0.3], 0.01, r"means in \(0, 1\)"),  # one bad entry among good ones
        (0.5, -0.1, "positive"),
        (0.5, 0.5, r"sd\*\*2 < mean"),  # sd**2 == mean (1 - mean): a == 0 exactly
        (0.2, 0.4, r"sd\*\*2 < mean"),  # sd**2 == 0.16 == 0.2 * 0.8
        ([0.5, 0.5], [0.1, 0.5], r"sd\*\*2 < mean"),
    ],
)
def test_beta_prime_refuses_each_bound(mean, sd, match):
    """Every bound is exclusive: a value on it is refused like one beyond it."""
    with pytest.raises(ValueError, match=match):
        beta_prime_params(np.array(mean), np.array(sd))


@pytest.mark.parametrize(("mean", "sd"), [(1e-6, 1e-7), (1 - 1e-6, 1e-7), (0.5, 0.4999)])
def test_beta_prime_accepts_values_just_inside(mean, sd):
    """Just inside every bound: positive shapes with the requested mean."""
    a, b = beta_prime_params(np.array(mean), np.array(sd))
    assert a > 0 and b > 0
    assert a / (a + b) == pytest.approx(mean, rel=1e-9)


def test_the_message_names_the_first_impossible_request():
    """Of several impossible (mean, sd) pairs the message quotes the first one's values."""
    mean = np.array([0.5, 0.3, 0.5, 0.2])
    sd = np.array([0.1, 0.7, 0.1, 0.9])  # entries 1 and 3 impossible
    with pytest.raises(ValueError, match=r"actual sd 0\.7 with a mean of 0\.3$"):
        beta_prime_params(mean, sd)


@pytest.mark.parametrize("shape", [0.0, -1.0, np.inf, np.nan, [1.0, 0.0], [[2.0, -0.5]]])
def test_gamma_refuses_shapes_that_are_not_positive_and_finite(shape):
    """A zero, negative, infinite or NaN shape anywhere: refused, never a silent NaN draw."""
    with pytest.raises(ValueError, match="positive finite gamma shapes"):
        Stream(0, "test/gamma").log_gamma(np.arange(3), 0, np.asarray(shape))


def test_beta_refuses_a_zero_shape():
    """Beta(a, b) with a == 0 reaches the gamma check (a Beta' request can't produce it)."""
    with pytest.raises(ValueError, match="positive finite gamma shapes"):
        Stream(0, "test/beta").beta(np.arange(2), 0, 0.0, 1.0)
