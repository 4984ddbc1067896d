"""Behaviour tests of the torch agents: propensity weights, MF/BPR, GRU4Rec, blocked serving."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_small
from test_neural_agents import D, ctx, observation, window_log

from simlab.agents.neural import (
    GRU4RecAgent,
    MatrixFactorizationAgent,
    click_sequences,
    click_weights,
    exposure_propensity,
    train_bpr,
)
from simlab.batch import PAD, Catalog, Log, Observation
from simlab.testing import check_agent
from simlab.world import World

SEEDS = (0, 1, 2)

# ----------------------------------------------------------------------------- helpers


def make_log(slates, clicked_pos, user_ids=None, step=None, features=None) -> Log:
    """A log from plain lists; features keyed by every item shown, if given."""
    slates = np.asarray(slates, np.int64)
    m = slates.shape[0]
    clicked_pos = np.asarray(clicked_pos, np.int64)
    kwargs = {}
    if features is not None:
        kwargs = {"feature_ids": np.unique(slates), "features": np.asarray(features, np.float32)}
    return Log(
        step=np.zeros(m, np.int64) if step is None else np.asarray(step, np.int64),
        user_ids=np.arange(m, dtype=np.int64) if user_ids is None else np.asarray(user_ids),
        slates=slates,
        clicked_pos=clicked_pos,
        engagement=(clicked_pos >= 0).astype(np.float32),
        **kwargs,
    )


def make_obs(history: np.ndarray, features: np.ndarray, slate_size: int, step: int = 99):
    """Users ``0..B-1`` with the given histories; every catalog item is a candidate."""
    b, n = history.shape[0], features.shape[0]
    catalog = Catalog(
        item_ids=np.arange(n, dtype=np.int64),
        features=np.asarray(features, np.float32),
        creator=np.zeros(n, np.int64),
        age=np.zeros(n, np.int64),
    )
    return Observation(
        step=step,
        user_ids=np.arange(b, dtype=np.int64),
        user_features=np.zeros((b, 2), np.float32),
        history=np.asarray(history, np.int64),
        candidates=np.broadcast_to(catalog.item_ids, (b, n)),
        catalog=catalog,
        slate_size=slate_size,
        shared_candidates=True,
    )


# ----------------------------------------------------------------------------- contract


@pytest.mark.parametrize(
    "spec",
    [
        {"model": "gru4rec", "factors": 8},
        {"model": "gru4rec", "factors": 8, "debias": "snips"},
        {"model": "mf", "factors": 8, "debias": "ips"},
        {"model": "mf", "factors": 8, "debias": "snips"},
    ],
    ids=["gru4rec", "gru4rec-snips", "mf-ips", "mf-snips"],
)
def test_check_agent(spec):
    """The torch agents keep the contract: shapes, candidates, determinism, state round trip."""
    check_agent(spec)


# ----------------------------------------------------------------------------- propensities

# impressions: item 1 four times, item 2 twice, items 3 and 4 once; clicks on 2, 3 and 1
TINY_SLATES = [[1, 2], [1, 3], [2, 1], [1, 4]]
TINY_CLICKS = [1, 1, 1, -1]


def test_exposure_propensity_matches_hand_computation():
    """P_i = clip((n_i / max n)^eta, min_propensity, 1) on a tiny log, for two settings."""
    log = make_log(TINY_SLATES, TINY_CLICKS)
    ids, p = exposure_propensity(log, power=0.5, min_propensity=0.6)
    np.testing.assert_array_equal(ids, [1, 2, 3, 4])
    np.testing.assert_allclose(p, [1.0, np.sqrt(0.5), 0.6, 0.6])
    _, p = exposure_propensity(log, power=1.0, min_propensity=0.1)
    np.testing.assert_allclose(p, [1.0, 0.5, 0.25, 0.25])


def test_click_weights_are_inverse_propensities():
    """Each click weighs 1/P of its item under ips and snips, and nothing under none."""
    log = make_log(TINY_SLATES, TINY_CLICKS)
    items = log.clicked_items[log.clicked_pos >= 0]
    np.testing.assert_array_equal(items, [2, 3, 1])
    ips = MatrixFactorizationAgent.Params(debias="ips", min_propensity=0.6)
    np.testing.assert_allclose(click_weights(log, items, ips), [np.sqrt(2), 1 / 0.6, 1.0])
    snips = GRU4RecAgent.Params(debias="snips", propensity_power=1.0, min_propensity=0.1)
    np.testing.assert_allclose(click_weights(log, items, snips), [2.0, 4.0, 1.0])
    assert click_weights(log, items, MatrixFactorizationAgent.Params()) is None


def bpr_fit(weights=None, self_normalize=False) -> dict[str, np.ndarray]:
    """BPR on a fixed random log of 300 clicks (two batches), with optional weights."""
    rng = np.random.default_rng(0)
    m, n, u, d, f = 300, 20, 30, 4, 4
    params = {
        "P": rng.normal(0, 0.1, (u, f)),
        "W": rng.normal(0, 0.1, (d, f)),
        "Q": np.zeros((n, f)),
        "b": np.zeros(n),
    }
    return train_bpr(
        rng.integers(0, u, m),
        rng.integers(0, n, m),
        rng.integers(0, n, (2, m)),
        params,
        rng.normal(size=(n, d)),
        epochs=2,
        lr=0.05,
        l2=1e-3,
        batch_size=150,
        seed_key=(0, "test/bpr", 0),
        weights=weights,
        self_normalize=self_normalize,
    )


def test_snips_normalises_by_the_sum_of_weights():
    """SNIPS with constant weights trains like no weights; unequal IPS weights change the fit."""
    plain = bpr_fit()
    snips = bpr_fit(np.full(300, 3.0, np.float32), self_normalize=True)
    for key in plain:
        np.testing.assert_allclose(snips[key], plain[key], atol=1e-5, err_msg=key)
    skewed = np.random.default_rng(1).uniform(1, 10, 300).astype(np.float32)
    ips = bpr_fit(skewed)
    assert np.abs(ips["P"] - plain["P"]).max() > 1e-3


# ----------------------------------------------------------------------------- MF in a world


@functools.cache
def world_means(seed: int, **agent) -> tuple[float, float]:
    """Mean click-through rate and exposure Gini over 30 steps of a 400-user world."""
    scenario = make_small(
        ("users.num_users", 400),
        ("users.topic_concentration", 3.0),  # peaked topic mixtures: heterogeneous tastes
        steps=30,
        agents=[agent],
        metrics=["engagement", "exposure"],
    )
    world = World(scenario, 0, seed)
    rows = [world.step(t) for t in range(scenario.steps)]
    return (
        float(np.mean([r["engagement/ctr"] for r in rows])),
        float(np.mean([r["exposure/gini"] for r in rows])),
    )


def test_mf_retrained_from_logs_beats_popularity_on_ctr():
    """With heterogeneous users, BPR retrained from logs clicks more than popularity (3 seeds)."""
    mf = np.array([world_means(s, model="mf")[0] for s in SEEDS])
    pop = np.array([world_means(s, model="popularity")[0] for s in SEEDS])
    assert (mf > pop + 0.01).all(), (mf, pop)
    assert (mf - pop).mean() > 0.04, (mf, pop)


def test_ips_weighting_lowers_exposure_concentration():
    """IPS-weighted BPR spreads exposure: lower mean exposure Gini than unweighted (3 seeds)."""
    plain = np.array([world_means(s, model="mf")[1] for s in SEEDS])
    ips = np.array([world_means(s, model="mf", debias="ips")[1] for s in SEEDS])
    assert (ips < plain).all(), (ips, plain)
    assert (plain - ips).mean() > 0.01, (ips, plain)


# ----------------------------------------------------------------------------- GRU4Rec

NUM_ITEMS = 30


def cycle_log(seed: int, num_users: int = 200, steps: int = 12, k: int = 5) -> Log:
    """Every user clicks the items of a fixed cycle in turn, from a random start.

    At step ``s`` user ``u`` is shown the item ``(start_u + s) % NUM_ITEMS`` among ``k - 1``
    random others and clicks it. Item features are noise, so only the order is learnable.
    """
    rng = np.random.default_rng(seed)
    start = rng.integers(0, NUM_ITEMS, num_users)
    users = np.tile(np.arange(num_users), steps)
    step = np.repeat(np.arange(steps), num_users)
    target = (start[users] + step) % NUM_ITEMS
    shift = 1 + np.argsort(rng.random((users.size, NUM_ITEMS - 1)), axis=1)[:, : k - 1]
    items = np.concatenate([target[:, None], (target[:, None] + shift) % NUM_ITEMS], axis=1)
    order = np.argsort(rng.random((users.size, k)), axis=1)
    features = rng.normal(size=(NUM_ITEMS, 8))
    return make_log(
        np.take_along_axis(items, order, axis=1),
        np.argmax(order == 0, axis=1),
        user_ids=users,
        step=step,
        features=features,
    )


@functools.cache
def trained_gru(seed: int) -> GRU4RecAgent:
    """A GRU4Rec agent retrained once on the cycle log of ``seed``."""
    params = GRU4RecAgent.Params(factors=16, epochs=15)
    agent = GRU4RecAgent(params, SimpleNamespace(seed=seed, num_users=200))
    agent.retrain(cycle_log(seed))
    return agent


def test_cycle_log_clicks_follow_the_cycle():
    """The synthetic log is what the GRU test assumes: each click is the previous one plus 1."""
    users, seqs = click_sequences(cycle_log(0))
    assert users.shape == (200,) and seqs.shape == (200, 12)
    np.testing.assert_array_equal((seqs[:, 1:] - seqs[:, :-1]) % NUM_ITEMS, 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_gru4rec_learns_sequential_structure(seed: int):
    """After a history from the cycle, the next item of the cycle is ranked first (not chance)."""
    agent = trained_gru(seed)
    features = cycle_log(seed).features
    last = np.random.default_rng(100 + seed).integers(0, NUM_ITEMS, 300)
    history = (last[:, None] - np.arange(5)) % NUM_ITEMS  # most recent first
    slates = agent.act(make_obs(history, features, slate_size=5)).item_ids
    nxt = (last + 1) % NUM_ITEMS
    hit1 = (slates[:, 0] == nxt).mean()
    hit5 = (slates == nxt[:, None]).any(axis=1).mean()
    assert hit1 >= 0.5 and hit5 >= 0.8, (hit1, hit5)  # chance: 1/30 and 1/6
    # without a history every user gets the no-history state, so it cannot know the next item
    empty = np.full_like(history, PAD)
    blind = agent.act(make_obs(empty, features, slate_size=5)).item_ids
    assert (blind == blind[0]).all()
    assert (blind[:, 0] == nxt).mean() < 0.15


def test_gru4rec_skips_unknown_history_items():
    """A history item neither logged nor live is skipped; an empty history gives h0."""
    agent = trained_gru(0)
    features = cycle_log(0).features
    with_unknown = np.array([[7, 9999, 6, 5], [PAD, PAD, PAD, PAD]])
    without = np.array([[7, 6, 5, PAD], [PAD, PAD, PAD, PAD]])
    a = agent.user_states(make_obs(with_unknown, features, slate_size=3))
    b = agent.user_states(make_obs(without, features, slate_size=3))
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a[1], agent.state_dict()["model.h0"])
    assert not np.allclose(a[0], a[1])


def test_gru4rec_random_before_retrain_and_deterministic_retrain():
    """Untrained, gru4rec serves varied random slates; retrains with one seed give equal models."""
    features = cycle_log(0).features
    history = np.full((50, 3), PAD)
    fresh = GRU4RecAgent(GRU4RecAgent.Params(), SimpleNamespace(seed=0, num_users=50))
    slates = fresh.act(make_obs(history, features, slate_size=4)).item_ids
    assert not (slates == slates[0]).all()
    log = cycle_log(1, num_users=50, steps=6)
    states = []
    for seed in (4, 4, 5):
        agent = GRU4RecAgent(
            GRU4RecAgent.Params(factors=8), SimpleNamespace(seed=seed, num_users=50)
        )
        agent.retrain(log)
        states.append(agent.state_dict())
    for key in states[0]:
        np.testing.assert_array_equal(states[0][key], states[1][key], err_msg=key)
    assert not np.array_equal(states[0]["model.W_hh"], states[2]["model.W_hh"])


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize(("block", "blocks"), [(1, 4), (700, 2), (1 << 30, 1)])
def test_serving_in_user_blocks_ranks_as_all_users_at_once(monkeypatch, shared, block, blocks):
    """Blocks of 64+ users (or one block): the slates of one product over every user."""
    import simlab.agents.neural as neural

    torch = pytest.importorskip("torch")

    monkeypatch.setattr(neural, "_SCORE_BLOCK", block)
    agent = MatrixFactorizationAgent(MatrixFactorizationAgent.Params(factors=3, epochs=2), ctx())
    agent.retrain(window_log(6))
    rng = np.random.default_rng(8)
    cand_ids = np.array([2, 5, 7, 9, 14, 21])
    obs = observation(np.full((300, 2), PAD), cand_ids, rng.normal(size=(6, D)), 3, shared, rng)
    users = rng.normal(size=(300, 3)).astype(np.float32)
    got = agent._top_k(obs, users).item_ids
    ids, inverse = np.unique(obs.candidates, return_inverse=True)
    v, bias = agent.item_vectors(ids, obs.catalog.features[obs.catalog.rows(ids)])
    scores = torch.from_numpy(users) @ torch.from_numpy(v.T) + torch.from_numpy(bias)
    scores = torch.gather(scores, 1, torch.from_numpy(inverse.reshape(obs.candidates.shape)))
    idx = torch.topk(scores, 3, dim=1, sorted=True).indices.numpy()
    np.testing.assert_array_equal(got, np.take_along_axis(obs.candidates, idx, axis=1))
    assert len(neural.row_blocks(300, ids.size, block)) == blocks


@pytest.mark.parametrize("factors", [3, 8])
@pytest.mark.parametrize(("rows", "blocks"), [(1, 4), (128, 2), (1 << 20, 1)])
def test_gru4rec_states_in_user_blocks_are_those_of_all_users_at_once(
    monkeypatch, factors, rows, blocks
):
    """Blocks of 64+ users running the same steps: every state bit for bit.

    Whatever the lengths of a block's histories (short, empty, unknown items) against the
    longest of all users.
    """
    import simlab.agents.neural as neural

    agent = GRU4RecAgent(GRU4RecAgent.Params(factors=factors, epochs=2, batch_size=3), ctx())
    agent.retrain(window_log(10))
    rng = np.random.default_rng(12)
    cand_ids = np.array([5, 7, 9, 20, 21, 33])
    pool = np.array([2, 5, 7, 9, 14, 20, 21, 33, 99, PAD])  # logged, live, neither, PAD
    history = rng.choice(pool, size=(300, 8))
    history[:150, 2:] = PAD  # the first blocks' histories are short, the last ones' long
    history[200:210] = PAD
    obs = observation(history, cand_ids, rng.normal(size=(6, D)), 3, True, rng)
    monkeypatch.setattr(neural, "_STATE_BLOCK", 1 << 30)
    whole = agent.user_states(obs)
    width = (int(agent._history_vectors(obs)[1].max()) + 1) * 3 * factors
    assert len(neural.row_blocks(300, width, rows * width)) == blocks
    monkeypatch.setattr(neural, "_STATE_BLOCK", rows * width)
    got = agent.user_states(obs)
    np.testing.assert_array_equal(got.view(np.uint32), whole.view(np.uint32))
