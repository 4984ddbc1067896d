"""The slate-ts agent's keys, keyed normals and tables against by-hand references (fast).

Classes:

* scenario keys: every documented default, the edge of every bound;
* keyed normals: exactly Box-Muller on the stream's uniform pairs, both outputs used;
* tables: users beyond ``num_users`` grow them (profiles kept while their size holds),
  the log is mapped to model indices with item features found by id (0 when missing);
* the start of a fit: new users' offsets keyed by user, known users' posterior means, ``A``
  and ``W`` drawn per retrain, the previous model reused where its shapes still fit; a
  model fitted before any profile was seen has no profile map;
* edges: a one-row log is fitted, a log without item features gives no feature map, an
  agent told no user count acts as one told it.
"""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError
from test_slate_ts_agent import D_ITEM, D_USER, F, _agent, _catalog, _log, _obs, _trained

from simlab.agents.slate_ts import SlateThompsonAgent, _normals
from simlab.batch import PAD, Log
from simlab.rng import Stream, numpy_generator

# ----------------------------------------------------------------------------- keys


def test_defaults():
    """Every key has its documented default."""
    assert SlateThompsonAgent.Params().model_dump() == {
        "policy": "in-slate",
        "factors": 16,
        "prior_std": 0.1,
        "bias_prior_std": 0.5,
        "user_prior_std": 0.1,
        "l2": 1.0,
        "learn_position_bias": True,
        "exploration": 0.5,
        "epochs": 20,
        "lr": 0.05,
        "batch_size": 4096,
        "init_scale": 0.1,
    }


BOUNDS = [
    ("factors", 1, 0),
    ("factors", 1024, 1025),
    ("prior_std", 1e-9, 0.0),
    ("prior_std", 100.0, 100.01),
    ("bias_prior_std", 1e-9, 0.0),
    ("bias_prior_std", 100.0, 100.01),
    ("user_prior_std", 1e-9, 0.0),
    ("user_prior_std", 100.0, 100.01),
    ("l2", 0.0, -0.01),
    ("exploration", 0.0, -0.01),
    ("exploration", 100.0, 100.01),
    ("epochs", 1, 0),
    ("epochs", 10_000, 10_001),
    ("lr", 1e-9, 0.0),
    ("lr", 10.0, 10.01),
    ("batch_size", 1, 0),
    ("init_scale", 1e-9, 0.0),
    ("policy", "greedy", "sampled"),
]


@pytest.mark.parametrize(("field", "ok", "bad"), BOUNDS, ids=[f"{f}={o}" for f, o, _ in BOUNDS])
def test_each_bound_accepts_its_edge_and_refuses_beyond(field, ok, bad):
    """The edge value is accepted; one step beyond is refused, naming the field."""
    assert getattr(SlateThompsonAgent.Params(**{field: ok}), field) == ok
    with pytest.raises(ValidationError, match=field):
        SlateThompsonAgent.Params(**{field: bad})


# ----------------------------------------------------------------------------- normals


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_normals_are_box_muller_on_the_streams_uniform_pairs(n):
    """Column j < m is r cos(2 pi u2) of pair j, column m + j its r sin; ``n`` kept."""
    stream, ids = Stream(3, "test/normals"), np.arange(50) * 7
    got = _normals(stream, ids, 4, n)
    assert got.shape == (50, n) and got.dtype == np.float32
    m = (n + 1) // 2
    u = stream.uniform(ids, 4, size=(m, 2)).astype(np.float32).astype(np.float64)
    want = np.zeros((50, 2 * m))
    for b in range(50):
        for j in range(m):
            r = math.sqrt(-2.0 * math.log(u[b, j, 0]))
            want[b, j] = r * math.cos(2 * math.pi * u[b, j, 1])
            want[b, m + j] = r * math.sin(2 * math.pi * u[b, j, 1])
    np.testing.assert_allclose(got, want[:, :n], rtol=1e-4, atol=1e-5)


def test_normals_are_standard_normal():
    """Over 40,000 values: mean 0, variance 1, and the cos and sin halves uncorrelated."""
    x = _normals(Stream(1, "test/normals"), np.arange(10_000), 0, 4).astype(np.float64)
    assert abs(x.mean()) < 5 / math.sqrt(x.size)
    assert abs(x.var() - 1) < 5 * math.sqrt(2 / x.size)
    assert abs(np.corrcoef(x[:, 0], x[:, 2])[0, 1]) < 5 / math.sqrt(x.shape[0])


# ----------------------------------------------------------------------------- tables


def test_user_tables_grow_for_ids_beyond_num_users_and_keep_profiles():
    """Ids past ``num_users`` are served and fitted; profiles survive growth of the id range."""
    agent, cat, users, profiles = _trained()
    assert agent._user_known.tolist() == [i in users for i in range(8)]
    assert agent._user_mean.shape == agent._user_std.shape == (8, F)
    np.testing.assert_array_equal(agent._profiles[users], profiles.astype(np.float32))
    agent.act(_obs(cat, [12], np.ones((1, D_USER)), 3, step=1))  # grow again: kept
    assert agent._profiles.shape == (13, D_USER) and agent._user_known.shape == (13,)
    np.testing.assert_array_equal(agent._profiles[users], profiles.astype(np.float32))
    np.testing.assert_array_equal(agent._profiles[12], 1.0)
    assert not agent._user_known[8:].any()
    agent.act(_obs(cat, [1], np.ones((1, 5)), 3, step=2))  # another profile size: reset
    assert agent._profiles.shape == (13, 5)
    np.testing.assert_array_equal(agent._profiles[users], 0.0)


def test_the_log_is_mapped_to_model_indices():
    """Users and items by rank among the log's ids; targets ``clicked_pos + 1``; features by id."""
    cat = _catalog()
    agent = _agent()
    agent.act(_obs(cat, [0, 3, 5], np.arange(6).reshape(3, 2), 2))
    log = _log(cat, np.array([5, 0, 3]), 20, 1, with_features=np.arange(9) % 2 == 0)
    data, user_ids, item_ids = agent._click_data(log)
    np.testing.assert_array_equal(user_ids, np.unique(log.user_ids))
    np.testing.assert_array_equal(item_ids, np.unique(log.slates))
    np.testing.assert_array_equal(user_ids[data.users], log.user_ids)
    np.testing.assert_array_equal(item_ids[data.slates], log.slates)
    np.testing.assert_array_equal(data.target, log.clicked_pos + 1)
    np.testing.assert_array_equal(data.user_features, agent._profiles[user_ids])
    for row, item in enumerate(item_ids):
        hit = np.flatnonzero(log.feature_ids == item)
        want = log.features[hit[0]] if hit.size else np.zeros(D_ITEM)
        np.testing.assert_array_equal(data.item_features[row], want)


# ----------------------------------------------------------------------------- fit start


def test_a_fit_starts_from_keyed_offsets_the_posterior_and_the_previous_model():
    """New users: ``init_scale`` times their keyed normals; known: their posterior mean."""
    agent, cat, users, profiles = _trained(6, init_scale=0.3)
    new = np.array([1, 9])
    agent.act(_obs(cat, new, np.ones((2, D_USER)), 3, step=1))
    log = _log(cat, np.concatenate([users, new]), 30, 2)
    data, user_ids, item_ids = agent._click_data(log)
    init = agent._init_params(data, user_ids, item_ids)
    known = np.isin(user_ids, users)
    keyed = 0.3 * Stream(6, "agent/slate-ts/init").normal(user_ids, 0, size=F)
    np.testing.assert_array_equal(init["P"][~known], keyed[~known])
    np.testing.assert_array_equal(init["P"][known], agent._user_mean[user_ids[known]])
    rows = np.searchsorted(agent._item_ids, item_ids)
    np.testing.assert_array_equal(init["delta"], agent._item_mean[rows, :F])
    np.testing.assert_array_equal(init["c"], agent._item_mean[rows, F])
    for key in ("A", "W", "b0", "pos"):  # shapes unchanged: the previous MAP
        np.testing.assert_array_equal(init[key], agent._model[key])


def test_a_first_fit_draws_a_and_w_and_zeroes_the_logits():
    """Without a previous model: ``A``, ``W`` ~ N(0, init_scale^2) from the retrain's generator."""
    cat = _catalog()
    agent = _agent(8, init_scale=0.2)
    agent.act(_obs(cat, [0, 1, 2], np.ones((3, D_USER)), 3))
    data, user_ids, item_ids = agent._click_data(_log(cat, np.arange(3), 12, 0))
    init = agent._init_params(data, user_ids, item_ids)
    gen = numpy_generator(8, "agent/slate-ts/init", 0)
    np.testing.assert_array_equal(init["A"], gen.normal(0, 0.2, (D_USER, F)))
    np.testing.assert_array_equal(init["W"], gen.normal(0, 0.2, (D_ITEM, F)))
    np.testing.assert_array_equal(init["b0"], np.zeros(1))
    np.testing.assert_array_equal(init["pos"], np.zeros(3))
    np.testing.assert_array_equal(init["delta"], 0.0)  # unseen items: the prior mean


def test_a_model_fitted_before_any_profile_has_no_profile_map():
    """Retrained before any act (no profiles recorded): the scores ignore later profiles."""
    cat = _catalog()
    agent = _agent(9)
    agent.retrain(_log(cat, np.arange(4), 30, 3))
    assert agent._model["A"].shape == (0, F)
    means = [agent.score_moments(_obs(cat, np.arange(4), np.full((4, 1), x), 3))[0] for x in (0, 5)]
    np.testing.assert_array_equal(means[0], means[1])


# ----------------------------------------------------------------------------- padding


def _padded(log: Log, width: int, seed: int) -> Log:
    """``log`` with its slates widened to ``width`` by ``PAD`` slots at random positions."""
    g = np.random.default_rng(seed)
    rows, k = log.slates.shape
    slates = np.full((rows, width), PAD, np.int64)
    clicked = log.clicked_pos.copy()
    for r in range(rows):
        slots = np.sort(g.choice(width, size=k, replace=False))
        slates[r, slots] = log.slates[r]
        clicked[r] = -1 if log.clicked_pos[r] < 0 else slots[log.clicked_pos[r]]
    return dataclasses.replace(log, slates=slates, clicked_pos=clicked)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pad_slots_are_not_items_and_take_no_probability(seed):
    """Slates padded with ``PAD`` fit the same item and user posteriors as the unpadded log.

    Without position offsets a slot's place does not matter, so a narrower slate shown
    inside a wider log (``platform.slate_size: 0`` with per-user candidates) must count only
    its items and the no-click option; ``PAD`` is not an item with zero features.
    """
    cat = _catalog(seed=seed)
    users = np.array([0, 2, 4], np.int64)
    profiles = np.random.default_rng(seed).normal(size=(3, D_USER))
    log = _log(cat, users, 40, seed, k=2)
    fitted = []
    for view in (log, _padded(log, 4, seed)):
        agent = _agent(seed, learn_position_bias=False)
        agent.act(_obs(cat, users, profiles, 2))
        agent.retrain(view)
        fitted.append(agent)
    plain, padded = fitted
    np.testing.assert_array_equal(padded._item_ids, plain._item_ids)
    assert PAD not in padded._item_ids
    np.testing.assert_allclose(padded._item_mean, plain._item_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(padded._item_std, plain._item_std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(padded._user_mean, plain._user_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(padded._user_std, plain._user_std, rtol=1e-5, atol=1e-6)


def test_a_log_of_padding_only_leaves_the_agent_untrained():
    """No slot shows an item: nothing to fit, the agent stays at its prior."""
    cat = _catalog()
    agent = _agent()
    agent.act(_obs(cat, [0, 1], np.ones((2, D_USER)), 2))
    log = _log(cat, np.array([0, 1]), 5, 0, k=2)
    agent.retrain(
        dataclasses.replace(
            log, slates=np.full_like(log.slates, PAD), clicked_pos=np.full_like(log.clicked_pos, -1)
        )
    )
    assert agent._model is None and agent._num_retrains == 0


# ----------------------------------------------------------------------------- edges


def test_a_one_row_log_is_fitted():
    """The smallest log with an item: one impression fits its user and items."""
    cat = _catalog()
    agent = _agent(3)
    agent.act(_obs(cat, [4], np.ones((1, D_USER)), 3))
    agent.retrain(_log(cat, np.array([4]), 1, 0))
    assert agent._model is not None and agent._num_retrains == 1
    assert agent._user_known.tolist() == [u == 4 for u in range(6)]
    assert agent._item_ids.shape == (3,)


def test_a_model_fitted_on_a_log_without_item_features_has_no_feature_map():
    """A log without features (its default): ``W`` is empty, catalog features are ignored."""
    cat = _catalog()
    agent = _agent(4)
    agent.act(_obs(cat, np.arange(4), np.ones((4, D_USER)), 3))
    log = _log(cat, np.arange(4), 30, 4)
    agent.retrain(Log(log.step, log.user_ids, log.slates, log.clicked_pos, log.engagement))
    assert agent._model["W"].shape == (0, F)
    other = dataclasses.replace(cat, features=cat.features * 7.0 + 1.0)
    means = [
        agent.score_moments(_obs(c, np.arange(4), np.ones((4, D_USER)), 3)) for c in (cat, other)
    ]
    for a, b in zip(means[0], means[1], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("num_users", [None, 0])
def test_an_agent_told_no_user_count_grows_its_tables_and_acts_the_same(num_users):
    """Without ``num_users`` (absent or 0) the tables start empty and grow with the ids.

    Slates and fitted posteriors are those of an agent told the count.
    """
    cat = _catalog()
    users, profiles = np.array([0, 3, 5]), np.arange(6.0).reshape(3, 2)
    ctx = SimpleNamespace(seed=2) if num_users is None else SimpleNamespace(seed=2, num_users=0)
    params = SlateThompsonAgent.Params(factors=F, epochs=2, batch_size=64)
    bare, sized = SlateThompsonAgent(params, ctx), _agent(2, epochs=2)
    assert bare._user_known.shape == (0,) and bare._profiles.shape == (0, 0)
    assert sized._user_known.shape == (6,)
    for step in range(2):
        obs = _obs(cat, users, profiles, 3, step=step)
        np.testing.assert_array_equal(bare.act(obs).item_ids, sized.act(obs).item_ids)
        for agent in (bare, sized):
            agent.retrain(_log(cat, users, 20, step))
    np.testing.assert_array_equal(bare._user_mean, sized._user_mean)
    np.testing.assert_array_equal(bare._item_std, sized._item_std)


@pytest.mark.parametrize("width", [1, 256, 257, 4096])
def test_profiles_of_any_width_survive_growth_of_the_id_range(width):
    """Profiles are kept when a larger id grows the tables, at every allowed ``dim``."""
    g = np.random.default_rng(width)
    agent, cat = _agent(), _catalog()
    profiles = g.normal(size=(3, width)).astype(np.float32)
    agent.act(_obs(cat, [0, 2, 5], profiles, 3))
    agent.act(_obs(cat, [9], np.ones((1, width)), 3, step=1))
    assert agent._profiles.shape == (10, width)
    np.testing.assert_array_equal(agent._profiles[[0, 2, 5]], profiles)
    np.testing.assert_array_equal(agent._profiles[[1, 3, 4, 6, 7, 8]], 0.0)


def test_a_previous_model_of_another_shape_is_not_reused():
    """Wider profiles, item features or slates than the last fit: fresh ``A``, ``W``, ``pos``.

    Narrower ones likewise; parameters whose shape still fits are the previous MAP.
    """
    for grow in (True, False):
        agent, cat, users, _ = _trained(5, init_scale=0.4)
        du, di, k = (D_USER + 2, D_ITEM + 1, 4) if grow else (D_USER - 1, D_ITEM, 2)
        cat2 = dataclasses.replace(cat, features=np.ones((cat.num_items, di), np.float32))
        agent.act(_obs(cat2, users, np.ones((users.size, du)), k, step=1))
        data, user_ids, item_ids = agent._click_data(_log(cat2, users, 20, 5, k=k))
        init = agent._init_params(data, user_ids, item_ids)
        gen = numpy_generator(5, "agent/slate-ts/init", 1)
        np.testing.assert_array_equal(init["A"], gen.normal(0, 0.4, (du, F)))
        if di != D_ITEM:
            np.testing.assert_array_equal(init["W"], gen.normal(0, 0.4, (di, F)))
        else:
            np.testing.assert_array_equal(init["W"], agent._model["W"])
        np.testing.assert_array_equal(init["pos"], np.zeros(k))
        np.testing.assert_array_equal(init["b0"], agent._model["b0"])
