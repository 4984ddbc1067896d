"""Tests of the re-rankers in ``simlab.agents.rerank``: contracts, formulas, and a world run."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from simlab.agents.rerank import (
    ExplorationFloorReranker,
    MMRReranker,
    PopularityPenaltyReranker,
    StyleRemovalReranker,
)
from simlab.agents.rerank_groups import (
    CalibrationReranker,
    FairReranker,
    XQuADReranker,
    binom_cdf,
    fair_quotas,
)
from simlab.batch import PAD, Catalog, Feedback, Observation
from simlab.errors import ScenarioError
from simlab.testing import tiny_scenario
from simlab.world import World

# (id, class, params, needs source labels)
RERANKERS: list[tuple[str, type, dict[str, Any], bool]] = [
    ("popularity-penalty", PopularityPenaltyReranker, {}, False),
    ("calibration", CalibrationReranker, {"num_clusters": 3}, False),
    ("calibration-source", CalibrationReranker, {"groups": "source"}, True),
    ("mmr", MMRReranker, {"lam": 0.3}, False),
    ("xquad", XQuADReranker, {}, False),
    ("xquad-source", XQuADReranker, {"groups": "source"}, True),
    ("fair", FairReranker, {}, False),
    ("fair-aigc", FairReranker, {"protected": "aigc", "p": 0.6}, True),
    ("exploration-floor", ExplorationFloorReranker, {"slots": 2}, False),
    ("style-removal", StyleRemovalReranker, {"weight": 1.0}, True),
]
IDS = [r[0] for r in RERANKERS]


def make_obs(
    features: np.ndarray,
    ranked: np.ndarray,
    history: np.ndarray | None = None,
    source: np.ndarray | None = None,
    step: int = 0,
) -> Observation:
    """An observation over a catalog of items ``0..N-1`` whose candidates are ``ranked``."""
    n = features.shape[0]
    catalog = Catalog(
        item_ids=np.arange(n, dtype=np.int64),
        features=np.asarray(features, np.float32),
        creator=np.arange(n, dtype=np.int64) % 3,
        age=np.zeros(n, np.int64),
        source=None if source is None else np.asarray(source, np.int8),
    )
    b, length = ranked.shape
    if history is None:
        history = np.full((b, 3), PAD, np.int64)
    return Observation(
        step=step,
        user_ids=np.arange(b, dtype=np.int64) * 7,
        user_features=np.zeros((b, 1), np.float32),
        history=np.asarray(history, np.int64),
        candidates=ranked,
        catalog=catalog,
        slate_size=length,
    )


def build(cls: type, k: int, seed: int = 0, **params: Any):
    """A re-ranker with a minimal world context (seed, slate size K, dim)."""
    return cls(cls.Params(**params), SimpleNamespace(seed=seed, slate_size=k, dim=4))


def feedback(slates: np.ndarray, step: int = 0) -> Feedback:
    """Feedback for ``(B, K)`` slates without clicks."""
    b = slates.shape[0]
    return Feedback(
        step=step,
        user_ids=np.arange(b, dtype=np.int64),
        slates=np.asarray(slates, np.int64),
        clicked_pos=np.full(b, -1, np.int64),
        engagement=np.zeros(b, np.float32),
    )


# ---------------------------------------------------------------------------- contract
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("name", "cls", "params", "labels"), RERANKERS, ids=IDS)
def test_each_row_is_a_permutation_of_the_input_row(name, cls, params, labels, seed):
    """On random inputs every output row holds exactly the items of its input row."""
    rng = np.random.default_rng(seed)
    n, b, length, k = 40, 9, 12, 4
    feats = rng.normal(size=(n, 4))
    ranked = np.stack([rng.permutation(n)[:length] for _ in range(b)]).astype(np.int64)
    history = rng.integers(0, n, size=(b, 5))
    history[rng.random((b, 5)) < 0.4] = PAD
    history[0] = PAD  # one user without history
    source = rng.integers(0, 2, size=n) if labels else None
    rr = build(cls, k, seed=seed, **params)
    rr.update(feedback(rng.integers(0, n, size=(b, k))))
    out = rr.rerank(make_obs(feats, ranked, history, source, step=seed), ranked)
    assert out.shape == ranked.shape
    np.testing.assert_array_equal(np.sort(out, axis=1), np.sort(ranked, axis=1))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("name", "cls", "params", "labels"), RERANKERS, ids=IDS)
def test_a_users_row_does_not_depend_on_who_else_is_served(name, cls, params, labels, seed):
    """Each user's row re-ranked alone equals the user's row of the whole batch."""
    rng = np.random.default_rng(100 + seed)
    n, b, length, k = 40, 6, 12, 4
    feats = rng.normal(size=(n, 4))
    ranked = np.stack([rng.permutation(n)[:length] for _ in range(b)]).astype(np.int64)
    history = rng.integers(0, n, size=(b, 5))
    history[rng.random((b, 5)) < 0.4] = PAD
    source = rng.integers(0, 2, size=n) if labels else None
    rr = build(cls, k, seed=seed, **params)
    rr.update(feedback(rng.integers(0, n, size=(b, k))))
    obs = make_obs(feats, ranked, history, source, step=seed)
    whole = rr.rerank(obs, ranked)
    for row in range(b):
        one = slice(row, row + 1)
        alone = Observation(
            step=obs.step,
            user_ids=obs.user_ids[one],
            user_features=obs.user_features[one],
            history=obs.history[one],
            candidates=ranked[one],
            catalog=obs.catalog,
            slate_size=obs.slate_size,
        )
        np.testing.assert_array_equal(rr.rerank(alone, ranked[one])[0], whole[row], err_msg=name)


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (CalibrationReranker, {"groups": "source"}),
        (XQuADReranker, {"groups": "source"}),
        (FairReranker, {"protected": "human"}),
        (StyleRemovalReranker, {}),
    ],
)
def test_source_groups_without_labels_name_the_fix(cls, params):
    """A re-ranker that needs source labels fails with a ScenarioError naming knows_source."""
    ranked = np.arange(6, dtype=np.int64)[None]
    obs = make_obs(np.eye(6), ranked)
    with pytest.raises(ScenarioError, match=re.escape("set platform.knows_source: true")):
        build(cls, 3, **params).rerank(obs, ranked)


# ---------------------------------------------------------------------------- MMR
def mmr_case() -> tuple[np.ndarray, np.ndarray]:
    """Items 0-2 point along e1, item 3 along e2, items 4-5 near e1."""
    feats = np.array([[1, 0], [1, 0.05], [1, -0.05], [0, 1], [1, 0.1], [1, 0.2]], float)
    return feats, np.arange(6, dtype=np.int64)[None]


def test_mmr_with_lambda_one_keeps_the_order():
    """With lam = 1 similarity is ignored: the agent's order is kept."""
    feats, ranked = mmr_case()
    out = build(MMRReranker, 3, lam=1.0).rerank(make_obs(feats, ranked), ranked)
    np.testing.assert_array_equal(out, ranked)


def test_mmr_with_small_lambda_puts_the_dissimilar_item_second():
    """With lam small the item orthogonal to the top item moves up to position 1."""
    feats, ranked = mmr_case()
    out = build(MMRReranker, 3, lam=0.2).rerank(make_obs(feats, ranked), ranked)
    assert out[0, :2].tolist() == [0, 3]
    assert out[0, 2:].tolist() == [1, 2, 4, 5]  # the rest in the agent's order


# ---------------------------------------------------------------------------- calibration
def kl(p: np.ndarray, q: np.ndarray, a: float = 0.01) -> float:
    """KL(p || (1 - a) q + a p) with 0 log 0 = 0."""
    q = (1 - a) * q + a * p
    m = p > 0
    return float((p[m] * np.log(p[m] / q[m])).sum())


def two_cluster_catalog(seed: int = 0) -> np.ndarray:
    """Items 0-9 near (10, 0), items 10-19 near (0, 10)."""
    rng = np.random.default_rng(seed)
    centres = np.repeat([[10.0, 0.0], [0.0, 10.0]], 10, axis=0)
    return centres + 0.1 * rng.normal(size=(20, 2))


def test_calibration_moves_the_slate_mix_toward_the_history_mix():
    """A 50/50 history and a one-cluster top K: the calibrated top K has a smaller KL."""
    feats = two_cluster_catalog()
    ranked = np.array([[0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]], np.int64)
    history = np.array([[1, 11, 2, 12]])
    k = 4
    out = build(CalibrationReranker, k, num_clusters=2).rerank(
        make_obs(feats, ranked, history), ranked
    )
    p = np.array([0.5, 0.5])

    def mix(items: np.ndarray) -> np.ndarray:
        return np.bincount(items >= 10, minlength=2) / items.size

    assert kl(p, mix(out[0, :k])) < kl(p, mix(ranked[0, :k])) - 1.0
    assert 1 <= (out[0, :k] >= 10).sum() <= 3


def test_calibration_keeps_the_order_of_users_without_history():
    """A user with an empty (or all-retired) history keeps the agent's order."""
    feats = two_cluster_catalog()
    ranked = np.array([[0, 1, 2, 3, 10, 11], [0, 1, 2, 3, 10, 11]], np.int64)
    history = np.array([[10, 11], [PAD, PAD]])
    out = build(CalibrationReranker, 3, num_clusters=2).rerank(
        make_obs(feats, ranked, history), ranked
    )
    np.testing.assert_array_equal(out[1], ranked[1])
    assert (out[0, :3] >= 10).any()


# ---------------------------------------------------------------------------- xQuAD
def test_xquad_with_lambda_zero_keeps_the_order():
    """With lam = 0 xQuAD is pure relevance: the agent's order is kept."""
    ranked = np.arange(8, dtype=np.int64)[None]
    source = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    obs = make_obs(np.eye(8), ranked, np.array([[4, 5]]), source)
    out = build(XQuADReranker, 4, lam=0.0, groups="source").rerank(obs, ranked)
    np.testing.assert_array_equal(out, ranked)


def test_xquad_raises_the_share_of_the_under_served_source():
    """AIGC fills the agent's top 4; a human-heavy history gets human items promoted."""
    ranked = np.arange(12, dtype=np.int64)[None]
    source = np.array([1] * 6 + [0] * 6)
    obs = make_obs(np.eye(12), ranked, np.array([[6, 7, 8, 0]]), source)

    def humans(lam: float) -> int:
        out = build(XQuADReranker, 4, lam=lam, groups="source").rerank(obs, ranked)
        return int((source[out[0, :4]] == 0).sum())

    # by hand, lam = 0.5: AIGC 0 (tie 0.625 with human 6), human 6, AIGC 1, AIGC 2
    assert humans(0.0) == 0 < humans(0.5) == 1 < humans(0.9)


def test_xquad_head_tail_promotes_tail_items_for_tail_users():
    """Exposure makes items 0-3 head; a tail-only history pulls tail items into the top 4."""
    n = 20
    ranked = np.arange(12, dtype=np.int64)[None]
    rr = build(XQuADReranker, 4, lam=0.5, head_share=0.2)
    rr.update(feedback(np.tile(np.arange(4), (5, 1))))
    out = rr.rerank(make_obs(np.eye(n), ranked, np.array([[10, 11, 12]])), ranked)
    assert (out[0, :4] >= 4).sum() >= 2


# ---------------------------------------------------------------------------- FA*IR
def test_binomial_cdf_matches_the_closed_form():
    """The numpy binomial CDF equals sums of comb(t, x) p^x (1-p)^(t-x)."""
    for t, p in [(1, 0.5), (5, 0.5), (7, 0.3), (12, 0.8)]:
        exact = np.cumsum([math.comb(t, x) * p**x * (1 - p) ** (t - x) for x in range(t + 1)])
        np.testing.assert_allclose(binom_cdf(t, p), exact, rtol=1e-12, atol=1e-14)


def test_fair_quota_table_matches_hand_computed_values():
    """For p = 0.5, alpha = 0.1: CDF(0; 4) = 1/16 and CDF(0; 5) = 1/32 <= 0.1, so 1 from t = 4."""
    assert fair_quotas(5, 0.5, 0.1).tolist() == [0, 0, 0, 1, 1]
    # t = 6: CDF(0) = 1/64, CDF(1) = 7/64 > 0.1 -> 1; t = 7: CDF(1) = 8/128 -> 2
    assert fair_quotas(7, 0.5, 0.1).tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert build(FairReranker, 5).quotas.tolist() == [0, 0, 0, 1, 1]


def test_fair_meets_every_prefix_quota_when_protected_items_suffice():
    """Protected (AIGC) items ranked last still meet each prefix quota of the top K."""
    k = 10
    ranked = np.stack([np.arange(20), np.arange(20)[::-1]]).astype(np.int64)
    source = (np.arange(20) >= 14).astype(int)  # 6 protected items, last in row 0
    rr = build(FairReranker, k, protected="aigc", p=0.5, alpha=0.1)
    out = rr.rerank(make_obs(np.eye(20), ranked, source=source), ranked)
    counts = np.cumsum(source[out[:, :k]], axis=1)
    assert (counts >= rr.quotas[None]).all()
    assert rr.quotas[-1] >= 2  # the quotas bind somewhere in the prefix


def test_fair_fills_with_the_best_remaining_when_protected_items_run_out():
    """Only one protected item: it is used, the other slots keep the agent's order."""
    ranked = np.arange(12, dtype=np.int64)[None]
    source = np.zeros(12, int)
    source[11] = 1
    rr = build(FairReranker, 8, protected="aigc", p=0.9)
    out = rr.rerank(make_obs(np.eye(12), ranked, source=source), ranked)
    assert out[0, :8].tolist() == [11, 0, 1, 2, 3, 4, 5, 6]


# ---------------------------------------------------------------------------- exploration
def test_exploration_floor_serves_a_never_shown_item_deterministically():
    """Items 0-10 were shown; item 11 (ranked last) takes the last slot of the top K."""
    k = 4
    ranked = np.tile(np.arange(12, dtype=np.int64), (3, 1))
    obs = make_obs(np.eye(12), ranked)
    outs = []
    for _ in range(2):
        rr = build(ExplorationFloorReranker, k, seed=3)
        rr.update(feedback(np.arange(11).reshape(1, 11)))
        outs.append(rr.rerank(obs, ranked))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert (outs[0][:, :k] == [0, 1, 2, 11]).all()
    assert (outs[0][:, k:] == [3, 4, 5, 6, 7, 8, 9, 10]).all()


def test_exploration_floor_draws_depend_on_the_seed_and_keep_order_without_need():
    """Several unseen items: the pick is seeded; when all were shown the order is kept."""
    k = 3
    ranked = np.tile(np.arange(30, dtype=np.int64), (20, 1))
    obs = make_obs(np.eye(30), ranked)
    picks = []
    for seed in (0, 1):
        rr = build(ExplorationFloorReranker, k, seed=seed)
        rr.update(feedback(np.arange(10).reshape(1, 10)))  # 10-29 never shown
        picks.append(rr.rerank(obs, ranked)[:, k - 1])
    assert (picks[0] >= 10).all() and len(set(picks[0].tolist())) > 1
    assert not np.array_equal(picks[0], picks[1])
    rr = build(ExplorationFloorReranker, k)
    rr.update(feedback(np.arange(30).reshape(1, 30)))
    np.testing.assert_array_equal(rr.rerank(obs, ranked), ranked)


# ---------------------------------------------------------------------------- style removal
def test_style_removal_demotes_aigc_items_carrying_the_planted_style():
    """AIGC features = noise + 2 * style: their mean rank drops; weight 0 keeps the order."""
    rng = np.random.default_rng(0)
    n, d = 40, 6
    source = np.arange(n) % 2
    style = np.zeros(d)
    style[0] = 1.0
    feats = rng.normal(size=(n, d)) + 2.0 * np.outer(source, style)
    ranked = np.stack([rng.permutation(n)[:16] for _ in range(5)]).astype(np.int64)
    obs = make_obs(feats, ranked, source=source)
    same = build(StyleRemovalReranker, 4, weight=0.0).rerank(obs, ranked)
    np.testing.assert_array_equal(same, ranked)
    out = build(StyleRemovalReranker, 4, weight=0.5).rerank(obs, ranked)
    pos = np.arange(16)
    before = pos[None].repeat(5, 0)[source[ranked] == 1].mean()
    after = pos[None].repeat(5, 0)[source[out] == 1].mean()
    assert after > before + 2


# ---------------------------------------------------------------------------- in a world
WORLD_CASES = [
    ("calibration", {"model": "simlab.agents.rerank_groups:CalibrationReranker"}),
    ("mmr", {"model": "simlab.agents.rerank:MMRReranker"}),
    ("xquad", {"model": "simlab.agents.rerank_groups:XQuADReranker", "groups": "source"}),
    ("fair", {"model": "simlab.agents.rerank_groups:FairReranker"}),
    ("exploration-floor", {"model": "simlab.agents.rerank:ExplorationFloorReranker"}),
    ("style-removal", {"model": "simlab.agents.rerank:StyleRemovalReranker", "weight": 1.0}),
]


def served(rerankers: list[dict[str, Any]], steps: int = 5) -> list[np.ndarray]:
    """The slates of a tiny popularity world with AIGC from step 0 and known sources."""
    scenario = tiny_scenario(
        {"model": "popularity"},
        ("platform.rerankers", rerankers),
        ("platform.knows_source", True),
        ("content.phases", [{"aigc_share": 0.5}]),
    )
    world = World(scenario, 0, 0)
    slates = []
    for t in range(steps):
        world.step(t)
        slates.append(world.last_feedback.slates.copy())
    return slates


@pytest.fixture(scope="module")
def plain() -> list[np.ndarray]:
    """The slates of the same world without re-rankers."""
    return served([])


@pytest.mark.parametrize("spec", [c[1] for c in WORLD_CASES], ids=[c[0] for c in WORLD_CASES])
def test_reranker_runs_in_a_world_and_changes_the_slates(spec, plain):
    """Five steps with the re-ranker run, serve distinct items, and differ from no re-ranker."""
    reranked = served([spec])
    for s in reranked:
        assert s.shape[1] == 4 and all(len(set(row)) == len(row) for row in s.tolist())
    assert any(
        a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(plain, reranked, strict=True)
    )
