"""The shared latent space helpers: topic centres, row normalisation, work arrays.

Classes: the topic centres' exact formula (keyed draws at step 0, scaled to norm ~spread)
and their norm over many topics; unit rows for 1-D, 2-D and 3-D arrays with zero rows kept
zero; work arrays reused only for the same shape and dtype, and never pickled.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from simlab.environments.common import Scratch, normalize_rows, topic_centres
from simlab.rng import Stream


@pytest.mark.parametrize(("seed", "topics", "dim", "spread"), [(0, 4, 8, 1.0), (3, 7, 2, 2.5)])
def test_topic_centres_are_the_step_0_normal_draws_scaled_by_spread_over_root_dim(
    seed, topics, dim, spread
):
    """Centre k = spread / sqrt(dim) * the k-th keyed normal vector of "world/topics" at 0."""
    z = Stream(seed, "world/topics").normal(np.arange(topics), 0, size=dim)
    want = (z * (spread / np.sqrt(dim))).astype(np.float32)
    got = topic_centres(seed, topics, dim, spread)
    assert got.dtype == np.float32 and got.shape == (topics, dim)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("dim", "spread"), [(4, 1.0), (16, 0.5), (64, 3.0)])
def test_topic_centres_have_a_mean_squared_norm_of_spread_squared(dim, spread):
    """E ||c||^2 = spread^2 (2,000 topics: within 5 standard errors)."""
    c = topic_centres(11, 2000, dim, spread).astype(np.float64)
    sq = (c * c).sum(axis=1)
    se = sq.std(ddof=1) / np.sqrt(sq.shape[0])
    assert abs(sq.mean() - spread**2) < 5 * se


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (6, 1)])
def test_normalize_rows_gives_unit_last_axis_and_keeps_zero_rows_zero(shape):
    """Unit L2 norm along the last axis whatever the rank; an all-zero row stays zero."""
    rng = np.random.default_rng(len(shape))
    x = rng.normal(size=shape)
    x.reshape(-1, shape[-1])[0] = 0.0  # one zero row
    got = normalize_rows(x)
    norms = np.linalg.norm(got, axis=-1)
    flat = norms.reshape(-1)
    assert flat[0] == 0.0 and np.isfinite(got).all()
    np.testing.assert_allclose(flat[1:], 1.0, rtol=1e-12)
    # the direction is unchanged: got * |x| == x
    np.testing.assert_allclose(got * np.linalg.norm(x, axis=-1, keepdims=True), x, atol=1e-12)


def test_scratch_reuses_an_array_only_for_the_same_shape_and_dtype():
    """Same name, shape and dtype: the same array; any change: a new one of that kind."""
    s = Scratch()
    a = s.get("w", (3, 4))
    assert a.shape == (3, 4) and a.dtype == np.float64
    assert s.get("w", (3, 4)) is a
    b = s.get("w", (4, 3))
    assert b is not a and b.shape == (4, 3)
    c = s.get("w", (4, 3), np.float32)
    assert c is not b and c.dtype == np.float32
    assert s.get("w", (4, 3), np.float32) is c
    assert s.get("other", (4, 3), np.float32) is not c  # names are separate
    d = s.get("w", (2, 2), np.float32)  # a smaller shape: a new array too
    assert d is not c and d.shape == (2, 2)


def test_a_pickled_scratch_comes_back_empty():
    """Work arrays never travel: the copy allocates afresh."""
    s = Scratch()
    a = s.get("w", (2, 2))
    copy = pickle.loads(pickle.dumps(s))
    assert isinstance(copy, Scratch) and copy._arrays == {}
    assert copy.get("w", (2, 2)) is not a
