"""The mf and gru4rec agents around their fits: inputs, warm starts, serving, state.

Each retrain is compared with the documented call of its fit (``train_bpr`` /
``train_gru4rec``) on the log's clicks, negatives, initial weights and keyed streams;
serving with a loop over users (scores ``<u, f_i W + q_i> + b_i``, features only for an
item outside the last log window; GRU4Rec's state from torch's GRU cell over the usable
history, oldest first). Worlds are tiny and built by hand, so each test takes milliseconds.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError

torch = pytest.importorskip("torch")

from simlab.agents.base import random_slates  # noqa: E402
from simlab.agents.gru4rec_model import click_sequences, train_gru4rec  # noqa: E402
from simlab.agents.neural import GRU4RecAgent, MatrixFactorizationAgent  # noqa: E402
from simlab.agents.neural_train import click_weights, train_bpr  # noqa: E402
from simlab.batch import PAD, Catalog, Log, Observation  # noqa: E402
from simlab.errors import ScenarioError  # noqa: E402
from simlab.rng import Stream, numpy_generator  # noqa: E402

USERS, D, SEED = 6, 3, 11
ITEM_IDS = np.array([2, 5, 9, 14, 20], np.int64)  # the log window's items (sorted)


def window_log(seed: int = 0, m: int = 30, ids=ITEM_IDS) -> Log:
    """``m`` impressions of 3 of the window's items, most of them clicked, over 4 steps."""
    rng = np.random.default_rng(seed)
    slates = np.stack([rng.choice(ids, min(3, ids.size), replace=False) for _ in range(m)])
    clicked = rng.integers(-1, slates.shape[1], m)
    return Log(
        step=np.sort(rng.integers(0, 4, m)),
        user_ids=rng.integers(0, USERS, m),
        slates=slates,
        clicked_pos=clicked,
        engagement=(clicked >= 0).astype(np.float32),
        feature_ids=ids,
        features=rng.normal(size=(ids.size, D)).astype(np.float32),
    )


def observation(history, cand_ids, features, slate_size=2, shared=True, rng=None) -> Observation:
    """Users ``0..B-1``; every catalog item a candidate, or a random subset per user."""
    b = len(history)
    cat = Catalog(
        item_ids=np.asarray(cand_ids, np.int64),
        features=np.asarray(features, np.float32),
        creator=np.zeros(len(cand_ids), np.int64),
        age=np.zeros(len(cand_ids), np.int64),
    )
    if shared:
        cands = np.broadcast_to(cat.item_ids, (b, cat.item_ids.size))
    else:
        cands = np.stack([rng.permutation(cat.item_ids)[:3] for _ in range(b)])
    return Observation(
        step=7,
        user_ids=np.arange(b, dtype=np.int64),
        user_features=np.zeros((b, 2), np.float32),
        history=np.asarray(history, np.int64),
        candidates=cands,
        catalog=cat,
        slate_size=slate_size,
        shared_candidates=shared,
    )


def ctx(seed: int = SEED) -> SimpleNamespace:
    """The world context an agent reads: seed and number of users."""
    return SimpleNamespace(seed=seed, num_users=USERS)


def one_item_log() -> Log:
    """Four clicks on item 9, the window's only item."""
    ones = np.ones(4, np.float32)
    return Log(np.zeros(4, np.int64), np.arange(4), np.full((4, 1), 9), np.zeros(4, np.int64),
               ones, np.array([9]), np.ones((1, D), np.float32))  # fmt: skip


# ----------------------------------------------------------------------------- mf


def bpr_by_hand(log: Log, p: MatrixFactorizationAgent.Params, k: int, prev=None, rw=None):
    """The documented retrain number ``k``: clicks, keyed negatives and init, then BPR."""
    clicked = log.clicked_pos >= 0
    items = log.clicked_items[clicked]
    n = log.feature_ids.size
    neg = numpy_generator(SEED, "agent/mf/negatives", k).integers(0, n, (p.epochs, items.size))
    if prev is None:
        gen = numpy_generator(SEED, "agent/mf/init", k)
        users = gen.normal(0, p.init_scale, (USERS, p.factors))
        w = gen.normal(0, p.init_scale, (D, p.factors))
    else:
        users, w = prev["P"], prev["W"]
    init = {"P": users, "W": w, "Q": np.zeros((n, p.factors)), "b": np.zeros(n)}
    return train_bpr(
        log.user_ids[clicked], np.searchsorted(log.feature_ids, items), neg, init,
        log.features, epochs=p.epochs, lr=p.lr, l2=p.l2, batch_size=p.batch_size,
        seed_key=(SEED, "agent/mf/batches", k), weights=click_weights(log, items, p),
        self_normalize=p.debias == "snips", rewrite_features=rw, invariance=p.source_debias,
    )  # fmt: skip


def shift_rewrite(ids, features):
    """A stand-in content rewrite: a fixed shift of every feature."""
    assert ids.shape[0] == features.shape[0]
    return features + np.array([0.5, -1.0, 2.0], np.float32)


@pytest.mark.parametrize(
    "keys",
    [
        {"factors": 3, "batch_size": 7, "epochs": 2, "lr": 0.05, "l2": 0.2, "init_scale": 0.3},
        {"factors": 2, "batch_size": 9, "debias": "snips", "propensity_power": 1.0},
        {"factors": 2, "batch_size": 5, "debias": "ips", "source_debias": 0.7},
    ],
)
def test_mf_retrains_are_the_documented_bpr_fits(keys):
    """Two retrains: keyed init then a warm start of ``P`` and ``W`` (new ``Q``, ``b``)."""
    p = MatrixFactorizationAgent.Params(**keys)
    agent = MatrixFactorizationAgent(p, ctx())
    agent.bind_rewriter(shift_rewrite)
    assert agent.learner_blocker() == (
        "source_debias calls the content model" if p.source_debias > 0 else None
    )
    logs = [window_log(1), window_log(2, ids=np.array([2, 5, 14, 30, 31, 40]))]
    prev = None
    for k, log in enumerate(logs):
        agent.retrain(log)
        rw = shift_rewrite(log.feature_ids, log.features) if p.source_debias > 0 else None
        want = bpr_by_hand(log, p, k, prev, rw)
        state = agent.state_dict()
        assert state["num_retrains"] == k + 1
        np.testing.assert_array_equal(state["item_ids"], log.feature_ids)
        for key in want:
            np.testing.assert_array_equal(state[f"model.{key}"], want[key], err_msg=key)
        prev = want


def test_mf_skips_a_window_without_clicks_or_with_one_item_and_needs_a_rewriter():
    """No click, or a single logged item: no retrain; source_debias without a rewriter fails."""
    agent = MatrixFactorizationAgent(MatrixFactorizationAgent.Params(factors=2), ctx())
    log = window_log(3)
    no_clicks = Log(log.step, log.user_ids, log.slates, np.full(30, -1), np.zeros(30, np.float32),
                    log.feature_ids, log.features)  # fmt: skip
    agent.retrain(no_clicks)
    agent.retrain(one_item_log())
    assert agent.state_dict()["num_retrains"] == 0 and "model.P" not in agent.state_dict()
    two = window_log(4, ids=np.array([3, 8]))
    agent.retrain(two)
    assert agent.state_dict()["num_retrains"] == 1
    blind = MatrixFactorizationAgent(MatrixFactorizationAgent.Params(source_debias=0.5), ctx())
    with pytest.raises(ScenarioError, match="source_debias needs the content model"):
        blind.retrain(log)


def top_by_hand(user_vecs, obs, model, window_ids):
    """Loop over users and their candidates: ``<u, f W (+ q)> + (b)``, best first."""
    out = []
    for b in range(obs.user_ids.size):
        scores = []
        for i in obs.candidates[b]:
            f = obs.catalog.features[np.flatnonzero(obs.catalog.item_ids == i)[0]]
            v, bias = f.astype(np.float64) @ model["W"], 0.0
            if i in window_ids:
                row = int(np.flatnonzero(window_ids == i)[0])
                v, bias = v + model["Q"][row], model["b"][row]
            scores.append(user_vecs[b] @ v + bias)
        out.append(obs.candidates[b][np.argsort(scores)[::-1][: obs.slate_size]])
    return np.array(out)


@pytest.mark.parametrize("shared", [True, False])
def test_mf_serves_random_then_the_top_scores(shared):
    """Random slates of its own stream until trained, then the top-K by score, best first."""
    p = MatrixFactorizationAgent.Params(factors=3, epochs=2)
    agent = MatrixFactorizationAgent(p, ctx())
    rng = np.random.default_rng(5)
    cand_ids = np.array([2, 5, 7, 9, 14, 21])  # 7 and 21 are not in the window (cold)
    feats = rng.normal(size=(6, D))
    obs = observation(np.full((USERS, 2), PAD), cand_ids, feats, 3, shared, rng)
    want = random_slates(Stream(SEED, "agent/mf/random"), obs)
    np.testing.assert_array_equal(agent.act(obs).item_ids, want)
    agent.retrain(window_log(6))
    model = {k[6:]: v for k, v in agent.state_dict().items() if k.startswith("model.")}
    slates = agent.act(obs)
    np.testing.assert_array_equal(slates.user_ids, obs.user_ids)
    want = top_by_hand(model["P"][obs.user_ids], obs, model, ITEM_IDS)
    np.testing.assert_array_equal(slates.item_ids, want)


def test_state_round_trip_and_a_state_without_a_model():
    """A loaded state serves and retrains as the original; no model keys means untrained."""
    p = MatrixFactorizationAgent.Params(factors=2)
    a = MatrixFactorizationAgent(p, ctx())
    a.retrain(window_log(7))
    b = MatrixFactorizationAgent(p, ctx())
    b.load_state_dict(a.state_dict())
    a.retrain(window_log(8))
    b.retrain(window_log(8))
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb) and sa["num_retrains"] == 2
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    c = MatrixFactorizationAgent(p, ctx())
    c.load_state_dict({"num_retrains": "3", "item_ids": [4, 6]})
    assert c._model is None and c.state_dict()["num_retrains"] == 3
    assert c.state_dict()["item_ids"].dtype == np.int64


@pytest.mark.parametrize(
    ("cls", "defaults"),
    [
        (MatrixFactorizationAgent, {"factors": 16, "epochs": 3, "lr": 0.02, "l2": 1e-4,
                                    "batch_size": 2048, "init_scale": 0.1, "source_debias": 0.0}),
        (GRU4RecAgent, {"factors": 32, "max_length": 10, "epochs": 3, "lr": 0.03, "l2": 1e-4,
                        "batch_size": 256, "num_negatives": 64, "init_scale": 0.1}),
    ],
)  # fmt: skip
def test_params_defaults_and_bounds(cls, defaults):
    """Documented defaults; ``factors`` and ``max_length`` up to their caps, positive sizes."""
    p = cls.Params()
    assert {k: getattr(p, k) for k in defaults} == defaults
    edges = {"factors": 1024, "epochs": 1, "lr": 1e-9, "l2": 0.0, "batch_size": 1}
    gru = {"max_length": 1000, "num_negatives": 1}
    edges.update({"init_scale": 1e-9} | (gru if "max_length" in defaults else {}))
    cls.Params(**edges)
    bad = [("factors", 0), ("factors", 1025), ("epochs", 0), ("lr", 0.0), ("l2", -1e-9),
           ("batch_size", 0), ("init_scale", 0.0)]  # fmt: skip
    bad += (
        [("max_length", 0), ("max_length", 1001), ("num_negatives", 0)]
        if ("max_length" in defaults)
        else [("source_debias", -1e-9)]
    )
    for key, value in bad:
        with pytest.raises(ValidationError, match=key):
            cls.Params(**{key: value})
    cls.Params(**({"max_length": 1} if "max_length" in defaults else {"source_debias": 0.0}))


# ----------------------------------------------------------------------------- gru4rec


def gru_by_hand(log: Log, p: GRU4RecAgent.Params, k: int, prev=None, prev_ids=None):
    """The documented retrain number ``k``: sequences, weights, keyed or warm init, fit."""
    _, seqs = click_sequences(log)
    valid = seqs >= 0
    f, n = p.factors, log.feature_ids.size
    if prev is None:
        gen = numpy_generator(SEED, "agent/gru4rec/init", k)
        init = {
            "W": gen.normal(0, p.init_scale, (D, f)),
            "W_ih": gen.normal(0, 1 / np.sqrt(f), (f, 3 * f)),
            "W_hh": gen.normal(0, 1 / np.sqrt(f), (f, 3 * f)),
            "b_ih": np.zeros(3 * f),
            "b_hh": np.zeros(3 * f),
            "h0": np.zeros(f),
            "Q": np.zeros((n, f)),
            "b": np.zeros(n),
        }
    else:
        init = {key: prev[key] for key in ("W", "W_ih", "W_hh", "b_ih", "b_hh", "h0")}
        init["Q"], init["b"] = np.zeros((n, f)), np.zeros(n)
        for row, i in enumerate(log.feature_ids):  # id vectors of items still in the window
            if i in prev_ids:
                init["Q"][row] = prev["Q"][np.flatnonzero(prev_ids == i)[0]]
                init["b"][row] = prev["b"][np.flatnonzero(prev_ids == i)[0]]
    weights = None
    if p.debias != "none":
        weights = np.zeros(seqs.shape, np.float32)
        weights[valid] = click_weights(log, seqs[valid], p)
    rows = np.where(valid, np.searchsorted(log.feature_ids, seqs), -1)
    key = (SEED, "agent/gru4rec/train", k)
    out = train_gru4rec(rows, init, log.features, p, weights=weights, seed_key=key)
    out["V"] = log.features @ out["W"] + out["Q"]
    return out


@pytest.mark.parametrize(
    "keys",
    [
        {"factors": 3, "batch_size": 2, "epochs": 2, "num_negatives": 3, "init_scale": 0.4},
        {"factors": 2, "batch_size": 4, "debias": "ips", "l2": 0.3, "lr": 0.1},
        {"factors": 4, "batch_size": 3, "debias": "snips", "min_propensity": 0.5},
    ],
)
def test_gru4rec_retrains_are_the_documented_fits(keys):
    """Keyed init, then a warm start that keeps the id vectors of items still logged."""
    p = GRU4RecAgent.Params(**keys)
    agent = GRU4RecAgent(p, ctx())
    logs = [window_log(1), window_log(2, ids=np.array([2, 5, 14, 30, 31, 40]))]
    prev = prev_ids = None
    for k, log in enumerate(logs):
        agent.retrain(log)
        want = gru_by_hand(log, p, k, prev, prev_ids)
        state = agent.state_dict()
        assert state["num_retrains"] == k + 1
        assert {key[6:] for key in state if key.startswith("model.")} == set(want)
        for key in want:
            got = state[f"model.{key}"]
            assert got.dtype == np.float32, key
            np.testing.assert_allclose(got, want[key], rtol=1e-6, atol=1e-7, err_msg=key)
        prev, prev_ids = want, log.feature_ids


def test_gru4rec_skips_a_window_without_clicks_or_with_one_item():
    """No click or a single logged item: still untrained (random slates)."""
    agent = GRU4RecAgent(GRU4RecAgent.Params(factors=2), ctx())
    log = window_log(3)
    agent.retrain(Log(log.step, log.user_ids, log.slates, np.full(30, -1),
                      np.zeros(30, np.float32), log.feature_ids, log.features))  # fmt: skip
    agent.retrain(one_item_log())
    assert agent.state_dict()["num_retrains"] == 0 and "model.W" not in agent.state_dict()
    agent.retrain(window_log(4, ids=np.array([3, 8])))
    assert agent.state_dict()["num_retrains"] == 1


@pytest.mark.parametrize("cls", [MatrixFactorizationAgent, GRU4RecAgent])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_click_in_the_first_slot_is_a_click(cls, seed):
    """A window whose only clicks are in slot 0 (``clicked_pos == 0``) is trained on."""
    log = window_log(seed)
    first = np.where(log.clicked_pos >= 0, 0, -1)
    first[seed] = 0  # at least one click
    log = Log(log.step, log.user_ids, log.slates, first, (first >= 0).astype(np.float32),
              log.feature_ids, log.features)  # fmt: skip
    agent = cls(cls.Params(factors=2), ctx())
    agent.retrain(log)
    assert agent.state_dict()["num_retrains"] == 1 and "model.W" in agent.state_dict()


def states_by_hand(agent: GRU4RecAgent, obs: Observation) -> np.ndarray:
    """User by user, torch's GRU cell over the usable history.

    The first ``max_length`` history items, oldest first, those in the window (their
    ``V`` row) or live (features through ``W``).
    """
    m = {k[6:]: torch.from_numpy(v) for k, v in agent.state_dict().items() if k[:6] == "model."}
    window = agent.state_dict()["item_ids"]
    cat = obs.catalog
    out = []
    for hist in obs.history:
        h = m["h0"][None, :]
        for i in hist[: agent.params.max_length][::-1]:
            if i in window:
                x = m["V"][np.flatnonzero(window == i)[0]]
            elif i != PAD and i in cat.item_ids:
                f = torch.from_numpy(np.array(cat.features[np.flatnonzero(cat.item_ids == i)[0]]))
                x = f @ m["W"]
            else:
                continue
            h = torch.gru_cell(x[None, :], h, m["W_ih"].T, m["W_hh"].T, m["b_ih"], m["b_hh"])
        out.append(h[0].numpy())
    return np.array(out)


@pytest.mark.parametrize("max_length", [2, 4, 10])
def test_gru4rec_serves_random_then_its_state_after_the_usable_history(max_length):
    """History most recent first, ``PAD``, retired and cold items mixed; top-K by score."""
    p = GRU4RecAgent.Params(factors=3, epochs=2, max_length=max_length, batch_size=3)
    agent = GRU4RecAgent(p, ctx())
    rng = np.random.default_rng(9)
    cand_ids = np.array([5, 7, 9, 20, 21, 33])  # 7, 21, 33 live but not in the window
    feats = rng.normal(size=(6, D))
    history = np.array(
        [
            [PAD, PAD, PAD, PAD, PAD],
            [14, PAD, PAD, PAD, PAD],  # 14 in the window only (it has retired)
            [7, 99, 5, 2, PAD],  # 99: neither logged nor live
            [21, 33, 9, 20, 7],
            [99, 98, 97, 5, 9],
            [2, 14, 9, 99, 33],
        ]
    )
    obs = observation(history, cand_ids, feats, 3, True, rng)
    want = random_slates(Stream(SEED, "agent/gru4rec/random"), obs)
    np.testing.assert_array_equal(agent.act(obs).item_ids, want)
    agent.retrain(window_log(10))
    states = agent.user_states(obs)
    assert states.shape == (USERS, 3) and states.dtype == np.float32
    np.testing.assert_allclose(states, states_by_hand(agent, obs), rtol=1e-5, atol=1e-6)
    model = {k[6:]: v for k, v in agent.state_dict().items() if k.startswith("model.")}
    want = top_by_hand(states.astype(np.float64), obs, model, ITEM_IDS)
    np.testing.assert_array_equal(agent.act(obs).item_ids, want)
