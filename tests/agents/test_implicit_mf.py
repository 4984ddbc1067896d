"""Implicit MF (Chaney's replication): its defaults, starts, sparse path and first steps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_chaney_agents import CTX, _catalog, _log, _obs

from simlab.agents import implicit_mf
from simlab.agents.implicit_mf import ImplicitMFAgent, als_implicit
from simlab.batch import Feedback, Log
from simlab.rng import numpy_generator


def test_defaults_are_lenskits():
    """Iterations, regularisation, confidence weight and start scale are LensKit's.

    The factors default to the world's dimension; new items rank last; refits start cold.
    """
    p = ImplicitMFAgent.Params()
    assert (p.iterations, p.reg, p.weight, p.init_scale) == (20, 0.1, 40.0, 0.01)
    assert (p.factors, p.warm_start, p.warm_iterations, p.score_new_items) == (0, False, 3, False)
    assert ImplicitMFAgent(p, CTX).num_factors == CTX.dim


def _random_consumptions(rng, users: int, items: int, n: int):
    return rng.integers(0, users, n), rng.integers(0, items, n)


@pytest.mark.parametrize("case", range(12))
def test_sparse_confidence_gives_the_dense_fit(case, monkeypatch):
    """Large problems keep the confidences sparse: the same factors as the dense products.

    Repeated consumptions of a pair (r > 1), users and items without any, 1 to 3 iterations.
    """
    rng = np.random.default_rng(case)
    users, items, f = int(rng.integers(2, 30)), int(rng.integers(2, 40)), int(rng.integers(1, 6))
    u, i = _random_consumptions(rng, users, items, int(rng.integers(1, 120)))
    x0, y0 = rng.normal(size=(users, f)), rng.normal(size=(items, f))
    its, reg, weight = (
        int(rng.integers(1, 4)),
        float(rng.uniform(0.01, 1)),
        float(rng.uniform(0, 50)),
    )
    dense = als_implicit(u, i, x0, y0, its, reg, weight)
    monkeypatch.setattr(implicit_mf, "_DENSE_LIMIT", 0)
    sparse = als_implicit(u, i, x0, y0, its, reg, weight)
    for a, b in zip(dense, sparse, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)


def _als_by_hand(users, items, y0, iterations, reg, weight):
    """The module docs' ALS, one row's normal equations at a time.

    ``c_ui = 1 + weight * r_ui``, ``p_ui = [r_ui > 0]``: row ``u`` solves
    ``(sum_i c_ui y_i y_i^T + reg I) x_u = sum_i c_ui p_ui y_i`` over every item ``i``.
    """
    r = np.zeros((int(users.max()) + 1, y0.shape[0]))
    np.add.at(r, (users, items), 1.0)
    c, p = 1.0 + weight * r, (r > 0).astype(float)

    def half(other, c, p):
        f = other.shape[1]
        out = np.zeros((c.shape[0], f))
        for row in range(c.shape[0]):
            a = reg * np.eye(f)
            b = np.zeros(f)
            for col in range(c.shape[1]):
                a += c[row, col] * np.outer(other[col], other[col])
                b += c[row, col] * p[row, col] * other[col]
            out[row] = np.linalg.solve(a, b)
        return out

    y = y0
    for _ in range(iterations):
        x = half(y, c, p)
        y = half(x, c.T, p.T)
    return x, y


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("case", range(8))
def test_als_solves_the_documented_normal_equations_at_every_weight(case, dense, monkeypatch):
    """Each half iteration solves the docs' equations, dense or sparse, at any weight >= 0.

    Weight 0 included (every confidence 1: the consumed items still pull the factors
    towards preference 1), repeated consumptions (r > 1), users and items without any.
    """
    rng = np.random.default_rng(100 + case)
    users, items, f = int(rng.integers(2, 9)), int(rng.integers(2, 11)), int(rng.integers(1, 5))
    u, i = _random_consumptions(rng, users, items, int(rng.integers(1, 30)))
    u[0] = users - 1  # the last user row has consumptions: the by-hand table is users tall
    x0, y0 = rng.normal(size=(users, f)), rng.normal(size=(items, f))
    weight = [0.0, 0.0, 1.0, 40.0][case % 4] if case < 4 else float(rng.uniform(0, 5))
    iterations, reg = int(rng.integers(1, 3)), float(rng.uniform(0.05, 1))
    if not dense:
        monkeypatch.setattr(implicit_mf, "_DENSE_LIMIT", 0)
    x, y = als_implicit(u, i, x0, y0, iterations, reg, weight)
    xr, yr = _als_by_hand(u, i, y0, iterations, reg, weight)
    np.testing.assert_allclose(x, xr, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(y, yr, rtol=1e-8, atol=1e-10)
    assert np.abs(x).max() > 1e-3  # never the all-zero fit


def _fit_by_hand(agent, users, items, fits, start=None, iterations=None):
    """The fit the docs describe, by hand.

    ALS over the distinct users and items from a start of ``init_scale`` standard normals
    (or, warm, the last factors where there are some).
    """
    p = agent.params
    uid, urow = np.unique(users, return_inverse=True)
    iid, irow = np.unique(items, return_inverse=True)
    rng = numpy_generator(agent.seed, "agent/implicit-mf/init", fits)
    x0 = rng.standard_normal((uid.shape[0], agent.num_factors))  # never read by ALS
    y0 = rng.standard_normal((iid.shape[0], agent.num_factors)) * p.init_scale
    if start is not None:
        x_last, item_last = start
        x0[:] = np.where(np.abs(x_last[uid]).sum(axis=1, keepdims=True) > 0, x_last[uid], x0)
        for row, item in enumerate(iid):
            if item in item_last:
                y0[row] = item_last[item]
    x, y = als_implicit(urow, irow, x0, y0, iterations or p.iterations, p.reg, p.weight)
    return uid, iid, x, y


@pytest.mark.parametrize("scale", [0.01, 0.5, 3.0])
def test_cold_and_warm_refits_start_where_the_docs_say(scale):
    """A cold refit starts from ``init_scale`` normals, a warm one from the last factors.

    New users and items of a warm refit start at the start scale; it runs
    ``warm_iterations``.
    """
    ctx = dataclasses.replace(CTX, num_users=6, dim=3)
    feats = np.eye(8, 3)
    first = {0: [(0, 1), (1, 2), (2, 2), (3, 5)], 1: [(0, 2), (1, 1), (4, 0)]}
    second = {2: [(5, 7), (0, 6), (2, 1)]}
    for warm in (False, True):
        agent = ImplicitMFAgent(
            ImplicitMFAgent.Params(
                iterations=1, warm_iterations=2, init_scale=scale, warm_start=warm
            ),
            ctx,
        )
        agent.retrain(_log(first, feats))
        pairs = [p for s in sorted(first) for p in first[s]]
        users, items = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        uid, iid, x, y = _fit_by_hand(agent, users, items, 0)
        np.testing.assert_allclose(agent.user_factors[uid], x, rtol=1e-12)
        np.testing.assert_allclose(agent.item_factors, y, rtol=1e-12)
        last = (agent.user_factors.copy(), dict(zip(iid.tolist(), y, strict=True)))
        agent.retrain(_log(second, feats))
        pairs += second[2]
        users, items = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        if warm:
            uid, iid, x, y = _fit_by_hand(agent, users, items, 1, start=last, iterations=2)
        else:
            uid, iid, x, y = _fit_by_hand(agent, users, items, 1)
        np.testing.assert_allclose(agent.user_factors[uid], x, rtol=1e-12)
        np.testing.assert_allclose(agent.item_factors, y, rtol=1e-12)


@pytest.mark.parametrize("shared", [True, False])
def test_act_before_any_fit_ranks_every_candidate(shared):
    """Before its first fit each user's list is all of its candidates, in a random order.

    Every candidate is newer than the (empty) data.
    """
    cat = _catalog(3, 9, np.eye(9, 4), np.zeros(9, np.int64))
    obs = _obs(3, cat)
    if not shared:  # per-user candidates: each user without one item
        cands = np.stack([np.delete(cat.item_ids, u) for u in range(6)])
        obs = dataclasses.replace(obs, candidates=cands, shared_candidates=False, slate_size=8)
    agent = ImplicitMFAgent(ImplicitMFAgent.Params(), CTX)
    slates = agent.act(obs).item_ids
    np.testing.assert_array_equal(np.sort(slates, axis=1), np.sort(obs.candidates, axis=1))
    assert len({tuple(r) for r in slates.tolist()}) > 1  # random orders, not one list


@pytest.mark.parametrize(
    ("field", "bad", "good"),
    [("factors", -1, 0), ("iterations", 0, 1), ("reg", 0.0, 1e-9), ("weight", -1.0, 0.0),
     ("init_scale", 0.0, 1e-9), ("warm_iterations", 0, 1)],
)  # fmt: skip
def test_settings_outside_their_range_are_refused(field, bad, good):
    """Each setting's smallest allowed value is accepted and the next one below refused."""
    ImplicitMFAgent.Params(**{field: good})
    with pytest.raises(ValueError, match=field):
        ImplicitMFAgent.Params(**{field: bad})


def test_fitted_model_ranks_each_users_own_candidates():
    """After a fit, per-user candidates are ranked by that user's ``x_u . y_i``."""
    ctx = dataclasses.replace(CTX, num_users=6, dim=3)
    agent = ImplicitMFAgent(ImplicitMFAgent.Params(factors=3), ctx)
    agent.retrain(_log({0: [(u, u) for u in range(6)], 1: [(u, (u + 1) % 6) for u in range(6)]},
                       np.eye(6, 3)))  # fmt: skip
    cat = _catalog(2, 6, np.eye(6, 4), np.zeros(6, np.int64))
    cands = np.stack([np.roll(np.arange(6), -u)[:4] for u in range(6)])
    obs = dataclasses.replace(_obs(2, cat), candidates=cands, shared_candidates=False, slate_size=4)
    got = agent.act(obs).item_ids
    for u in range(6):
        assert sorted(got[u].tolist()) == sorted(cands[u].tolist())
        s = agent._item_vectors(got[u]) @ agent.user_factors[u]
        assert (np.diff(s) <= 1e-12).all(), (u, got[u], s)


@pytest.mark.parametrize(
    ("num_users", "num_items", "dense"),
    [
        (3, 5, True),
        (2000, 2000, True),
        (2000, 2001, False),
        (4000, 1000, True),
        (1000, 4001, False),
        (41, 97561, False),  # 4,000,001 cells: the first size past the limit
        (97561, 41, False),
    ],
)
def test_confidence_is_dense_up_to_32_mb_and_sparse_beyond(
    num_users, num_items, dense, monkeypatch
):
    """The dense confidence matrix holds at most 4M float64 cells (32 MB), else sparse.

    The fit is the same either way (tested above); the memory is not.
    """
    seen = []

    def spy(other, conf, pref, reg):
        seen.append((isinstance(conf, np.ndarray), conf.shape))
        assert isinstance(pref, np.ndarray) is isinstance(conf, np.ndarray)
        return np.zeros((conf.shape[0], other.shape[1]))

    monkeypatch.setattr(implicit_mf, "_half_step", spy)
    users, items = np.array([0, num_users - 1]), np.array([num_items - 1, 0])
    x0, y0 = np.zeros((num_users, 1)), np.zeros((num_items, 1))
    als_implicit(users, items, x0, y0, iterations=1, reg=0.1, weight=40.0)
    assert seen == [(dense, (num_users, num_items)), (dense, (num_items, num_users))]


@pytest.mark.parametrize("factors", [0, 3])
def test_item_table_has_one_factor_row_per_item_before_and_after_fits(factors):
    """``item_ids`` and ``item_factors`` describe the same items, fresh or fitted or restored."""
    agent = ImplicitMFAgent(ImplicitMFAgent.Params(factors=factors), CTX)
    f = factors or CTX.dim
    for _ in range(2):
        assert agent.item_factors.shape == (agent.item_ids.shape[0], f)
        state = agent.state_dict()
        assert state["item_factors"].shape == (state["item_ids"].shape[0], f)
        agent.retrain(_log({0: [(0, 2), (1, 3), (1, 5)]}, np.eye(6, 4)))
    again = ImplicitMFAgent(ImplicitMFAgent.Params(factors=factors), CTX)
    again.load_state_dict(agent.state_dict())
    np.testing.assert_array_equal(again.item_ids, [2, 3, 5])
    np.testing.assert_array_equal(again.item_factors, agent.item_factors)


@pytest.mark.parametrize("seed", range(4))
def test_a_numerically_singular_row_takes_the_least_norm_solution(seed):
    """A row singular in floating point: the half step returns the least-norm solution.

    A confidence weight huge against ``reg`` makes a row's matrix singular in floating point
    (here, in this LAPACK, for some seeds): the half step still returns, each row the
    least-squares (least-norm) solution, the regular rows as the plain solve gives them (to
    rounding).
    """
    rng = numpy_generator(seed, "test/singular")
    other = rng.normal(size=(6, 4))
    conf = np.zeros((3, 6))
    conf[0, 1], conf[1, [2, 3]], conf[2, 4] = 1e20, 1e20, 40.0
    pref = conf > 0
    base = other.T @ other + 0.1 * np.eye(4)
    mats = np.einsum("ui,ij,ik->ujk", conf, other, other) + base
    rhs = conf @ other + pref.astype(float) @ other
    x = implicit_mf._half_step(other, conf, pref, 0.1)
    assert np.isfinite(x).all()
    for u in range(3):
        want = np.linalg.lstsq(mats[u], rhs[u], rcond=None)[0]
        np.testing.assert_allclose(x[u], want, rtol=1e-6, atol=1e-9 * np.abs(want).max())
    np.testing.assert_allclose(x[2], np.linalg.solve(mats[2], rhs[2]), rtol=1e-9)


def test_the_fallback_is_taken_when_the_batched_solve_fails(monkeypatch):
    """Whatever the LAPACK: a failing solve gives the pseudo-inverse solution of every row."""
    rng = numpy_generator(0, "test/fallback")
    other, conf = rng.normal(size=(5, 3)), rng.integers(0, 3, size=(4, 5)) * 40.0
    want = implicit_mf._half_step(other, conf, conf > 0, 0.1)

    def failing(*_args, **_kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(np.linalg, "solve", failing)
    got = implicit_mf._half_step(other, conf, conf > 0, 0.1)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("warm_start", [True, False])
def test_a_retrain_on_no_consumption_leaves_the_next_fit_unchanged(warm_start):
    """A retrain before any consumption is not a fit.

    The next fit (its start draw, and whether it is warm) is the fit of an agent that never
    saw the empty log.
    """
    feats = np.eye(6, 4)
    real = _log({0: [(0, 2), (1, 3), (2, 5), (3, 2)], 1: [(4, 1), (5, 0)]}, feats)
    fresh = ImplicitMFAgent(ImplicitMFAgent.Params(warm_start=warm_start), CTX)
    fresh.retrain(real)
    agent = ImplicitMFAgent(ImplicitMFAgent.Params(warm_start=warm_start), CTX)
    none = Feedback(0, np.zeros(0, np.int64), np.zeros((0, 1), np.int64), np.zeros(0, np.int64),
                    np.zeros(0, np.float32))  # fmt: skip
    agent.retrain(Log.of_steps([none], np.arange(6), feats.astype(np.float32)))
    assert agent.history.users.size == 0
    agent.retrain(real)
    np.testing.assert_array_equal(agent.user_factors, fresh.user_factors)
    np.testing.assert_array_equal(agent.item_factors, fresh.item_factors)
