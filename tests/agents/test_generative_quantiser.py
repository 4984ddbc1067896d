"""The generative agent's semantic IDs against loop references.

k-means++ seeding (the same keyed draws, consumed in the same order), Lloyd iterations with
re-seeding of empty clusters by the worst-fitted points, the residual levels with their
stream keys and warm start, residual encoding, mixed-radix ids and the disambiguation rank
are each written here as plain loops over points and centroids and compared with the
vectorised torch code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simlab.agents.generative_quantiser import (
    _kmeans_pp,
    _lloyd,
    _nearest,
    _radix_ids,
    dedup_tokens,
    encode_residual,
    fit_residual_kmeans,
)
from simlab.rng import numpy_generator

SEEDS = range(4)


def blobs(seed: int, n: int = 40, d: int = 3, spread: float = 4.0) -> np.ndarray:
    """``(n, d)`` float32 points around a few random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, d)) * spread
    return (centres[rng.integers(0, 4, size=n)] + rng.normal(size=(n, d))).astype(np.float32)


def ref_nearest(x, c) -> list[int]:
    """Index of the nearest row of ``c`` for each row of ``x`` (first on ties)."""
    return [int(np.argmin([float(((p - m) ** 2).sum()) for m in c])) for p in x]


def ref_kmeans_pp(x, k, gen) -> np.ndarray:
    """k-means++: first point uniform, then by squared distance (uniform if all are zero)."""
    n = len(x)
    chosen = [int(gen.integers(n))]
    for _ in range(k - 1):
        d2 = [min(float(((p - x[j]) ** 2).sum()) for j in chosen) for p in x]
        total = sum(d2)
        u = gen.random() * total
        if total > 0:  # the first point whose running sum exceeds u
            run, j = 0.0, n - 1
            for i, d in enumerate(d2):
                run += d
                if run > u:
                    j = i
                    break
        else:
            j = int(gen.integers(n))
        chosen.append(min(j, n - 1))
    return x[chosen]


def ref_lloyd(x, c, iterations) -> np.ndarray:
    """Means of the assigned points; an empty cluster takes the worst-fitted point(s)."""
    c = np.array(c, np.float64)
    k = len(c)
    for _ in range(iterations):
        a = ref_nearest(x, c)
        counts = [a.count(j) for j in range(k)]
        for j in range(k):
            if counts[j]:
                c[j] = np.mean([x[i] for i in range(len(x)) if a[i] == j], axis=0)
        empty = [j for j in range(k) if counts[j] == 0]
        if empty:
            err = [float(((x[i] - c[a[i]]) ** 2).sum()) for i in range(len(x))]
            worst = sorted(range(len(x)), key=lambda i: -err[i])
            for j, i in zip(empty, worst, strict=False):
                c[j] = x[i]
    return c


@pytest.mark.parametrize("seed", SEEDS)
def test_nearest_equals_a_loop(seed):
    """Squared Euclidean nearest centroid of each point."""
    x = blobs(seed)
    c = blobs(seed + 10, n=6)
    got = _nearest(torch.from_numpy(x), torch.from_numpy(c))
    assert got.tolist() == ref_nearest(x.astype(np.float64), c.astype(np.float64))


@pytest.mark.parametrize("k", [1, 2, 5, 12])
@pytest.mark.parametrize("seed", SEEDS)
def test_kmeans_pp_equals_a_loop_with_the_same_draws(seed, k):
    """Same rows chosen from two generators with the same key."""
    x = blobs(seed, n=30)
    got = _kmeans_pp(torch.from_numpy(x), k, numpy_generator(seed, "test/kmeans"))
    want = ref_kmeans_pp(x, k, numpy_generator(seed, "test/kmeans"))
    assert got.shape == (k, 3)
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("seed", SEEDS)
def test_kmeans_pp_draws_uniformly_once_all_points_are_centres(seed):
    """Two distinct points, five centres: after both, each pick is a uniform draw."""
    x = np.array([[1.0, 2.0]] * 3 + [[-4.0, 0.5]] * 3, np.float32)
    got = _kmeans_pp(torch.from_numpy(x), 5, numpy_generator(seed, "test/kmeans"))
    want = ref_kmeans_pp(x, 5, numpy_generator(seed, "test/kmeans"))
    np.testing.assert_array_equal(got.numpy(), want)
    assert {tuple(r) for r in got.tolist()} == {(1.0, 2.0), (-4.0, 0.5)}


class Scripted:
    """A generator stand-in whose draws are given: ``integers`` and ``random`` in order."""

    def __init__(self, ints: list[int], reals: list[float]) -> None:
        self.ints, self.reals = list(ints), list(reals)

    def integers(self, n: int) -> int:
        """The next scripted integer (below ``n``)."""
        value = self.ints.pop(0)
        assert 0 <= value < n
        return value

    def random(self) -> float:
        """The next scripted real in [0, 1)."""
        return self.reals.pop(0)


@pytest.mark.parametrize(
    ("real", "second"),
    [(0.0, 1), (1 / 14, 2), (5 / 14, 3), (0.5, 3), (np.nextafter(1.0, 0.0), 3)],
)
def test_kmeans_pp_draw_on_a_boundary_takes_the_next_point(real, second):
    """Points 0, 1, 2, 3 from centre 0: weights 0, 1, 4, 9 (sums 0, 1, 5, 14).

    ``u = real * 14`` picks the first point whose running sum exceeds ``u``: a draw on a
    boundary goes to the next point, and a point at distance 0 (the centre) is never drawn.
    """
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    got = _kmeans_pp(x, 2, Scripted([0], [real]))
    assert got[:, 0].tolist() == [0.0, float(second)]


@pytest.mark.parametrize("real", [0.0, 0.5, np.nextafter(1.0, 0.0)])
@pytest.mark.parametrize(("n", "first"), [(2, 0), (4, 0), (4, 2), (7, 5)])
def test_kmeans_pp_takes_the_only_point_at_a_positive_distance(n, first, real):
    """All points but the last equal the first centre: the next centre is the last point.

    Whatever the draw, and by a weighted draw (no integer is drawn), not a uniform one.
    """
    x = torch.tensor([[1.5, -2.0]] * (n - 1) + [[4.0, 0.25]])
    got = _kmeans_pp(x, 2, Scripted([first], [real]))
    assert got.tolist() == [[1.5, -2.0], [4.0, 0.25]]


@pytest.mark.parametrize("iterations", [1, 3, 8])
@pytest.mark.parametrize("seed", SEEDS)
def test_lloyd_equals_a_loop(seed, iterations):
    """Cluster means from a k-means++ start, iteration by iteration."""
    x = blobs(seed)
    c0 = ref_kmeans_pp(x, 5, numpy_generator(seed, "test/kmeans"))
    got = _lloyd(torch.from_numpy(x), torch.from_numpy(c0), iterations)
    np.testing.assert_allclose(got.numpy(), ref_lloyd(x, c0, iterations), rtol=1e-5, atol=1e-5)
    assert not np.allclose(got.numpy(), c0)


@pytest.mark.parametrize("iterations", [1, 2])
@pytest.mark.parametrize("seed", SEEDS)
def test_lloyd_reseeds_empty_clusters_with_the_worst_fitted_points(seed, iterations):
    """Two far-away starting centroids get no point: they move onto the worst-fitted ones."""
    x = blobs(seed, n=25, spread=2.0)
    c0 = np.concatenate([x[:3], np.full((2, 3), 100.0, np.float32)])
    got = _lloyd(torch.from_numpy(x), torch.from_numpy(c0), iterations)
    want = ref_lloyd(x, c0, iterations)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    assert (np.abs(got.numpy()) < 50).all()  # every centroid left the far corner


@pytest.mark.parametrize("iterations", [1, 3])
@pytest.mark.parametrize("seed", SEEDS)
def test_lloyd_moves_a_one_point_cluster_onto_its_point(seed, iterations):
    """Warm-started centroids near three far outliers: each one's cluster is that point alone.

    The mean of one point is the point: the centroid moves onto it (it is not kept).
    """
    rng = np.random.default_rng(seed)
    x = blobs(seed, n=30, spread=2.0)
    outliers = (rng.normal(size=(3, 3)) * 40 + 60).astype(np.float32)
    x = np.concatenate([x, outliers])
    c0 = np.concatenate([x[:4], outliers + rng.normal(size=(3, 3)).astype(np.float32)])
    got = _lloyd(torch.from_numpy(x), torch.from_numpy(c0), iterations).numpy()
    np.testing.assert_allclose(got, ref_lloyd(x, c0, iterations), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[4:], outliers)


def test_lloyd_with_more_centroids_than_points_reseeds_as_many_as_there_are_points():
    """Two points, four centroids: the points fill the empty clusters; the rest keep theirs."""
    x = np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)
    c0 = np.array([[0.5, 0.0], [9.0, 9.0], [8.0, 8.0], [7.0, 7.0]], np.float32)
    got = _lloyd(torch.from_numpy(x), torch.from_numpy(c0), 1).numpy()
    # by hand: both points go to centroid 0 (mean (1.5, 2)), 1-3 are empty; errors 6.25 both
    # (a tie: topk's order), so centroids 1 and 2 take the two points and 3 keeps its place
    np.testing.assert_array_equal(got[0], [1.5, 2.0])
    assert {tuple(got[1]), tuple(got[2])} == {(0.0, 0.0), (3.0, 4.0)}
    np.testing.assert_array_equal(got[3], [7.0, 7.0])


@pytest.mark.parametrize(("levels", "size"), [(1, 4), (2, 3), (3, 5)])
@pytest.mark.parametrize("seed", SEEDS)
def test_fit_residual_kmeans_equals_levels_of_the_loop_on_residuals(seed, levels, size):
    """Level ``l`` seeds from ``agent/generative/kmeans/<l>`` at ``step`` on the residuals."""
    x = blobs(seed)
    step = 2 + seed
    got = fit_residual_kmeans(x, levels, size, iterations=4, seed=seed, step=step)
    assert got.dtype == np.float32 and got.shape == (levels, size, 3)
    resid = x.astype(np.float64)
    for level in range(levels):
        gen = numpy_generator(seed, f"agent/generative/kmeans/{level}", step)
        c = ref_lloyd(resid, ref_kmeans_pp(resid.astype(np.float32), size, gen), 4)
        np.testing.assert_allclose(got[level], c, rtol=1e-4, atol=1e-4)
        resid = resid - c[ref_nearest(resid, c)]


@pytest.mark.parametrize("seed", SEEDS)
def test_fit_residual_kmeans_warm_starts_from_the_given_codebooks(seed):
    """With ``init`` each level starts Lloyd from its codebook (no draws)."""
    x = blobs(seed)
    init = np.stack([blobs(seed + 5, n=4), 0.1 * blobs(seed + 6, n=4)])
    got = fit_residual_kmeans(x, 2, 4, iterations=2, seed=seed, step=0, init=init)
    resid = x.astype(np.float64)
    for level in range(2):
        c = ref_lloyd(resid, init[level], 2)
        np.testing.assert_allclose(got[level], c, rtol=1e-4, atol=1e-4)
        resid = resid - c[ref_nearest(resid, c)]
    other = fit_residual_kmeans(x, 2, 4, iterations=2, seed=seed, step=1, init=init)
    np.testing.assert_array_equal(got, other)  # the key does not matter when warm


@pytest.mark.parametrize("seed", SEEDS)
def test_encode_residual_equals_a_loop(seed):
    """Level by level: the nearest centroid of what the previous levels left."""
    x = blobs(seed)
    books = np.stack([blobs(seed + 1, n=5), 0.3 * blobs(seed + 2, n=5), 0.1 * blobs(3, n=5)])
    got = encode_residual(x, books)
    assert got.dtype == np.int64 and got.shape == (40, 3)
    resid = x.astype(np.float64)
    for level in range(3):
        a = ref_nearest(resid, books[level])
        assert got[:, level].tolist() == a
        resid = resid - books[level][a]


def test_radix_ids_are_mixed_radix_numbers():
    """``id = ((c_0 * r_1 + c_1) * r_2 + c_2)``: distinct codes, distinct ids."""
    sizes = [3, 4, 2]
    codes = np.array([[a, b, c] for a in range(3) for b in range(4) for c in range(2)])
    got = _radix_ids(codes, sizes)
    assert got.tolist() == [(a * 4 + b) * 2 + c for a, b, c in codes.tolist()]
    assert got.tolist() == list(range(24))


@pytest.mark.parametrize("seed", SEEDS)
def test_dedup_tokens_rank_items_by_id_within_equal_codes(seed):
    """The token of an item is how many items with the same codes have a smaller id."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, size=(60, 2))
    ids = rng.permutation(1000)[:60]
    got = dedup_tokens(codes, ids)
    assert got.dtype == np.int64
    want = [
        sum(1 for j in range(60) if (codes[j] == codes[i]).all() and ids[j] < ids[i])
        for i in range(60)
    ]
    assert got.tolist() == want
    assert max(want) >= 2
