"""The shared bandit math against scalar references: keyed gamma/Beta draws, forms, k-means.

Each vectorised routine of :mod:`simlab.agents.bandit_math` is compared with a plain loop
over keys (or pairs, or points) written here from its definition, and the keyed Beta draws
are pinned by golden values, so a changed constant, acceptance rule, stream key or block
boundary fails a test instead of only shifting a statistical one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simlab.agents import bandit_math
from simlab.agents.bandit_math import (
    _Kept,
    _kmeans,
    _linear_scores,
    _pair_ids,
    _quadratic,
    _rewards,
    _sq_dist,
    beta_logit_draws,
    pair_features,
)
from simlab.batch import Feedback
from simlab.rng import Stream

PARENT = Stream(11, "test/bandit-math")


def reference_log_gamma(stream: Stream, side: str, key: int, step: int, shape: float, rounds):
    """Marsaglia-Tsang for one key, from the definition (last proposal if all rounds reject)."""
    a = shape + 1.0 if shape < 1.0 else shape
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = None
    for r in range(rounds):
        u = stream.child(f"{side}/round{r}").uniform([key], step, size=3)[0]
        x = math.sqrt(-2.0 * math.log(u[0])) * math.cos(2.0 * math.pi * u[1])
        base = 1.0 + c * x
        logv = 3.0 * math.log(max(base, 1e-3))
        v = base**3
        out = math.log(d) + logv
        if base > 0 and math.log(u[2]) < 0.5 * x * x + d - d * v + d * logv:
            break
    if shape < 1.0:
        out += math.log(stream.child(f"{side}/boost").uniform([key], step)[0]) / shape
    return out


SHAPES = [(0.05, 3.0), (0.3, 0.6), (1.0, 1.0), (2.5, 7.0), (40.0, 0.9)]


@pytest.mark.parametrize("rounds", [1, 2, 6])
@pytest.mark.parametrize(("alpha", "beta"), SHAPES)
def test_beta_logits_equal_a_per_key_reference(monkeypatch, rounds, alpha, beta):
    """``log G_a - log G_b`` per key as the scalar algorithm gives it, for any round count.

    One or two rounds leave ~5% / ~0.3% of 400 keys rejected in every round: those keep
    their last proposal (the fallback), which the reference reproduces too.
    """
    monkeypatch.setattr(bandit_math, "_GAMMA_ROUNDS", rounds)
    keys = np.arange(400, dtype=np.int64) * 7919 + 3
    got = beta_logit_draws(PARENT, keys, 5, alpha, beta)
    want = [
        reference_log_gamma(PARENT, "a", k, 5, alpha, rounds)
        - reference_log_gamma(PARENT, "b", k, 5, beta, rounds)
        for k in keys.tolist()
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_beta_logits_take_per_key_shapes_and_keep_the_key_shape():
    """``(B, C)`` keys with per-pair shapes: each entry equals its own scalar draw."""
    keys = _pair_ids(np.array([2, 9]), np.array([[4, 5, 6], [4, 7, 8]]))
    alpha = np.array([[0.5, 1.0, 3.0], [2.0, 0.2, 9.0]])
    beta = np.array([1.5, 0.7, 4.0])  # broadcast over rows
    got = beta_logit_draws(PARENT, keys, 1, alpha, beta)
    assert got.shape == (2, 3)
    for i, j in np.ndindex(2, 3):
        one = beta_logit_draws(PARENT, keys[i, j : j + 1], 1, alpha[i, j], beta[j])
        assert got[i, j] == one[0]
    assert got[0, 0] != got[1, 0]  # same item, another user: another key


def test_beta_logit_golden_values():
    """Pinned draws of stream version 1: a changed key, round or constant is a deliberate change."""
    keys = np.array([0, 1, 2**32 + 5, 10**12], np.int64)
    got = beta_logit_draws(Stream(0, "golden"), keys, 3, np.array([0.5, 1.0, 2.0, 30.0]), 2.0)
    np.testing.assert_allclose(got, GOLDEN, rtol=1e-12)


GOLDEN = [-3.325469266639666, 1.1657664199234938, 0.47782986221246637, 4.641194687916074]


def test_beta_logits_are_logits_of_beta_draws():
    """Shapes far apart give draws near 0 or 1 with finite logits (no precision lost at 0/1)."""
    n = 2000
    keys = np.arange(n)
    tiny = beta_logit_draws(PARENT, keys, 0, 0.01, 50.0)
    assert np.isfinite(tiny).all() and np.median(tiny) < -30  # X within rounding of 0
    big = beta_logit_draws(PARENT, keys, 0, 500.0, 500.0)
    x = 1.0 / (1.0 + np.exp(-big))
    assert abs(x.mean() - 0.5) < 0.003 and abs(x.std() - math.sqrt(0.25 / 1001)) < 0.002


# ----------------------------------------------------------------------------- small helpers


def test_rewards_one_at_the_clicked_slot():
    """``(B, K)``: 1.0 where clicked, 0 elsewhere; a row without a click is all 0."""
    fb = Feedback(
        step=0,
        user_ids=np.arange(4, dtype=np.int64),
        slates=np.arange(12, dtype=np.int64).reshape(4, 3),
        clicked_pos=np.array([0, -1, 2, 1], np.int64),
        engagement=np.zeros(4, np.float32),
    )
    r = _rewards(fb)
    assert r.dtype == np.float64
    np.testing.assert_array_equal(r, [[1, 0, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0]])


def test_pair_ids_are_user_times_two_to_the_32_plus_item():
    """Keys are exact int64 ``user * 2**32 + item`` for every pair, large users included."""
    users = np.array([0, 1, 2**20 + 3], np.int64)
    items = np.array([[5, 0], [5, 2**31], [7, 1]], np.int64)
    got = _pair_ids(users, items)
    pairs = zip(users.tolist(), items.tolist(), strict=True)
    want = [[u * 2**32 + i for i in row] for u, row in pairs]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def test_kept_rows_state_and_errors():
    """Rows of kept ids; an unseen id is named in the error; state round-trips as copies."""
    kept = _Kept("users")
    kept.keep(np.array([3, 8, 20]), feats=np.array([[1.0], [2.0], [3.0]]), w=np.array([4, 5, 6]))
    np.testing.assert_array_equal(kept.rows(np.array([20, 3, 8, 8])), [2, 0, 1, 1])
    with pytest.raises(RuntimeError, match=r"update\(\) got users \[1, 4, 5, 6, 7\] that"):
        kept.rows(np.array([8, 9, 7, 6, 5, 4, 1, 1, 3]))
    state = {**kept.state("u"), "other_x": np.zeros(2), "u2_y": np.ones(1)}
    assert sorted(state) == ["other_x", "u2_y", "u_feats", "u_ids", "u_w"]
    state["u_feats"][0, 0] = 99.0  # a copy: the kept array does not change
    assert kept.arrays["feats"][0, 0] == 1.0
    other = _Kept("users")
    other.load("u", state)
    np.testing.assert_array_equal(other.ids, [3, 8, 20])
    assert other.ids.dtype == np.int64
    assert sorted(other.arrays) == ["feats", "w"]
    np.testing.assert_array_equal(other.arrays["w"], [4, 5, 6])
    state["u_w"][0] = -1  # loaded as copies too
    assert other.arrays["w"][0] == 4


# ----------------------------------------------------------------------------- linear forms

RNG = np.random.default_rng(5)
D = 3


def explicit(u, v):
    """``(B, C, 2d + 1)`` pair features, shared ``(C, d)`` or per-user ``(B, C, d)`` items."""
    vv = v if v.ndim == 3 else np.broadcast_to(v, (u.shape[0],) + v.shape)
    return pair_features(u[:, None, :], vv)


def test_pair_features_layout_for_every_pair():
    """``x = [u * v, v, 1]`` element by element, broadcast over users and items."""
    u, v = RNG.normal(size=(4, D)), RNG.normal(size=(5, D))
    x = explicit(u, v)
    assert x.shape == (4, 5, 2 * D + 1)
    for b, c in np.ndindex(4, 5):
        np.testing.assert_array_equal(x[b, c], np.concatenate([u[b] * v[c], v[c], [1.0]]))


@pytest.mark.parametrize("per_user_theta", [False, True])
@pytest.mark.parametrize("per_user_items", [False, True])
def test_linear_scores_equal_theta_dot_x(per_user_theta, per_user_items):
    """``theta^T x_ui`` with shared or per-user theta and items."""
    b, c = 5, 4
    u = RNG.normal(size=(b, D))
    v = RNG.normal(size=(b, c, D) if per_user_items else (c, D))
    theta = RNG.normal(size=(b, 2 * D + 1) if per_user_theta else (2 * D + 1,))
    x = explicit(u, v)
    th = theta if per_user_theta else np.broadcast_to(theta, (b, 2 * D + 1))
    want = np.einsum("bcd,bd->bc", x, th)
    np.testing.assert_allclose(_linear_scores(theta, u, v), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("per_user_items", [False, True])
@pytest.mark.parametrize(
    ("users", "block", "piece"), [(1, 1024, 32), (7, 3, 2), (9, 4, 4), (5, 2, 3), (10, 3, 2)]
)
def test_quadratic_equals_x_m_x_for_every_block_split(
    monkeypatch, per_user_items, users, block, piece
):
    """``x^T m x`` for a general (asymmetric parts, nonzero corner) m, whatever the blocks."""
    monkeypatch.setattr(bandit_math, "_USER_BLOCK", block)
    monkeypatch.setattr(bandit_math, "_CACHE_BLOCK", piece)
    c = 6
    u = RNG.normal(size=(users, D))
    v = RNG.normal(size=(users, c, D) if per_user_items else (c, D))
    g = RNG.normal(size=(2 * D + 1, 2 * D + 1))
    m = g @ g.T + np.diag(np.arange(1.0, 2 * D + 2))  # symmetric, every block nonzero
    x = explicit(u, v)
    want = np.einsum("bci,ij,bcj->bc", x, m, x)
    np.testing.assert_allclose(_quadratic(m, u, v), want, rtol=1e-10, atol=1e-10)


def test_squared_distances_are_exact_and_never_negative():
    """``|x - c|^2`` per point and centre; a point on a centre gives exactly 0, not -eps."""
    x = RNG.normal(size=(6, 4)) * 1e3
    centres = np.concatenate([x[[2]], RNG.normal(size=(2, 4))])
    got = _sq_dist(x, centres)
    want = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)
    assert (got >= 0).all()


# ----------------------------------------------------------------------------- k-means


def reference_kmeans(x, k_wanted, iters, stream):
    """k-means++ seeding from the same keyed draws, then Lloyd steps, by loops."""
    n = x.shape[0]
    k = min(k_wanted, n)
    centres = [x[int(stream.integers([0], 0, n)[0])]]
    for c in range(1, k):
        d2 = np.array([min(float(((p - q) ** 2).sum()) for q in centres) for p in x])
        if d2.sum() > 0:
            pick = int(stream.categorical([c], 0, d2[None, :])[0])
        else:
            pick = int(stream.integers([c], 0, n)[0])
        centres.append(x[pick])
    centres = np.array(centres, np.float64)
    for _ in range(iters):
        labels = [int(np.argmin([((p - q) ** 2).sum() for q in centres])) for p in x]
        new = centres.copy()
        for j in range(k):
            members = x[[i for i in range(n) if labels[i] == j]]
            if len(members):
                new[j] = members.mean(axis=0)
        centres = new
    return centres


@pytest.mark.parametrize(("n", "k", "iters"), [(40, 3, 0), (40, 3, 1), (40, 4, 20), (2, 5, 3)])
def test_kmeans_equals_a_reference_seeding_and_lloyd(n, k, iters):
    """Centres equal the loop reference: keyed k-means++ picks, then ``iters`` Lloyd steps."""
    x = np.concatenate([RNG.normal(m, 0.3, size=(n // 2, 2)) for m in (-2, 3)])
    got = _kmeans(x, k, iters, Stream(1, "test/kmeans"))
    assert got.shape == (min(k, x.shape[0]), 2)
    want = reference_kmeans(x, k, iters, Stream(1, "test/kmeans"))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("seed", "n", "k"), [(392, 8, 2), (1146, 4, 2), (1693, 4, 2), (1831, 7, 3)]
)
def test_kmeans_moves_a_centre_to_its_only_member(seed, n, k):
    """A cluster left with one point (not its centre) moves there: the mean of one point.

    Small sets with an outlier, where a Lloyd step leaves some cluster a single member.
    """
    rng = np.random.default_rng(seed)
    assert (int(rng.integers(4, 9)), int(rng.integers(2, 4))) == (n, k)
    x = rng.normal(0, 1, (n, 2))
    x[0] += rng.normal(0, 4, 2)  # an outlier
    got = _kmeans(x, k, 5, Stream(1, "test/kmeans"))
    want = reference_kmeans(x, k, 5, Stream(1, "test/kmeans"))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_kmeans_separates_clear_clusters_and_handles_coincident_points():
    """Two far groups give their means; identical points give identical centres (no NaN)."""
    x = np.concatenate([np.full((10, 2), -5.0), np.full((10, 2), 5.0)])
    x[:10] += np.linspace(-0.1, 0.1, 10)[:, None]
    got = _kmeans(x, 2, 10, Stream(0, "test/kmeans"))
    np.testing.assert_allclose(sorted(got[:, 0]), [-5.0, 5.0], atol=1e-12)
    same = _kmeans(np.ones((5, 3)), 3, 5, Stream(0, "test/kmeans"))
    np.testing.assert_array_equal(same, np.ones((3, 3)))


@pytest.mark.parametrize("block", [1, 5, 1 << 40])
@pytest.mark.parametrize("shared", [True, False])
def test_diag_ucb_scores_are_the_same_whatever_the_block(block, shared, monkeypatch):
    """Blocks smaller than one user's cells (a block of one user), a few users, or all."""
    from simlab.agents import bandit_math

    rng = np.random.default_rng(7)
    b, c, k, clusters = 9, 6, 2, 4
    sums_b, sums_d = rng.random((c + 3, clusters)), rng.random((c + 3, clusters)) * 3
    w, idx = rng.random((b, k)), rng.integers(0, clusters, (b, k))
    cands = np.broadcast_to(np.arange(c), (b, c)) if shared else rng.integers(0, c + 3, (b, c))
    args = (sums_b, sums_d, 1.0, 0.5, w, idx, cands, shared)
    rows = cands[:, :, None], idx[:, None, :]
    inv = 1.0 / (1.0 + sums_d[rows])
    want = np.einsum("bck,bk->bc", sums_b[rows] * inv, w)
    want += 0.5 * np.sqrt(np.einsum("bck,bk->bc", inv, w * w))
    monkeypatch.setattr(bandit_math, "_SCORE_BLOCK", block)
    np.testing.assert_allclose(bandit_math.diag_ucb_scores(*args), want, rtol=1e-12)
