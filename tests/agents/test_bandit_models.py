"""The bandits' learned state: serving protocol, dimension errors and edge-update checks.

Classes:

* the Ray serving protocol of LinUCB and linear TS: a learner fed only
  ``record_served`` (no ``act``) learns ``A`` and ``b`` exactly like the agent that acted, and
  a replica loaded with ``serving_state`` serves the same slates;
* mismatched dimensions (profiles vs item features, a catalog of another dimension than the
  fitted model): a ``ValueError`` quoting both dimensions;
* Diag-LinUCB's ``apply_update``: increments of different shapes are refused with every
  shape in the message; empty increments change nothing;
* a ridge ``reg`` lost in float64 rounding (``A`` singular): an error naming the agent and
  ``reg``; a ``reg`` that holds solves as before.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_bandits import make_agent, make_catalog, make_feedback, make_obs


def _world(d: int = 3, users: int = 8, items: int = 10, seed: int = 0):
    g = np.random.default_rng(seed)
    cat = make_catalog(np.arange(items) * 2 + 1, g.normal(size=(items, d)))
    return cat, g.normal(size=(users, d)).astype(np.float32), g


@pytest.mark.parametrize("name", ["linucb", "linear-ts"])
@pytest.mark.parametrize("d", [1, 3])
def test_a_learner_fed_the_serving_records_learns_like_the_agent(name, d):
    """record_served + update gives the A and b of act + update, bit for bit, step after step."""
    cat, feats, g = _world(d)
    agent, learner = make_agent(name, reg=1.7), make_agent(name, reg=1.7)
    for t in range(3):
        users = np.sort(g.choice(8, size=5, replace=False))
        obs = make_obs(cat, users, feats[users], t, slate_size=2)
        slates = agent.act(obs).item_ids
        learner.record_served(t, agent.serving_record(obs), cat)
        fb = make_feedback(t, users, slates, g.integers(-1, 2, size=5))
        agent.update(fb)
        learner.update(fb)
        assert learner._a.shape == (2 * d + 1, 2 * d + 1)
        np.testing.assert_array_equal(learner._a, agent._a)
        np.testing.assert_array_equal(learner._b, agent._b)
    # the learner's model, published, serves exactly as the agent
    replica = make_agent(name)
    replica.load_serving_state(learner.serving_state())
    obs = make_obs(cat, np.arange(8), feats, 3, slate_size=3)
    np.testing.assert_array_equal(replica.act(obs).item_ids, agent.act(obs).item_ids)


@pytest.mark.parametrize("name", ["linucb", "linear-ts"])
def test_the_first_serving_record_starts_from_the_prior(name):
    """Before any feedback the learner's model is A = reg I and b = 0 of dimension 2 d + 1."""
    cat, feats, _ = _world(d=2)
    learner = make_agent(name, reg=0.4)
    obs = make_obs(cat, np.arange(8), feats, 0)
    learner.record_served(0, {"user_ids": obs.user_ids, "features": obs.user_features}, cat)
    np.testing.assert_array_equal(learner._a, 0.4 * np.eye(5))
    np.testing.assert_array_equal(learner._b, np.zeros(5))
    empty = make_agent(name).serving_state()
    assert empty["A"].shape == (0, 0) and empty["b"].shape == (0,)


@pytest.mark.parametrize("name", ["linucb", "linear-ts"])
@pytest.mark.parametrize(("d_items", "d_users"), [(3, 2), (2, 5), (4, 8)])
def test_profiles_of_another_dimension_are_refused_naming_both(name, d_items, d_users):
    """User profiles must have the item features' dimension d; the message gives both."""
    g = np.random.default_rng(1)
    cat = make_catalog(np.arange(6), g.normal(size=(6, d_items)))
    obs = make_obs(cat, np.arange(7), g.normal(size=(7, d_users)), 0)
    msg = f"needs user features of the item dimension d={d_items}, "
    msg += f"actual user feature dimension: {d_users}"
    with pytest.raises(ValueError, match=re.escape(msg)):
        make_agent(name).act(obs)


@pytest.mark.parametrize("name", ["linucb", "linear-ts"])
@pytest.mark.parametrize(("d_fit", "d_new"), [(3, 2), (2, 5), (1, 4)])
def test_a_catalog_of_another_dimension_than_the_fit_is_refused(name, d_fit, d_new):
    """After a fit on d features, a catalog of another d is refused quoting both."""
    g = np.random.default_rng(2)
    agent = make_agent(name)
    for d in (d_fit, d_new):
        cat = make_catalog(np.arange(6), g.normal(size=(6, d)))
        obs = make_obs(cat, np.arange(5), g.normal(size=(5, d)), 0)
        if d == d_fit:
            agent.act(obs)
            continue
        msg = f"was fitted on item features of dimension {d_fit}, actual: {d_new}"
        with pytest.raises(ValueError, match=re.escape(msg)):
            agent.act(obs)


@pytest.mark.parametrize("name", ["linucb", "linear-ts"])
@pytest.mark.parametrize("d", [127, 128, 300])
def test_a_catalog_of_the_fitted_dimension_is_served_at_any_size(name, d):
    """A catalog of the fitted d is served step after step, also past Python's small ints.

    The dimension check compares values: A of size 2 d + 1 > 256 (no longer one of Python's
    cached small ints) still matches a catalog of the same d.
    """
    g = np.random.default_rng(d)
    agent = make_agent(name)
    cat = make_catalog(np.arange(6), g.normal(size=(6, d)))
    for t in range(2):
        obs = make_obs(cat, np.arange(3), g.normal(size=(3, d)), t)
        assert agent.act(obs).item_ids.shape == (3, 1)
    assert agent._a.shape == (2 * d + 1, 2 * d + 1)


def test_diag_linucb_increments_name_items_and_clusters_as_integers():
    """``partial_update`` (what shards send the learner) gives integer ids.

    The slates' items and the users' clusters of every edge, once each, with the summed
    weights.
    """
    cat, feats, g = _world(d=2, users=12)
    agent = make_agent("diag-linucb", num_clusters=3, clusters_per_user=2)
    slates = agent.act(make_obs(cat, np.arange(12), feats, 0, slate_size=2)).item_ids
    fb = make_feedback(0, np.arange(12), slates, g.integers(-1, 2, size=12))
    inc = agent.partial_update(fb)
    assert inc["item_ids"].dtype.kind == "i" and inc["clusters"].dtype.kind == "i"
    rows = agent._users.rows(fb.user_ids)
    clusters = agent._users.arrays["clusters"][rows]
    weights = agent._users.arrays["weights"][rows]
    expected = {}
    for u in range(12):
        for item in slates[u]:
            for c, w in zip(clusters[u], weights[u], strict=True):
                expected[(int(item), int(c))] = expected.get((int(item), int(c)), 0.0) + w * w
    keys = zip(inc["item_ids"].tolist(), inc["clusters"].tolist(), strict=True)
    got = dict(zip(keys, inc["d"], strict=True))
    assert got.keys() == expected.keys()
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), rtol=1e-12)


def _fitted_diag():
    cat, feats, g = _world(d=2, users=12)
    agent = make_agent("diag-linucb", num_clusters=3, clusters_per_user=2)
    slates = agent.act(make_obs(cat, np.arange(12), feats, 0, slate_size=2)).item_ids
    agent.update(make_feedback(0, np.arange(12), slates, g.integers(-1, 2, size=12)))
    return agent


FIELDS = ("item_ids", "clusters", "d", "b")


@pytest.mark.parametrize(
    "which", [(k,) for k in FIELDS] + [("d", "b"), ("item_ids", "clusters"), ("clusters", "d")]
)
@pytest.mark.parametrize("size", [2, 4])
def test_diag_linucb_refuses_increments_of_different_shapes(which, size):
    """One or two fields longer or shorter than the others: a ValueError listing every shape.

    Two fields of one shape against two of another: every pair is compared, not just some.
    """
    agent = _fitted_diag()
    before = {k: agent.state_dict()[k].copy() for k in ("d", "b")}
    good = {"item_ids": [1, 3, 5], "clusters": [0, 1, 2], "d": [0.5, 0.2, 1.0], "b": [0, 1, 0]}
    partial = {k: (v * 2)[:size] if k in which else v for k, v in good.items()}
    shapes = [(size,) if k in which else (3,) for k in FIELDS]
    msg = f"Expects `item_ids`, `clusters`, `d` and `b` of one shape, actual shapes: {shapes}"
    with pytest.raises(ValueError, match=re.escape(msg)):
        agent.apply_update(partial)
    for key, value in before.items():  # nothing added
        np.testing.assert_array_equal(agent.state_dict()[key], value)
    agent.apply_update(good)  # the same increments, of one shape: added edge by edge
    edges = ([1, 3, 5], [0, 1, 2])
    np.testing.assert_array_equal(agent.state_dict()["d"][edges], before["d"][edges] + good["d"])
    np.testing.assert_array_equal(agent.state_dict()["b"][edges], before["b"][edges] + good["b"])


def test_diag_linucb_edge_tables_grow_geometrically_and_keep_their_sums():
    """New item ids one after another: the tables are re-allocated O(log n) times, not per id.

    Every increment stays where it was added, across the re-allocations.
    """
    agent = _fitted_diag()
    before = {k: agent.state_dict()[k].copy() for k in ("d", "b")}
    ids = np.arange(1100, 9000, 37)
    capacities = set()
    for n, i in enumerate(ids):
        agent.apply_update({"item_ids": [i], "clusters": [n % 3], "d": [n + 1.0], "b": [-n]})
        capacities.add(agent.state_dict()["d"].shape[0])
    assert min(capacities) > ids[0] and max(capacities) > ids[-1]
    assert len(capacities) <= int(np.ceil(np.log2(ids[-1] / ids[0]))) + 1
    state = agent.state_dict()
    np.testing.assert_array_equal(
        state["d"][ids, np.arange(ids.size) % 3], np.arange(ids.size) + 1.0
    )
    np.testing.assert_array_equal(state["b"][ids, np.arange(ids.size) % 3], -np.arange(ids.size))
    for key, value in before.items():  # the earlier edges are kept
        np.testing.assert_array_equal(state[key][: value.shape[0]], value)


def test_diag_linucb_empty_increments_change_nothing():
    """An empty partial update (a shard without users) is accepted and adds nothing."""
    agent = _fitted_diag()
    before = agent.state_dict()
    agent.apply_update({k: np.zeros(0) for k in ("item_ids", "clusters", "d", "b")})
    for key in ("d", "b"):
        np.testing.assert_array_equal(agent.state_dict()[key], before[key])


@pytest.mark.parametrize(
    "name", ["epsilon-greedy", "ucb1", "thompson", "linucb", "linear-ts", "diag-linucb"]
)
@pytest.mark.parametrize("shared", [True, False])
def test_a_user_served_alone_gets_its_slate_among_others(name, shared):
    """Serving one user (a batch of 1) gives the slate that user gets among 7 others."""
    cat, feats, g = _world()
    agent = make_agent(name, 4, epsilon=0.5) if name == "epsilon-greedy" else make_agent(name, 4)
    for t in range(2):
        slates = agent.act(make_obs(cat, np.arange(8), feats, t, slate_size=2)).item_ids
        agent.update(make_feedback(t, np.arange(8), slates, g.integers(-1, 2, size=8)))
    cands = None if shared else np.stack([g.permutation(cat.item_ids)[:6] for _ in range(8)])
    every = agent.act(make_obs(cat, np.arange(8), feats, 2, 3, cands)).item_ids
    for u in (0, 5):
        one = None if shared else cands[u : u + 1]
        alone = agent.act(make_obs(cat, [u], feats[u : u + 1], 2, 3, one)).item_ids
        np.testing.assert_array_equal(alone[0], every[u])


@pytest.mark.parametrize("name", ["linucb", "linear-ts", "diag-linucb"])
def test_a_fresh_agents_state_is_empty_and_loads(name):
    """Before the first act the state holds no model; a copy loaded from it acts the same."""
    agent, copy = make_agent(name, 2), make_agent(name, 2)
    state = agent.state_dict()
    for key in ("A", "b", "centroids", "d"):
        if key in state:
            assert state[key].size == 0, key
    copy.load_state_dict(state)
    cat, feats, _ = _world()
    obs = make_obs(cat, np.arange(8), feats, 0, slate_size=3)
    np.testing.assert_array_equal(copy.act(obs).item_ids, agent.act(obs).item_ids)


def _one_direction(name: str, reg: float):
    """The agent after one impression (a click): ``A = reg I + x x^T``, ``x x^T`` of rank 1."""
    cat, feats, _ = _world(d=3, users=1, items=1)
    agent = make_agent(name, reg=reg)
    obs = make_obs(cat, [0], feats, 0, slate_size=1)
    agent.update(make_feedback(0, [0], agent.act(obs).item_ids, [0]))
    return agent, make_obs(cat, [0], feats, 1, slate_size=1)


@pytest.mark.parametrize("name", ["linucb", "linear-ts"])
@pytest.mark.parametrize("reg", [1e-300, 1e-200, 1e-100, 1e-40, 1e-20])
def test_a_ridge_lost_in_float64_rounding_is_named_not_a_linalg_error(name, reg):
    """A reg below the float64 rounding of ``x x^T`` (rank 1) is named, not a LinAlgError.

    ``A = reg I + x x^T`` is then singular in float64, and numpy's LinAlgError stopped the run
    mid-way.
    """
    from simlab.errors import ScenarioError

    agent, obs = _one_direction(name, reg)
    with pytest.raises(ScenarioError) as info:
        agent.act(obs)
    text = str(info.value)
    assert text.startswith(f"agents: {name}'s ridge matrix A = reg*I + sum x x^T is not ")
    assert f"reg={reg!r} is lost in the rounding" in text and "raise reg" in text
    largest = float(np.abs(np.diag(agent._a)).max())
    assert f"largest diagonal entry ({largest:.3g})" in text


@pytest.mark.parametrize("name", ["linucb", "linear-ts"])
@pytest.mark.parametrize("reg", [1e-8, 1.0, 1e6])
def test_a_ridge_that_holds_solves_as_before(name, reg):
    """The same rank-1 data with a reg float64 keeps: theta solves A theta = b, S S^T = A^-1."""
    agent, obs = _one_direction(name, reg)
    agent.act(obs)
    theta, a_inv, root = agent.solve()
    np.testing.assert_allclose(theta, np.linalg.solve(agent._a, agent._b), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(a_inv @ agent._a, np.eye(agent._a.shape[0]), atol=1e-6)
    np.testing.assert_allclose(root @ root.T, a_inv, rtol=1e-6, atol=1e-12)
