"""Sums over users that are the same bits however the users are split into shards.

A sharded metric's row used to depend, in its last bits, on how many user shards summed it
(Ray with 2 or 3 shards against one local process: up to 3.6e-13 relative).
:func:`simlab.metrics.sums.shard_sum` rounds each value to a unit that makes every partial
sum exact; these tests split random values and random worlds at random places.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simlab.metrics.sums import shard_sum, unit_exponent


def _splits(n: int, rng, pieces: int) -> list[slice]:
    cuts = np.sort(rng.integers(0, n + 1, size=pieces - 1))
    edges = [0, *cuts.tolist(), n]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


# name -> (values of one population, bound)
def _values(kind: str, n: int, rng) -> tuple[np.ndarray, float]:
    if kind == "unit":
        return rng.uniform(0, 1, n), 2.0
    if kind == "signed":
        return rng.uniform(-1, 1, n), 2.0
    if kind == "tiny-and-large":
        return rng.uniform(-1, 1, n) * 10.0 ** rng.integers(-12, 1, n), 2.0
    if kind == "float32":
        return rng.standard_normal(n).astype(np.float32).clip(-3, 3), 4.0
    if kind == "kl":
        return rng.exponential(0.5, n).clip(0, 4.6), 5.7
    raise AssertionError(kind)


KINDS = ["unit", "signed", "tiny-and-large", "float32", "kl"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 2, 7, 100, 1000, 20_000])
@pytest.mark.parametrize("seed", range(3))
def test_every_split_sums_to_the_same_bits(kind, n, seed):
    """Any number of pieces at any places, added in any order: one value."""
    rng = np.random.default_rng(seed * 1000 + n)
    values, bound = _values(kind, n, rng)
    whole = shard_sum(values, bound, n)
    for pieces in (2, 3, 5, 17):
        parts = [shard_sum(values[s], bound, n) for s in _splits(n, rng, pieces)]
        assert sum(parts) == whole
        assert sum(reversed(parts)) == whole
        assert math.fsum(parts) == whole
    # close to the exact sum: at most half a unit per value
    half_unit = 2.0 ** -(unit_exponent(bound, n) + 1)
    assert abs(whole - math.fsum(values.astype(np.float64))) <= n * half_unit


@pytest.mark.parametrize("axis_n", [1, 3, 32])
def test_columns_sum_to_the_same_bits_too(axis_n):
    """``axis=0``: each column is a sum of its own (the interest drift vector)."""
    rng = np.random.default_rng(axis_n)
    values = rng.uniform(-2, 2, (500, axis_n))
    whole = shard_sum(values, 4.0, 500, axis=0)
    parts = [shard_sum(values[s], 4.0, 500, axis=0) for s in _splits(500, rng, 4)]
    np.testing.assert_array_equal(sum(parts), whole)
    np.testing.assert_allclose(whole, values.sum(axis=0), rtol=0, atol=500 * 2.0**-40)


def test_empty_and_nan():
    """No value sums to 0; a NaN makes the sum NaN, as a plain sum does."""
    assert shard_sum(np.zeros(0), 1.0, 10) == 0.0
    assert math.isnan(shard_sum(np.array([1.0, np.nan]), 1.0, 10))


@pytest.mark.parametrize(("bound", "count", "q"), [(1, 1, 52), (2, 1, 51), (4, 10_000, 36),
                                                  (1, 2**20, 32), (3, 5, 48), (0.5, 1, 53),
                                                  (0.25, 4, 52), (0, 5, 549)])  # fmt: skip
def test_the_unit_by_hand(bound, count, q):
    """``q = 52 - ceil(log2(bound * count))``: the total stays below 2**53 units."""
    assert unit_exponent(bound, count) == q


def test_a_zero_bound_sums_zeros_to_zero():
    """All values 0 (bound 0): the unit stays a normal float, the sum is 0 (not NaN)."""
    assert shard_sum(np.zeros(5), 0.0, 5) == 0.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.longdouble, np.int64, np.int32])
@pytest.mark.parametrize("axis", [None, 0])
def test_overwrite_writes_only_into_float64_scratch(dtype, axis):
    """``overwrite`` may reuse a float64 array; any other input is left as it was."""
    rng = np.random.default_rng(3)
    values = rng.uniform(-1, 1, (200, 3)) * (1 if np.dtype(dtype).kind == "f" else 1000)
    values = values.astype(dtype)
    keep = values.copy()
    plain = shard_sum(values, 1000.0, 200, axis=axis)
    scratch = values.copy()
    assert np.array_equal(shard_sum(scratch, 1000.0, 200, axis=axis, overwrite=True), plain)
    if dtype != np.float64:
        np.testing.assert_array_equal(scratch, keep)  # not written into (another dtype)
