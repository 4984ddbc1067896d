"""The generative agent's wiring against references built from its checked parts.

A retrain equals the quantiser, the code table and the training loop called by hand with the
documented stream keys and steps (cold and warm, with the example cap); serving equals an
exhaustive scoring of every candidate's full code by the model (a beam at least as wide as
the candidates is exact), with unreachable items after the beam by their first-code score;
new items take the next free disambiguation token; histories are read most recent last; a
tiny model and log keep each case in milliseconds.
"""

from __future__ import annotations

import copy
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import simlab.agents.generative as generative
from simlab.agents.base import random_slates
from simlab.agents.generative import SemanticIDAgent
from simlab.agents.generative_model import (
    SemanticIDTransformer,
    _init_weights,
    click_sequences,
    train_semantic_transformer,
)
from simlab.agents.generative_quantiser import dedup_tokens, encode_residual, fit_residual_kmeans
from simlab.batch import PAD, Catalog, Log, Observation
from simlab.errors import ScenarioError
from simlab.rng import Stream, torch_generator

TINY = {
    "quantiser": {"levels": 2, "codebook_size": 2, "dedup_size": 2, "iterations": 3},
    "transformer": {"dim": 8, "layers": 1, "heads": 2, "ff_dim": 8, "max_history": 3},
    "training": {"epochs": 2, "batch_size": 16, "lr": 0.05},
}
NUM_ITEMS = 14


def make_agent(seed: int = 0, **params) -> SemanticIDAgent:
    """A CPU agent with the tiny settings, overridden by ``params``."""
    p = SemanticIDAgent.Params(**{"device": "cpu", **TINY, **params})
    return SemanticIDAgent(p, SimpleNamespace(seed=seed, num_users=100, dim=4))


def make_log(seed: int, steps=(0, 1, 2, 3), users: int = 12) -> Log:
    """Users clicking among items ``0..13`` (some rows without a click), all features known."""
    rng = np.random.default_rng(seed)
    rows = len(steps) * users
    return Log(
        step=np.repeat(np.asarray(steps), users),
        user_ids=np.tile(np.arange(users), len(steps)),
        slates=np.stack([rng.permutation(NUM_ITEMS)[:3] for _ in range(rows)]).astype(np.int64),
        clicked_pos=rng.integers(-1, 3, size=rows),
        engagement=np.ones(rows, np.float32),
        feature_ids=np.arange(NUM_ITEMS, dtype=np.int64),
        features=feature_table(seed),
    )


def feature_table(seed: int, n: int = NUM_ITEMS) -> np.ndarray:
    """``(n, 4)`` float32 item features in a few clusters (code collisions happen)."""
    rng = np.random.default_rng(100 + seed)
    centres = rng.normal(size=(3, 4)) * 3
    return (centres[np.arange(n) % 3] + 0.3 * rng.normal(size=(n, 4))).astype(np.float32)


def observation(catalog, history, candidates=None, step=7) -> Observation:
    """Users ``0..B-1`` with ``history`` (most recent first); all items as shared candidates."""
    b = history.shape[0]
    shared = candidates is None
    if shared:
        candidates = np.broadcast_to(catalog.item_ids, (b, catalog.num_items))
    return Observation(
        step=step,
        user_ids=np.arange(b, dtype=np.int64),
        user_features=np.zeros((b, 1), np.float32),
        history=np.asarray(history, np.int64),
        candidates=candidates,
        catalog=catalog,
        slate_size=4,
        shared_candidates=shared,
    )


def make_catalog(item_ids, features) -> Catalog:
    """A catalog of ``item_ids`` with ``features``."""
    n = len(item_ids)
    zeros = np.zeros(n, np.int64)
    return Catalog(np.asarray(item_ids, np.int64), np.asarray(features, np.float32), zeros, zeros)


# ----------------------------------------------------------------------------- settings
def test_defaults_and_beam_width_bounds():
    """Agent-level defaults (sections have theirs in test_generative_params.py)."""
    p = SemanticIDAgent.Params()
    assert (p.beam_width, p.device) == (16, "auto")
    assert p.quantiser.levels == 3 and p.training.epochs == 5 and not p.prefix_loss.enabled
    assert p.transformer.dim == 32
    assert SemanticIDAgent.Params(beam_width=4096).beam_width == 4096
    for bad in (0, 4097):
        with pytest.raises(ValueError, match="beam_width"):
            SemanticIDAgent.Params(beam_width=bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_devices_without_a_gpu():
    """``auto`` and ``cpu`` give the CPU (served from replicas); ``cuda`` is refused."""
    for name in ("auto", "cpu"):
        agent = SemanticIDAgent(
            SemanticIDAgent.Params(device=name), SimpleNamespace(seed=0, num_users=1, dim=4)
        )
        assert agent._device == "cpu" and agent.serving_blocker() is None
    message = "Expects `device` 'cuda' to find a CUDA device, but torch.cuda.is_available() is "
    with pytest.raises(ScenarioError, match=re.escape(message + "False; use 'auto' or 'cpu'")):
        make_agent(device="cuda")
    agent = make_agent()
    agent._device = "cuda:1"  # as a GPU agent would hold it
    assert agent.serving_blocker() == "serves on cuda:1 in the trial actor"


# ----------------------------------------------------------------------------- retrain
def reference_retrain(seed, params, log, num_retrains, previous=None):
    """Codebooks, code table and weights from the parts, as the docstrings describe them."""
    q, t = params.quantiser, params.transformer
    hist, target, steps = click_sequences(log, t.max_history)
    if target.size > params.training.max_examples:  # the most recent, earlier rows first
        keep = sorted(
            sorted(range(target.size), key=lambda i: (-steps[i], i))[: params.training.max_examples]
        )
        hist, target = hist[keep], target[keep]
    books = fit_residual_kmeans(
        log.features, q.levels, q.codebook_size, iterations=q.iterations, seed=seed,
        step=num_retrains, init=None if previous is None else previous["codebooks"],
    )  # fmt: skip
    sem = encode_residual(log.features, books)
    codes = np.concatenate([sem, dedup_tokens(sem, log.feature_ids)[:, None]], 1)
    row = {int(i): r for r, i in enumerate(log.feature_ids)}
    hist_codes = np.array([[codes[row[i]] if i != PAD else [-1] * 3 for i in h] for h in hist])
    target_codes = codes[[row[int(i)] for i in target]]
    ok = target_codes[:, -1] < q.dedup_size
    sizes = [q.codebook_size] * q.levels + [q.dedup_size]
    with torch.random.fork_rng(devices=[]):
        model = SemanticIDTransformer(sizes, t)
    if previous is None:
        _init_weights(model, torch_generator(seed, "agent/generative/init", 0))
    else:
        model.load_state_dict(
            {k[6:]: torch.from_numpy(v) for k, v in previous.items() if k.startswith("model.")}
        )
    gen = torch_generator(seed, "agent/generative/batches", num_retrains)
    train_semantic_transformer(
        model, hist_codes[ok], target_codes[ok], params.training, params.prefix_loss, gen
    )
    return books, codes, model.state_dict()


def assert_state(agent, books, codes, weights, num_retrains, item_ids):
    """The agent's state dict holds exactly these parts."""
    state = agent.state_dict()
    assert state["num_retrains"] == num_retrains
    np.testing.assert_array_equal(state["item_ids"], item_ids)
    np.testing.assert_array_equal(state["codes"], codes)
    np.testing.assert_array_equal(state["codebooks"], books)
    assert {k for k in state if k.startswith("model.")} == {f"model.{k}" for k in weights}
    for k, v in weights.items():
        np.testing.assert_array_equal(state[f"model.{k}"], v.numpy(), err_msg=k)


@pytest.mark.parametrize("seed", [0, 1])
def test_two_retrains_cold_then_warm_equal_the_parts(seed):
    """Retrain 0 from keyed draws; retrain 1 from the previous codebooks and weights."""
    agent = make_agent(seed)
    before = torch.random.get_rng_state().clone()
    log = make_log(seed)
    agent.retrain(log)
    books, codes, weights = reference_retrain(seed, agent.params, log, 0)
    assert_state(agent, books, codes, weights, 1, log.feature_ids)
    assert (codes[:, -1] >= 2).any()  # some items beyond the disambiguation vocabulary
    previous = copy.deepcopy(agent.state_dict())
    log2 = make_log(seed + 5, steps=(4, 5))
    agent.retrain(log2)
    books, codes, weights = reference_retrain(seed, agent.params, log2, 1, previous)
    assert_state(agent, books, codes, weights, 2, log2.feature_ids)
    assert torch.equal(before, torch.random.get_rng_state())


def test_without_warm_start_every_retrain_starts_afresh():
    """``warm_start: false``: retrain 1 draws new codebooks (step 1) and initial weights."""
    agent = make_agent(2, training={**TINY["training"], "warm_start": False})
    agent.retrain(make_log(2))
    log2 = make_log(9, steps=(4, 5))
    agent.retrain(log2)
    books, codes, weights = reference_retrain(2, agent.params, log2, 1)
    assert_state(agent, books, codes, weights, 2, log2.feature_ids)


def test_the_example_cap_keeps_the_most_recent_clicks():
    """``max_examples`` below the window's clicks: the latest steps, earlier rows on ties."""
    agent = make_agent(3, training={**TINY["training"], "max_examples": 7})
    log = make_log(3)
    agent.retrain(log)
    books, codes, weights = reference_retrain(3, agent.params, log, 0)
    assert_state(agent, books, codes, weights, 1, log.feature_ids)
    uncapped = make_agent(3)
    uncapped.retrain(log)
    assert not np.array_equal(uncapped.state_dict()["model.head.bias"], weights["head.bias"])


@pytest.mark.parametrize("what", ["no clicks", "no features"])
def test_a_window_without_clicks_or_features_changes_nothing(what):
    """Nothing to learn from: the agent stays untrained (random slates)."""
    log = make_log(0)
    clicked = np.full(log.step.size, -1) if what == "no clicks" else log.clicked_pos
    known = {"feature_ids": log.feature_ids, "features": log.features}
    log = Log(
        log.step, log.user_ids, log.slates, clicked, log.engagement,
        **(known if what == "no clicks" else {}),
    )  # fmt: skip
    agent = make_agent()
    agent.retrain(log)
    assert agent.state_dict()["num_retrains"] == 0 and agent._model is None


# ----------------------------------------------------------------------------- serving
@pytest.fixture(scope="module")
def trained() -> SemanticIDAgent:
    """An agent after one retrain on the log of seed 0."""
    torch.set_num_threads(1)
    agent = make_agent(0)
    agent.retrain(make_log(0))
    return agent


def test_live_codes_of_new_items_take_the_next_free_token(trained):
    """Known ids keep their codes; new ones: encoded, ``d`` after the known and earlier new.

    The table loses the items of item 0's group, so new items there start again from 0.
    """
    agent = copy.deepcopy(trained)
    keep = (agent._codes[:, :2] != agent._codes[0, :2]).any(1)
    agent._item_ids, agent._codes = agent._item_ids[keep], agent._codes[keep]
    feats = feature_table(0)
    # ids 3, 7 and 12 keep their features; the others copy those of items 0, 4, 1, 2, 5, 0
    ids = np.array([3, 100, 7, 105, 101, 12, 130, 104, 99], np.int64)
    catalog = make_catalog(ids, feats[[3, 0, 7, 4, 1, 12, 2, 5, 0]])
    got = agent._live_codes(catalog)
    books, table, known = agent._codebooks, agent._codes, agent._item_ids
    sem = encode_residual(catalog.features, books)
    for r, item in enumerate(ids):
        if item in known:
            np.testing.assert_array_equal(got[r], table[list(known).index(item)])
            continue
        same_known = sum((table[:, :2] == sem[r]).all(1))
        same_new = sum(
            1
            for j, other in enumerate(ids)
            if other not in known and other < item and (sem[j] == sem[r]).all()
        )
        np.testing.assert_array_equal(got[r], [*sem[r], same_known + same_new])
    emptied = np.flatnonzero((sem == sem[8]).all(1))  # no known item left in this group
    assert got[emptied[np.argsort(ids[emptied])], -1].tolist() == list(range(emptied.size))
    assert emptied.size >= 2
    assert got[[3, 4, 6, 7], -1].min() >= 1  # groups with known items
    assert agent._live_codes(catalog) is got  # cached for the same catalog object
    agent.retrain(make_log(1))
    assert agent._live_codes(catalog) is not got  # a retrain drops the cache


def test_history_codes_are_the_most_recent_items_last(trained):
    """At most ``max_history`` items, oldest first; retired items keep their old codes."""
    agent = copy.deepcopy(trained)
    feats = feature_table(0)
    catalog = make_catalog(
        np.array([2, 5, 9, 200]), np.stack([feats[2], feats[5], feats[9], feats[0]])
    )
    history = np.array(
        [
            [9, 4, 200, 2, 5],  # 4 is retired (in the agent's table only); 2 and 5 are cut
            [777, PAD, PAD, PAD, PAD],  # an id neither table knows
            [PAD, PAD, PAD, PAD, PAD],
            [5, 2, PAD, PAD, PAD],
        ]
    )
    obs = observation(catalog, history)
    live = agent._live_codes(catalog)
    got = agent._history_codes(obs, live)
    assert got.shape == (4, 3, 3)

    def code(item):
        if item in catalog.item_ids:
            return live[list(catalog.item_ids).index(item)].tolist()
        if item in agent._item_ids:
            return agent._codes[list(agent._item_ids).index(item)].tolist()
        return [-1, -1, -1]

    for b, row in enumerate(history):
        recent = [int(i) for i in row[:3]][::-1]
        assert got[b].tolist() == [code(i) if i != PAD else [-1] * 3 for i in recent]


def full_scores(agent, hist_row, codes) -> np.ndarray:
    """``(C,)`` summed log-probabilities of each whole code under teacher forcing."""
    model, c = agent._model, codes.shape[0]
    with torch.no_grad():
        h = model(torch.as_tensor(hist_row)[None].expand(c, -1, -1), torch.as_tensor(codes[:, :-1]))
        total = torch.zeros(c, dtype=torch.float64)
        for lv in range(codes.shape[1]):
            logp = torch.log_softmax(model.logits(h[:, lv], lv), -1)
            total += logp[torch.arange(c), torch.as_tensor(codes[:, lv])].double()
    return total.numpy()


def first_code_scores(agent, hist_row) -> np.ndarray:
    """``(V,)`` log-probabilities of the first code at BOS (the fallback score)."""
    with torch.no_grad():
        h, _ = agent._model.start(torch.as_tensor(hist_row)[None])
        return torch.log_softmax(agent._model.logits(h, 0), -1)[0].numpy()


def check_slates(agent, obs, slates):
    """Reachable candidates by full score first (the beam is exact), then the fallback."""
    live = agent._live_codes(obs.catalog)
    hist = agent._history_codes(obs, live)
    k = obs.slate_size
    for b in range(obs.num_users):
        cands = obs.candidates[b]
        codes = live[obs.catalog.rows(cands)]
        reach = codes[:, -1] < agent.params.quantiser.dedup_size
        score = np.full(len(cands), -np.inf)
        score[reach] = full_scores(agent, hist[b], codes[reach])
        beam = [int(cands[j]) for j in sorted(np.flatnonzero(reach), key=lambda j: -score[j])]
        n = min(k, len(beam))
        assert slates[b, :n].tolist() == beam[:n]
        if n < k:  # the rest by the first code's log-probability, best first
            first = first_code_scores(agent, hist[b])
            fb = {int(c): first[codes[j, 0]] for j, c in enumerate(cands) if not reach[j]}
            filled = [fb[int(c)] for c in slates[b, n:]]
            assert filled == sorted(filled, reverse=True)
            others = [v for c, v in fb.items() if c not in slates[b]]
            assert all(v <= filled[-1] + 1e-6 for v in others)
        assert len(set(slates[b].tolist())) == k


def history_rows(seed: int, users: int = 6) -> np.ndarray:
    """``(U, 5)`` histories over items ``0..13`` (most recent first), some short or empty."""
    rng = np.random.default_rng(seed)
    hist = rng.integers(0, NUM_ITEMS, size=(users, 5))
    hist[1, 2:] = PAD
    hist[2] = PAD
    return hist


def test_shared_candidates_get_the_top_reachable_codes(trained):
    """All items shared by every user; the beam covers every reachable item."""
    catalog = make_catalog(np.arange(NUM_ITEMS), feature_table(0))
    obs = observation(catalog, history_rows(0))
    slates = trained.act(obs).item_ids
    assert slates.shape == (6, 4)
    check_slates(trained, obs, slates)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_user_candidates_fill_from_the_fallback_when_the_beam_is_short(trained, seed):
    """Six candidates per user, most of them beyond the disambiguation vocabulary."""
    rng = np.random.default_rng(seed)
    catalog = make_catalog(np.arange(NUM_ITEMS), feature_table(0))
    unreachable = np.flatnonzero(trained._codes[:, -1] >= 2)
    reachable = np.flatnonzero(trained._codes[:, -1] < 2)
    assert unreachable.size >= 6 and reachable.size >= 6
    cands = np.stack(
        [
            rng.permutation(
                np.concatenate(
                    [
                        rng.choice(reachable, n, replace=False),
                        rng.choice(unreachable, 6 - n, replace=False),
                    ]
                )
            )
            for n in (0, 1, 2, 3, 5, 6)  # reachable candidates of each user
        ]
    )
    obs = observation(catalog, history_rows(seed), cands.astype(np.int64))
    slates = trained.act(obs).item_ids
    check_slates(trained, obs, slates)


def test_chunks_and_shared_tables_give_the_same_slates(trained, monkeypatch):
    """Users served in chunks of 3, or with per-user copies of the shared candidates."""
    catalog = make_catalog(np.arange(NUM_ITEMS), feature_table(0))
    history = history_rows(5, users=8)
    whole = trained.act(observation(catalog, history)).item_ids
    per_user = np.tile(np.arange(NUM_ITEMS), (8, 1))[:, ::-1].copy()
    listed = trained.act(observation(catalog, history, per_user)).item_ids
    monkeypatch.setattr(generative, "_CHUNK", 3)
    np.testing.assert_array_equal(trained.act(observation(catalog, history)).item_ids, whole)
    np.testing.assert_array_equal(
        trained.act(observation(catalog, history, per_user)).item_ids, listed
    )
    np.testing.assert_array_equal(np.sort(listed, 1), np.sort(whole, 1))


def test_the_beam_is_at_least_as_wide_as_the_slate(trained):
    """``beam_width: 1`` serves the same slates as a beam of K."""
    catalog = make_catalog(np.arange(NUM_ITEMS), feature_table(0))
    obs = observation(catalog, history_rows(3))
    narrow, wide = copy.deepcopy(trained), copy.deepcopy(trained)
    narrow.params = narrow.params.model_copy(update={"beam_width": 1})
    wide.params = wide.params.model_copy(update={"beam_width": 4})
    np.testing.assert_array_equal(narrow.act(obs).item_ids, wide.act(obs).item_ids)


def test_random_slates_before_the_first_retrain_and_for_no_users():
    """Untrained: the keyed uniform slates of ``agent/generative/random``; no user: none."""
    catalog = make_catalog(np.arange(NUM_ITEMS), feature_table(0))
    obs = observation(catalog, history_rows(0))
    agent = make_agent(4)
    want = random_slates(Stream(4, "agent/generative/random"), obs)
    np.testing.assert_array_equal(agent.act(obs).item_ids, want)
    empty = observation(catalog, np.zeros((0, 5), np.int64))
    assert agent.act(empty).item_ids.shape == (0, 4)


def test_state_round_trip_serves_the_same_slates(trained):
    """A fresh agent loading the state serves identically; an untrained state loads untrained."""
    catalog = make_catalog(np.arange(NUM_ITEMS), feature_table(0))
    obs = observation(catalog, history_rows(1))
    fresh = make_agent(0)
    untrained = copy.deepcopy(fresh.state_dict())
    assert set(untrained) == {"num_retrains", "item_ids", "codes"}
    assert untrained["codes"].shape == (0, 2 + 1)  # no item yet, L codes and d per row
    assert untrained["codes"].dtype == untrained["item_ids"].dtype == np.int64
    fresh.load_state_dict(copy.deepcopy(trained.state_dict()))
    assert fresh._codebooks.dtype == np.float32
    np.testing.assert_array_equal(fresh.act(obs).item_ids, trained.act(obs).item_ids)
    fresh.load_state_dict(untrained)
    assert fresh._model is None and fresh._codebooks is None and fresh._cache is None


@pytest.mark.parametrize("shared", [True, False])
def test_a_code_space_smaller_than_the_slate_is_filled_by_the_fallback(shared):
    """Two codes only (``V = 2``, ``L = 1``, ``D = 1``): two beam items, then the fallback."""
    agent = make_agent(6, quantiser={"levels": 1, "codebook_size": 2, "dedup_size": 1})
    agent.retrain(make_log(6))
    catalog = make_catalog(np.arange(NUM_ITEMS), feature_table(6))
    cands = None if shared else np.tile(np.arange(NUM_ITEMS)[::-1], (6, 1)).copy()
    obs = observation(catalog, history_rows(6), cands)
    slates = agent.act(obs).item_ids
    check_slates(agent, obs, slates)
    live = agent._live_codes(catalog)
    assert (live[catalog.rows(slates[:, :2])][..., -1] == 0).all()  # the two reachable items


def test_a_history_shorter_than_max_history_is_left_padded(trained):
    """Two history columns, ``max_history`` 3: one leading pad slot, then oldest to newest."""
    catalog = make_catalog(np.arange(NUM_ITEMS), feature_table(0))
    obs = observation(catalog, np.array([[4, 9], [PAD, PAD], [1, PAD]]))
    live = trained._live_codes(catalog)
    got = trained._history_codes(obs, live)
    pad = [-1, -1, -1]
    assert got.tolist() == [
        [pad, live[9].tolist(), live[4].tolist()],
        [pad, pad, pad],
        [pad, pad, live[1].tolist()],
    ]


def test_serves_from_replicas_on_the_cpu():
    """A CPU model is published to replicas (the class's serving mode)."""
    assert SemanticIDAgent.serving == "replica"
    assert make_agent().serving_blocker() is None
