"""The two-tower agent's serving side against loops: features it keeps, histories, scores.

Scores are compared with a loop over users and candidates (``<[m_u, p_u] A, f_i B> +
<f_i, w>``, ``m_u`` the mean features of the known items among the user's first
``history_length`` history entries); the feature store with the newest features winning;
frozen histories with the last history served at or before the step; state and serving
state with round trips. Tiny sizes: milliseconds per test.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError

pytest.importorskip("torch")

from simlab.agents.base import random_slates  # noqa: E402
from simlab.agents.two_tower import TwoTowerAgent  # noqa: E402
from simlab.batch import PAD, Catalog, Log, Observation  # noqa: E402
from simlab.rng import Stream  # noqa: E402

USERS, D, PROFILE, SEED = 4, 3, 2, 3


def ctx() -> SimpleNamespace:
    """Seed, number of users and feature dimension."""
    return SimpleNamespace(seed=SEED, num_users=USERS, dim=D)


def catalog(ids, seed=0) -> Catalog:
    """A catalog of ``ids`` with random features."""
    ids = np.asarray(ids, np.int64)
    feats = np.random.default_rng(50 + seed).normal(size=(ids.size, D)).astype(np.float32)
    return Catalog(ids, feats, np.zeros(ids.size, np.int64), np.zeros(ids.size, np.int64))


def observation(cat, history, step=0, shared=True, k=2, seed=0) -> Observation:
    """Users ``0..B-1`` with random profiles; the catalog or 4 random items as candidates."""
    rng = np.random.default_rng(seed)
    b = len(history)
    cands = (
        np.broadcast_to(cat.item_ids, (b, cat.item_ids.size))
        if shared
        else np.stack([rng.permutation(cat.item_ids)[:4] for _ in range(b)])
    )
    return Observation(
        step=step,
        user_ids=np.arange(b, dtype=np.int64),
        user_features=rng.normal(size=(b, PROFILE)).astype(np.float32),
        history=np.asarray(history, np.int64),
        candidates=cands,
        catalog=cat,
        slate_size=k,
        shared_candidates=shared,
    )


def model(seed=1) -> dict[str, np.ndarray]:
    """Random towers ``A``, ``B`` and prior ``w``."""
    rng = np.random.default_rng(seed)
    return {
        "A": rng.normal(size=(D + PROFILE, 2)).astype(np.float32),
        "B": rng.normal(size=(D, 2)).astype(np.float32),
        "w": rng.normal(size=D).astype(np.float32),
    }


def scores_by_hand(obs, m, feats_of, item_feats, history_length):
    """``(B, L)`` scores of items with features ``item_feats`` (B, L, d), user by user.

    The user tower reads the features ``feats_of`` knows of the history's items.
    """
    out = np.zeros(item_feats.shape[:2])
    for b in range(out.shape[0]):
        known = [feats_of[i] for i in obs.history[b, :history_length] if i in feats_of]
        mean = np.mean(known, axis=0) if known else np.zeros(D)
        e = np.r_[mean, obs.user_features[b]] @ m["A"]
        for c, f in enumerate(item_feats[b]):
            out[b, c] = e @ (f @ m["B"]) + f @ m["w"]
    return out


def features_by_id(*catalogs) -> dict[int, np.ndarray]:
    """Each item's features, from the last catalog holding it."""
    return {int(i): f for c in catalogs for i, f in zip(c.item_ids, c.features, strict=True)}


def feats_of_ids(feats_of, ids):
    """``(B, L, d)`` features of ``ids`` (B, L)."""
    return np.array([[feats_of[int(i)] for i in row] for row in ids])


HISTORY = [[1, 2, 3, PAD], [PAD, PAD, PAD, PAD], [99, 4, PAD, PAD], [7, 8, 1, 2]]


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("history_length", [1, 2, 10])
def test_act_ranks_by_the_tower_scores(shared, history_length):
    """Random slates of its stream before training; then top-K by score, best first."""
    agent = TwoTowerAgent(TwoTowerAgent.Params(history_length=history_length), ctx())
    old = catalog([1, 2, 7], 1)  # 7 and 8 are remembered from an earlier catalog only
    agent.act(observation(catalog([7, 8], 2), HISTORY, step=0))
    agent.act(observation(old, HISTORY, step=1))
    cat = catalog([1, 2, 3, 4, 5, 6])  # newer features of 1 and 2 replace the old ones
    obs = observation(cat, HISTORY, step=2, shared=shared, k=3)
    want = random_slates(Stream(SEED, "agent/two-tower/random"), obs)
    np.testing.assert_array_equal(agent.act(obs).item_ids, want)
    agent._model = m = model()
    feats_of = features_by_id(catalog([7, 8], 2), old, cat)
    item_feats = feats_of_ids(feats_of, obs.candidates)
    scores = scores_by_hand(obs, m, feats_of, item_feats, history_length)
    want = np.take_along_axis(obs.candidates, np.argsort(-scores, axis=1)[:, :3], axis=1)
    got = agent.act(obs)
    np.testing.assert_array_equal(got.user_ids, obs.user_ids)
    np.testing.assert_array_equal(got.item_ids, want)
    np.testing.assert_allclose(
        agent.score(obs, obs.candidates), scores, rtol=1e-4, atol=1e-5
    )  # the same scores through `score`


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("block", [1, 300, 1 << 30])
def test_act_in_user_blocks_ranks_as_all_users_at_once(monkeypatch, shared, block):
    """Blocks of 64+ users (or one block): the slates of one product over every user."""
    import torch

    import simlab.agents.two_tower as two_tower

    monkeypatch.setattr(two_tower, "_SCORE_BLOCK", block)
    agent = TwoTowerAgent(TwoTowerAgent.Params(), SimpleNamespace(seed=SEED, num_users=300, dim=D))
    cat = catalog(np.arange(1, 7))
    history = np.random.default_rng(3).integers(0, 8, size=(300, 4))
    obs = observation(cat, history, step=0, shared=shared, k=3)
    agent.act(obs)
    agent._model = m = model(5)
    got = agent.act(obs).item_ids
    users = torch.from_numpy(agent.user_inputs(obs) @ m["A"])  # the whole product, as before
    feats = cat.features[cat.rows(obs.candidates)]
    v = torch.from_numpy(feats @ m["B"])
    scores = torch.einsum("bf,bcf->bc", users, v) + torch.from_numpy(feats @ m["w"])
    if shared:
        f0 = cat.features[cat.rows(obs.candidate_pool)]
        scores = users @ torch.from_numpy((f0 @ m["B"]).T.copy())
        scores += torch.from_numpy(f0 @ m["w"])
    idx = torch.topk(scores, 3, dim=1, sorted=True).indices.numpy()
    np.testing.assert_array_equal(got, np.take_along_axis(obs.candidates, idx, axis=1))
    assert (len(two_tower.row_blocks(300, obs.candidates.shape[1], block)) > 1) == (block < 1 << 30)


def test_score_with_edited_features_and_a_transform():
    """``features`` replaces the items' features; ``transform`` maps every feature read.

    Every score is zero before any model.
    """
    agent = TwoTowerAgent(TwoTowerAgent.Params(history_length=3), ctx())
    cat = catalog([1, 2, 3, 4])
    obs = observation(cat, HISTORY, step=0)
    ids = np.array([[1, 2], [3, 4], [4, 1], [2, 2]])
    assert (agent.score(obs, ids) == 0).all() and agent.score(obs, ids).shape == (4, 2)
    agent.act(obs)
    agent._model = m = model(2)
    feats_of = features_by_id(cat)
    edited = np.random.default_rng(4).normal(size=(4, 2, D)).astype(np.float32)
    got = agent.score(obs, ids, features=edited)
    np.testing.assert_allclose(
        got, scores_by_hand(obs, m, feats_of, edited, 3), rtol=1e-4, atol=1e-5
    )
    # an affine map: the unknown history slots must stay out of the mean, not become f(0)
    double = agent.score(obs, ids, transform=lambda f: 2 * f + 0.5)
    twice = {i: 2 * f + 0.5 for i, f in feats_of.items()}
    want = scores_by_hand(obs, m, twice, feats_of_ids(twice, ids), 3)
    np.testing.assert_allclose(double, want, rtol=1e-4, atol=1e-5)
    assert double.dtype == np.float32


def test_frozen_history_is_the_last_served_at_or_before_the_step():
    """Users score with the history served at the latest step <= history_frozen_at."""
    p = TwoTowerAgent.Params(history_frozen_at=1, history_length=2)
    agent = TwoTowerAgent(p, ctx())
    cat = catalog([1, 2, 3, 4, 7, 8])
    first = [[1, 2, 3], [4, PAD, PAD], [PAD, PAD, PAD], [7, 8, 1]]
    second = [[3, 4, 1], [1, 2, 4], [8, 7, 3], [2, 1, 7]]
    obs0 = observation(cat, first, step=0)
    sub = Observation(1, np.array([1, 2]), obs0.user_features[1:3], np.array(second[1:3]),
                      obs0.candidates[1:3], cat, 2, True)  # fmt: skip
    later = observation(cat, [[8, 8, 8]] * 4, step=2)
    agent.act(obs0)
    agent.act(sub)  # step 1 <= 1: users 1 and 2 refreeze
    agent.act(later)  # step 2 > 1: ignored
    want = np.array([[1, 2], [1, 2], [8, 7], [7, 8]])
    np.testing.assert_array_equal(agent._history(later), want)
    assert agent._history(later).dtype == np.int64
    live = TwoTowerAgent(TwoTowerAgent.Params(history_length=2), ctx())
    np.testing.assert_array_equal(live._history(later), np.full((4, 2), 8))
    assert live._frozen_history is None
    for at, blocked in ((None, False), (0, True), (5, True)):
        a = TwoTowerAgent(TwoTowerAgent.Params(history_frozen_at=at), ctx())
        assert (a.serving_blocker() == "history_frozen_at keeps histories in act") == blocked
        assert (a.serving_blocker() is None) != blocked


def test_feature_store_keeps_the_newest_and_forgets_what_no_one_needs():
    """Newest features win; ``_forget`` keeps only the items still needed.

    The window's, recent catalogs' and frozen histories' items; unknown ids and ``PAD``
    read as zero features, not found.
    """
    agent = TwoTowerAgent(TwoTowerAgent.Params(history_frozen_at=0, history_length=2), ctx())
    a, b, c = catalog([1, 2, 3], 1), catalog([2, 3, 4], 2), catalog([5, 6], 3)
    agent.act(observation(a, [[1, 1]] * 4, step=0))  # frozen histories hold item 1
    agent.act(observation(b, [[PAD, PAD]] * 4, step=4))
    agent.act(observation(c, [[PAD, PAD]] * 4, step=6))
    feats, found = agent._features_of(np.array([[2, 4, 1], [PAD, 9, 5]]))
    np.testing.assert_array_equal(found, [[True, True, True], [False, False, True]])
    np.testing.assert_array_equal(feats[0, 0], b.features[0])  # 2's newer features
    np.testing.assert_array_equal(feats[0, 2], a.features[0])
    assert (feats[1, :2] == 0).all() and feats.dtype == np.float32
    log = Log(np.array([5, 6]), np.array([0, 1]), np.array([[7, 5], [5, 6]]),
              np.array([0, -1]), np.ones(2, np.float32), np.array([5, 6, 7]),
              np.ones((3, D), np.float32))  # fmt: skip
    agent._remember(log.feature_ids, log.features)
    agent._forget(log)
    assert sorted(agent._catalogs) == [6]
    np.testing.assert_array_equal(agent._known_ids, [1, 5, 6, 7])
    np.testing.assert_array_equal(agent._known_feats[0], a.features[0])
    np.testing.assert_array_equal(agent._known_feats[1:], np.ones((3, D)))


def test_state_round_trips_and_replicas_serve_the_published_model():
    """state_dict restores everything; a replica serves the published arrays.

    The replica drops catalogs and keeps its frozen initial maps when nothing is published.
    """
    p = TwoTowerAgent.Params(history_frozen_at=3, history_length=2)
    agent = TwoTowerAgent(p, ctx())
    cat = catalog([1, 2, 3, 4])
    obs = observation(cat, [[1, 2], [3, PAD], [PAD, PAD], [4, 1]], step=2)
    agent.act(obs)
    agent._model = model(3)
    copy = TwoTowerAgent(p, ctx())
    copy.load_state_dict(agent.state_dict())
    for key, value in agent.state_dict().items():
        got = copy.state_dict()[key]
        if key == "catalogs":
            assert len(got) == len(value) == 1 and got[0].dtype == np.int64
            np.testing.assert_array_equal(got[0], value[0])
        else:
            np.testing.assert_array_equal(got, value, err_msg=key)
    assert copy._catalogs.keys() == {2} and copy._frozen_history is not agent._frozen_history
    np.testing.assert_array_equal(copy.act(obs).item_ids, agent.act(obs).item_ids)
    empty = TwoTowerAgent(p, ctx()).state_dict()  # one feature row per known id, none yet
    assert "model.A" not in empty
    assert empty["known_ids"].shape == (0,) and empty["known_feats"].shape == (0, D)
    fresh = TwoTowerAgent(p, ctx())
    fresh.load_state_dict(TwoTowerAgent(p, ctx()).state_dict())
    assert fresh._model is None and fresh._frozen_history is None
    torn = {**agent.state_dict(), "catalog_steps": np.array([2, 3])}
    with pytest.raises(ValueError, match="zip"):  # a catalog without its step is refused
        fresh.load_state_dict(torn)
    replica = TwoTowerAgent(TwoTowerAgent.Params(frozen=True), ctx())
    replica.act(obs)
    initial = replica._model
    replica.load_serving_state({"known_ids": [1], "known_feats": np.ones((1, D))})
    assert replica._model is initial and replica._catalogs == {}
    replica.load_serving_state(agent.serving_state())
    for key, value in agent._model.items():
        np.testing.assert_array_equal(replica._model[key], value)
    np.testing.assert_array_equal(replica._known_ids, agent._known_ids)
    record = agent.serving_record(obs)
    np.testing.assert_array_equal(record["user_ids"], obs.user_ids)
    np.testing.assert_array_equal(record["features"], obs.user_features)


def test_record_served_keeps_what_act_would():
    """The learner of replicas keeps the catalog, its features and the served profiles."""
    cat = catalog([1, 2, 3, 4])
    obs = observation(cat, [[1, 2]] * 4, step=5)
    for frozen in (False, True):
        p = TwoTowerAgent.Params(frozen=frozen, init="identity", factors=D)
        acted, learner = TwoTowerAgent(p, ctx()), TwoTowerAgent(p, ctx())
        acted.act(obs)
        learner.record_served(5, acted.serving_record(obs), cat)
        a, b = acted.state_dict(), learner.state_dict()
        assert set(a) == set(b) and ("model.A" in a) == frozen
        for key in a:
            if key != "catalogs":
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        np.testing.assert_array_equal(learner.state_dict()["profile_store"][:4], obs.user_features)


def test_params_defaults_and_bounds():
    """Documented defaults; the caps of factors and history_length; non-negative others."""
    p = TwoTowerAgent.Params()
    assert (p.factors, p.history_length, p.negatives, p.epochs, p.lr, p.l2) == (
        16, 10, "catalog", 3, 0.02, 1e-4
    )  # fmt: skip
    assert (p.batch_size, p.init_scale, p.towers, p.warm_start, p.init) == (
        2048, 0.1, "separate", True, "random"
    )  # fmt: skip
    assert (p.source_debias, p.frozen, p.history_frozen_at) == (0.0, False, None)
    TwoTowerAgent.Params(factors=1024, history_length=1000, l2=0.0, history_frozen_at=0)
    low = {"factors": 1, "history_length": 1, "epochs": 1, "lr": 1e-9, "batch_size": 1}
    TwoTowerAgent.Params(**low, init_scale=1e-9, source_debias=0.0)  # the lower edges
    bad = [("factors", 0), ("factors", 1025), ("history_length", 0), ("history_length", 1001),
           ("epochs", 0), ("lr", 0.0), ("l2", -1e-9), ("batch_size", 0), ("init_scale", 0.0),
           ("source_debias", -1e-9), ("history_frozen_at", -1)]  # fmt: skip
    for key, value in bad:
        with pytest.raises(ValidationError, match=key):
            TwoTowerAgent.Params(**{key: value})
    blocked = TwoTowerAgent(TwoTowerAgent.Params(source_debias=0.1), ctx()).learner_blocker()
    assert blocked == "source_debias calls the content model"
    assert TwoTowerAgent(TwoTowerAgent.Params(), ctx()).learner_blocker() is None


@pytest.mark.parametrize("learner", [False, True])
@pytest.mark.parametrize("width", [PROFILE, 300])
@pytest.mark.parametrize("rows", [[0, 2], [3], [0, 1, 3]])
def test_profiles_are_the_last_served_ones_per_user(learner, width, rows):
    """A user not served at a step keeps the profile served last (act and record_served).

    Batches of other sizes than the profile width, and profiles wider than CPython's
    small-int cache (a width compared by identity would look new at every step).
    """
    agent = TwoTowerAgent(TwoTowerAgent.Params(), ctx())
    cat = catalog([1, 2, 3])
    first = observation(cat, [[1, 2]] * USERS, step=0, seed=1)
    profiles = np.random.default_rng(width).normal(size=(USERS, width)).astype(np.float32)
    first = Observation(0, first.user_ids, profiles, first.history, first.candidates, cat, 2, True)
    rows = np.array(rows)
    later = Observation(1, rows, profiles[rows] + 5, first.history[rows],
                        first.candidates[rows], cat, 2, True)  # fmt: skip
    for obs in (first, later):
        if learner:
            agent.record_served(obs.step, agent.serving_record(obs), cat)
        else:
            agent.act(obs)
    want = profiles.copy()
    want[rows] += 5
    np.testing.assert_array_equal(agent._profiles(np.arange(USERS)), want)
