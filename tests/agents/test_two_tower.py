"""The content-based two-tower agent: history means, learning, negatives, debiasing."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_small
from test_agents import aligned_world, make_catalog, make_log
from test_rerank import build
from test_rerank import make_obs as rerank_obs

from simlab.agents.rerank import StyleRemovalReranker
from simlab.agents.two_tower import TwoTowerAgent, history_means
from simlab.batch import PAD, Observation
from simlab.world import World

CTX = SimpleNamespace(seed=0, num_users=40, dim=4)


def obs_with_history(catalog, history: np.ndarray, step: int, k: int = 5) -> Observation:
    """Shared candidates (the catalog) for users ``0..B-1`` with the given click history."""
    b = history.shape[0]
    return Observation(
        step=step,
        user_ids=np.arange(b, dtype=np.int64),
        user_features=np.zeros((b, 2), np.float32),
        history=np.asarray(history, np.int64),
        candidates=np.broadcast_to(catalog.item_ids, (b, catalog.num_items)),
        catalog=catalog,
        slate_size=k,
        shared_candidates=True,
    )


def test_history_means_are_windowed_per_user():
    """Each click's mean is over the same user's previous clicks only, at most ``window``."""
    users = np.array([1, 1, 1, 1, 4, 4])
    feats = np.array([[2.0], [4.0], [6.0], [8.0], [10.0], [20.0]])
    means, counts = history_means(users, feats, window=2)
    np.testing.assert_allclose(means[:, 0], [0.0, 2.0, 3.0, 5.0, 0.0, 10.0])
    np.testing.assert_array_equal(counts, [0, 1, 2, 2, 0, 1])


def test_two_tower_ranks_items_like_the_users_history():
    """After retraining on aligned clicks, a user is shown items like those in their history."""
    catalog, log, group_of_user, group_of_item = aligned_world()
    params = TwoTowerAgent.Params(factors=4, epochs=30, lr=0.05, batch_size=256)
    agent = TwoTowerAgent(params, CTX)
    # each user's history: three items of their own group
    own = np.where(group_of_user[:, None], np.flatnonzero(group_of_item)[:3], np.arange(3))
    agent.act(obs_with_history(catalog, own, step=0))  # random serving; remembers the catalog
    agent.retrain(log)
    slates = agent.act(obs_with_history(catalog, own, step=1)).item_ids
    assert (group_of_item[slates] == group_of_user[:, None]).mean() >= 0.95
    # a user is their history: swap the histories and the slates follow
    swapped = agent.act(obs_with_history(catalog, own[::-1], step=2)).item_ids
    assert (group_of_item[swapped] == group_of_user[::-1, None]).mean() >= 0.95


def test_shared_towers_learn_one_map_and_no_prior():
    """``towers: shared``: the item map is the user map's feature block; w stays zero."""
    catalog, log, group_of_user, group_of_item = aligned_world()
    params = TwoTowerAgent.Params(factors=4, epochs=30, lr=0.05, batch_size=256, towers="shared")
    agent = TwoTowerAgent(params, CTX)
    own = np.where(group_of_user[:, None], np.flatnonzero(group_of_item)[:3], np.arange(3))
    agent.act(obs_with_history(catalog, own, step=0))
    agent.retrain(log)
    m = agent._model
    np.testing.assert_array_equal(m["B"], m["A"][: CTX.dim])
    assert not m["w"].any()
    before = m["A"].copy()
    agent.retrain(log)  # warm start from the shared map, which keeps moving
    assert not np.allclose(agent._model["A"], before)
    np.testing.assert_array_equal(agent._model["B"], agent._model["A"][: CTX.dim])
    slates = agent.act(obs_with_history(catalog, own, step=1)).item_ids
    assert (group_of_item[slates] == group_of_user[:, None]).mean() >= 0.95


@pytest.mark.parametrize("towers", ["separate", "shared"])
def test_identity_init_starts_as_content_similarity(towers):
    """``init: identity``: the untrained maps score <m_u, f_i> plus the profile term."""
    agent = TwoTowerAgent(TwoTowerAgent.Params(factors=4, init="identity", towers=towers), CTX)
    m = agent._init_params(4, 2)
    np.testing.assert_array_equal(m["A"][:4], np.eye(4))
    if towers == "separate":
        np.testing.assert_array_equal(m["B"], np.eye(4))
    feats = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    catalog = make_catalog(np.arange(6), feats, dim=4)
    history = np.array([[0, 1, PAD], [2, PAD, PAD]])
    features = np.array([[1.0, -2.0], [0.5, 0.0]], np.float32)
    obs = replace(obs_with_history(catalog, history, step=0), user_features=features)
    agent.act(obs)  # remembers the catalog's features; random slates before training
    agent._model = {**m, "B": m["A"][:4]} if towers == "shared" else m
    mean = np.stack([feats[[0, 1]].mean(0), feats[2]])
    got = agent.score(obs, np.tile(np.arange(6), (2, 1)))
    profile = obs.user_features @ m["A"][4:]
    np.testing.assert_allclose(got, (mean + profile) @ feats.T, rtol=1e-4, atol=1e-5)
    assert np.abs(mean @ feats.T).max() > 0.5  # the similarity term is not trivially zero


@pytest.mark.parametrize("warm", [True, False])
def test_warm_start_carries_the_last_model_over(warm):
    """``warm_start: false``: a retrain's result does not depend on what earlier ones learned."""
    catalog, log, group_of_user, group_of_item = aligned_world()
    _, other, _, _ = aligned_world(seed=1)
    own = np.where(group_of_user[:, None], np.flatnonzero(group_of_item)[:3], np.arange(3))
    models = []
    for first in (log, other):
        params = TwoTowerAgent.Params(factors=4, epochs=5, lr=0.05, warm_start=warm)
        agent = TwoTowerAgent(params, CTX)
        agent.act(obs_with_history(catalog, own, step=0))
        agent.retrain(first)  # differs between the two agents
        agent.retrain(log)  # the same second retrain
        models.append(agent._model["A"])
    assert np.array_equal(models[0], models[1]) != warm


def test_catalog_negatives_come_from_the_catalog_of_the_clicks_step():
    """Clicks at step 0 draw negatives from step 0's catalog, step 1's from step 1's."""
    agent = TwoTowerAgent(TwoTowerAgent.Params(epochs=4), CTX)
    first, second = make_catalog(np.arange(10), dim=4), make_catalog(np.arange(10, 20), dim=4)
    empty = np.full((40, 2), PAD)
    agent.act(obs_with_history(first, empty, step=0))
    agent.act(obs_with_history(second, empty, step=1))
    log = make_log(np.arange(6), np.tile(np.arange(5), (6, 1)), np.zeros(6), first)
    log = type(log)(**{**log.__dict__, "step": np.array([0, 0, 0, 1, 1, 1])})
    neg = agent._negatives(log, log.step)
    assert neg.shape == (4, 6)
    assert (neg[:, :3] < 10).all() and (neg[:, 3:] >= 10).all()
    assert np.unique(neg[:, 3:]).size > 3  # spread over the catalog, not one item


def test_log_negatives_come_from_the_items_shown():
    """``negatives: log`` draws among the log's shown items only."""
    agent = TwoTowerAgent(TwoTowerAgent.Params(negatives="log"), CTX)
    catalog = make_catalog(np.arange(30), dim=4)
    agent.act(obs_with_history(catalog, np.full((40, 2), PAD), step=0))
    shown = make_catalog(np.arange(5), dim=4)
    log = make_log(np.arange(6), np.tile(np.arange(5), (6, 1)), np.zeros(6), shown)
    assert (agent._negatives(log, log.step) < 5).all()


STYLED = [
    "content.style_magnitude=1.0",
    ("content.phases", [{"aigc_share": 0.5}]),
    "users.drift_rate=0.05",
]


def _style_effect(source_debias: float, seed: int) -> float:
    """Size of what adding the style to an item changes in the trained model's item side."""
    sc = make_small(
        *STYLED,
        agents=[{"model": "two-tower", "factors": 8, "source_debias": source_debias}],
        steps=20,
    )
    world = World(sc, 0, seed)
    for t in range(20):
        world.step(t)
    m, s = world.agent._model, world.content.style
    return float(np.linalg.norm(np.r_[s @ m["B"], s @ m["w"]]))


@pytest.mark.parametrize("seed", [0, 1])
def test_invariance_term_takes_the_style_out_of_the_item_tower(seed):
    """With Zhou et al.'s invariance term the style's image shrinks several-fold."""
    assert _style_effect(5.0, seed) < 0.2 * _style_effect(0.0, seed)


def test_style_removal_rescores_with_the_style_projected_out():
    """With an agent scorer bound, the list is sorted by scores of style-free features."""
    rng = np.random.default_rng(0)
    n, d = 30, 4
    source = np.arange(n) % 2
    style = np.array([1.0, 0, 0, 0])
    feats = rng.normal(size=(n, d)) + 3.0 * np.outer(source, style)
    ranked = np.stack([rng.permutation(n)[:12] for _ in range(4)]).astype(np.int64)
    obs = rerank_obs(feats, ranked, source=source)
    seen = {}

    def scorer(o, item_ids, features):
        seen["features"] = features
        return features @ np.array([5.0, 1.0, 0.0, 0.0])  # the style axis dominates

    rr = build(StyleRemovalReranker, 4)
    rr.bind_scorer(scorer)
    out = rr.rerank(obs, ranked)
    unit = feats[source == 1].mean(0) - feats[source == 0].mean(0)
    unit /= np.linalg.norm(unit)
    np.testing.assert_allclose(seen["features"] @ unit, 0, atol=1e-5)
    expected = np.take_along_axis(ranked, np.argsort(-scorer(obs, ranked, seen["features"]), 1), 1)
    np.testing.assert_array_equal(out, expected)
    # the dominating style no longer decides: AIGC items do not crowd the top
    assert (source[out[:, :4]] == 1).mean() < (
        source[np.take_along_axis(ranked, np.argsort(-(feats[ranked] @ [5.0, 1, 0, 0]), 1), 1)][
            :, :4
        ]
        == 1
    ).mean()


def test_world_binds_the_agents_scores_to_style_removal():
    """In a world, the style-removal re-ranker of a two-tower agent gets its scorer."""
    sc = make_small(
        *STYLED,
        "platform.knows_source=true",
        agents=[{"model": "two-tower", "factors": 4, "rerankers": [{"model": "style-removal"}]}],
        steps=4,
    )
    world = World(sc, 0, 0)
    rr = world.platform.rerankers[0]
    assert rr._scorer == world.agent.score
    for t in range(4):
        world.step(t)
