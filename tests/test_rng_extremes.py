"""Keyed draws at the ends of their range: the smallest and the largest 53-bit draw.

The counter hash is a bijection, so the ids whose single draw has all 53 bits zero (the
smallest uniform) or all ones (the largest) are found by running the documented formula
``_mix(_mix(_mix(id * G + key) ^ step_key) + G)`` backwards. Classes: at the largest draw
``categorical`` picks the last category and ``integers`` returns ``high - 1`` (never ``n``
or ``high``: the clamps hold whatever rounding does at the top); at the smallest they pick
the first category and 0; every draw of both stays in range, for shared and per-entity
weights and bounds, over several seeds, streams and steps.
"""

from __future__ import annotations

import numpy as np
import pytest

from simlab import rng
from simlab.rng import Stream

_M64 = (1 << 64) - 1


def _unxorshift(y: int, shift: int) -> int:
    """The ``x`` with ``x ^ (x >> shift) == y`` (64-bit)."""
    x = y
    for _ in range(64 // shift + 1):
        x = y ^ (x >> shift)
    return x


def _unmix(x: int) -> int:
    """The inverse of the splitmix64 finaliser ``rng._mix`` on one 64-bit integer."""
    x = _unxorshift(x, 31)
    x = (x * pow(int(rng._M2), -1, 1 << 64)) & _M64
    x = _unxorshift(x, 27)
    x = (x * pow(int(rng._M1), -1, 1 << 64)) & _M64
    return _unxorshift(x, 30)


def _id_drawing(s: Stream, step: int, bits: int) -> int:
    """The int64 id whose single draw of ``s`` at ``step`` is the 64-bit value ``bits``."""
    g = int(rng._GOLDEN)
    step_key = (s._key ^ ((step * rng._STEP_SALT) & _M64)) & _M64
    h = _unmix((_unmix(bits) - g) & _M64) ^ step_key
    x = (_unmix(h) - s._key) & _M64
    uid = (x * pow(g, -1, 1 << 64)) & _M64
    return uid - (1 << 64) if uid >= 1 << 63 else uid


LARGEST = ((1 << 53) - 1) << 11  # the top 53 bits all ones (the low 11 are dropped)
SMALLEST = 0
KEYS = [(0, "users/choice", 0), (3, "content/creator", 7), (2**40, "x", 123456)]


@pytest.mark.parametrize(("seed", "name", "step"), KEYS)
def test_the_inverted_ids_draw_the_extreme_bits(seed, name, step):
    """The construction is right: the hash of each id is the wanted bits."""
    s = Stream(seed, name)
    for bits in (LARGEST, SMALLEST, LARGEST | 0x7FF, 12345 << 11):
        got = s.bits(np.array([_id_drawing(s, step, bits)]), step)
        assert int(got[0]) == bits


@pytest.mark.parametrize(("seed", "name", "step"), KEYS)
@pytest.mark.parametrize("n", [1, 2, 3, 7, 10])
def test_categorical_at_the_extreme_draws_picks_the_first_and_last_category(seed, name, step, n):
    """Largest draw: category n - 1; smallest: 0; shared and per-entity weights alike."""
    s = Stream(seed, name)
    top, bottom = _id_drawing(s, step, LARGEST), _id_drawing(s, step, SMALLEST)
    ids = np.array([top, bottom, 5, 6])
    weights = np.random.default_rng(n).uniform(0.1, 3.0, n)
    for probs in (weights, np.ones(n), np.tile(weights, (4, 1)), np.arange(1.0, n + 1)[::-1]):
        got = s.categorical(ids, step, probs)
        assert got.tolist()[:2] == [n - 1, 0], probs
        assert ((got >= 0) & (got < n)).all()


@pytest.mark.parametrize(("seed", "name", "step"), KEYS)
@pytest.mark.parametrize("high", [1, 2, 5, 1000, 2**40])
def test_integers_at_the_extreme_draws_are_high_minus_one_and_zero(seed, name, step, high):
    """Largest draw: ``high - 1``; smallest: 0; a per-entity ``high`` alike."""
    s = Stream(seed, name)
    ids = np.array([_id_drawing(s, step, LARGEST), _id_drawing(s, step, SMALLEST)])
    assert s.integers(ids, step, high).tolist() == [high - 1, 0]
    per = np.array([high, high + 3])
    assert s.integers(ids, step, per).tolist() == [high - 1, 0]


@pytest.mark.parametrize(("seed", "name", "step"), KEYS)
def test_uniform_stays_inside_the_open_interval_at_both_ends(seed, name, step):
    """The all-ones draw is the largest double below 1 (not 1.0); the all-zeros one is 2**-54."""
    s = Stream(seed, name)
    top, bottom = _id_drawing(s, step, LARGEST), _id_drawing(s, step, SMALLEST)
    u = s.uniform(np.array([top, bottom]), step)
    assert u[0] == np.nextafter(1.0, 0.0) and u[0] < 1.0
    assert u[1] == 2.0**-54 and u[1] > 0.0
    assert rng.uniform(seed, name, np.array([top]), step)[0] < 1.0
    # the draws built on it stay finite at both ends
    assert np.isfinite(s.gumbel(np.array([top, bottom]), step)).all()
    # the next-largest draw is unchanged: 1 - 2**-52 (so the two largest stay distinct)
    below = s.uniform(np.array([_id_drawing(s, step, LARGEST - (1 << 11))]), step)
    assert below[0] == 1.0 - 2.0**-52


_LARGE_HIGHS = sorted(
    {h for k in range(1, 64) for h in ((1 << k) - 1, 1 << k, (1 << k) + 1) if h < 2**63}
    | {2**63 - 1, 3 * 2**52 + 1, 10**18 + 7}
)


@pytest.mark.parametrize(("seed", "name", "step"), KEYS)
def test_integers_at_the_largest_draw_stay_below_every_int64_high(seed, name, step):
    """No clamp: the top uniform times any positive int64 ``high`` floors to at most high - 1.

    Around every power of two (where float64 rounding of ``high`` and of the product is
    tightest) and at the int64 maximum, as one per-entity ``high`` array.
    """
    s = Stream(seed, name)
    highs = np.array(_LARGE_HIGHS, dtype=np.int64)
    ids = np.full(highs.shape, _id_drawing(s, step, LARGEST))
    got = s.integers(ids, step, highs)
    assert (got <= highs - 1).all() and (got >= 0).all()
    small = highs < 2**53  # exact there: the top draw is high - 1
    np.testing.assert_array_equal(got[small], highs[small] - 1)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_categorical_of_all_zero_weights_stays_in_range(n):
    """Rows of zero weight (every ``cum <= u`` holds) give the last category, never ``n``."""
    s = Stream(0, "zero-weights")
    ids = np.arange(6)
    assert s.categorical(ids, 0, np.zeros(n)).tolist() == [n - 1] * 6
    per = np.ones((6, n))
    per[::2] = 0.0  # zero rows beside normal ones
    got = s.categorical(ids, 0, per)
    assert got[::2].tolist() == [n - 1] * 3 and ((got >= 0) & (got < n)).all()
