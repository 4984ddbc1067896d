"""The item-level re-rankers of ``simlab.agents.rerank`` against per-row loop references.

Each re-ranker's documented rule is written here as a plain loop over users and list
positions (MMR's greedy picks, the exploration floor's keyed draws and
swaps, the style projection) and compared with the vectorised output on random inputs, so a
changed constant, comparison or tie rule fails a test rather than only moving a mean rank.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from simlab.agents.base import ItemCounts
from simlab.agents.rerank import (
    ExplorationFloorReranker,
    MMRReranker,
    PopularityPenaltyReranker,
    StyleRemovalReranker,
    greedy_rerank,
    head_items,
    history_group_counts,
    item_features,
    order_from_picks,
    rank_relevance,
)
from simlab.batch import PAD, Catalog, Feedback, Observation
from simlab.errors import ScenarioError
from simlab.rng import Stream

SEEDS = range(4)


def observation(feats, ranked, history=None, source=None, step=0, item_ids=None) -> Observation:
    """Users ``0, 5, 10, ...`` whose candidates are ``ranked`` over a catalog of ``feats``."""
    n = feats.shape[0]
    b, length = ranked.shape
    ids = np.arange(n, dtype=np.int64) if item_ids is None else np.asarray(item_ids, np.int64)
    return Observation(
        step=step,
        user_ids=np.arange(b, dtype=np.int64) * 5,
        user_features=np.zeros((b, 1), np.float32),
        history=np.full((b, 2), PAD, np.int64) if history is None else np.asarray(history),
        candidates=ranked,
        catalog=Catalog(
            item_ids=ids,
            features=np.asarray(feats, np.float32),
            creator=np.zeros(n, np.int64),
            age=np.zeros(n, np.int64),
            source=None if source is None else np.asarray(source, np.int8),
        ),
        slate_size=length,
    )


def build(cls, k: int, seed: int = 0, **params):
    """A re-ranker with a minimal context."""
    return cls(cls.Params(**params), SimpleNamespace(seed=seed, slate_size=k, dim=3))


def shown(slates) -> Feedback:
    """Feedback of ``(B, K)`` slates (no clicks)."""
    slates = np.asarray(slates, np.int64)
    b = slates.shape[0]
    return Feedback(
        step=0,
        user_ids=np.arange(b, dtype=np.int64),
        slates=slates,
        clicked_pos=np.full(b, -1, np.int64),
        engagement=np.zeros(b, np.float32),
    )


def random_case(seed: int, n: int = 30, b: int = 6, length: int = 10):
    """Random features and ``(B, L)`` rankings of distinct items; some impressions so far."""
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, 3))
    ranked = np.stack([rng.permutation(n)[:length] for _ in range(b)]).astype(np.int64)
    impressions = rng.integers(0, n, size=(8, 4))
    return rng, feats, ranked, impressions


# ---------------------------------------------------------------------------- helpers


@pytest.mark.parametrize("length", [1, 3, 8])
def test_rank_relevance_is_one_minus_rank_over_length(length):
    """``s_j = 1 - j / L``: 1 for the top item, ``1 / L`` for the last."""
    np.testing.assert_array_equal(rank_relevance(length), [1 - j / length for j in range(length)])


@pytest.mark.parametrize("seed", SEEDS)
def test_order_from_picks_puts_picks_first_and_keeps_the_rest(seed):
    """Picked columns in pick order, then every other column in its own order."""
    rng = np.random.default_rng(seed)
    length, n = 9, 1 + seed
    picks = np.stack([rng.permutation(length)[:n] for _ in range(5)])
    got = order_from_picks(picks, length)
    for row, p in zip(got, picks, strict=True):
        rest = [j for j in range(length) if j not in p]
        np.testing.assert_array_equal(row, list(p) + rest)


@pytest.mark.parametrize("k", [0, 2, 5, 9])
def test_greedy_rerank_picks_the_best_untaken_column_each_slot(k):
    """Each slot takes the argmax of the gain over untaken columns (first on ties); k <= L."""
    ranked = np.array([[10, 11, 12, 13, 14], [20, 21, 22, 23, 24]], np.int64)
    base = np.array([[0.1, 0.5, 0.5, 0.2, 0.9], [1.0, 0.0, 1.0, 1.0, 0.3]])
    calls = []

    def gain(last):
        calls.append(None if last is None else last.copy())
        return base - 0.01 * len(calls)  # the same order each slot

    got = greedy_rerank(ranked, k, gain)
    kk = min(k, 5)
    want = [[14, 11, 12, 13, 10], [20, 22, 23, 24, 21]]
    want = [
        row[:kk] + [x for x in r if x not in row[:kk]]
        for row, r in zip(want, ranked.tolist(), strict=True)
    ]
    np.testing.assert_array_equal(got, want)
    assert len(calls) == kk
    if kk:
        assert calls[0] is None
        for n in range(1, kk):  # each call sees the column picked at the previous slot
            picked = [list(ranked[b]).index(want[b][n - 1]) for b in range(2)]
            np.testing.assert_array_equal(calls[n], picked)


SHOWN = [
    [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 5, 5, 5, 5],  # half the items never shown, ties
    [j for j in range(12) for _ in range(j + 1)],  # every item shown, distinct counts
]


@pytest.mark.parametrize("shown", SHOWN)
@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_head_items_by_strictly_greater_exposure(share, shown):
    """Head: shown, and fewer than ``share * N`` items strictly more shown (ties all head)."""
    exposure = ItemCounts()
    ids = np.arange(12, dtype=np.int64)
    exposure.add(0, np.array(shown))
    exp = exposure.get(0, ids)
    want = [exp[i] > 0 and (exp > exp[i]).sum() < share * 12 for i in range(12)]
    np.testing.assert_array_equal(head_items(exposure, ids, share), want)
    assert not head_items(ItemCounts(), ids, 1.0).any()  # nothing shown: every item tail


def test_history_group_counts_skip_pad_and_retired_items():
    """Per user and group, the history items that are live; PAD and retired ids are ignored."""
    live = np.array([2, 4, 6, 8, 10], np.int64)
    group = np.array([0, 1, 1, 2, 0])  # of each live item
    history = np.array([[2, 4, 4, PAD], [3, 10, 10, 8], [PAD, PAD, PAD, PAD], [6, 11, 2, 99]])
    obs = observation(np.zeros((5, 3)), np.tile(live, (4, 1)), history=history, item_ids=live)
    got = history_group_counts(obs, group, 3)
    want = np.zeros((4, 3))
    for b, row in enumerate(history):
        for item in row:
            if item in live:
                want[b, group[list(live).index(item)]] += 1
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)


def test_item_features_are_the_float64_features_of_the_ranked_items():
    """``(B, L, d)`` rows of the catalog's features, by item id."""
    feats = np.arange(15, dtype=np.float64).reshape(5, 3) / 4
    ranked = np.array([[4, 0], [2, 3]], np.int64)
    got = item_features(observation(feats, ranked, item_ids=[3, 5, 7, 9, 11]), ranked * 2 + 3)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, feats[ranked])


# ---------------------------------------------------------------------------- item re-rankers


def reference_mmr(feats, ranked_row, k, lam):
    """MMR by loops: ``lam s_i - (1 - lam) max cos`` over untaken items, first on ties."""
    length = len(ranked_row)
    unit = []
    for item in ranked_row:
        f = feats[item].astype(np.float64)
        norm = float(np.sqrt((f * f).sum()))
        unit.append(f / norm if norm > 0 else f)
    chosen: list[int] = []
    for _ in range(min(k, length)):
        best, best_gain = -1, -np.inf
        for i in range(length):
            if i in chosen:
                continue
            sim = max((float(unit[i] @ unit[j]) for j in chosen), default=None)
            g = lam * (1 - i / length) - (0 if sim is None else (1 - lam) * sim)
            if g > best_gain + 1e-12:
                best, best_gain = i, g
        chosen.append(best)
    return [ranked_row[i] for i in chosen + [j for j in range(length) if j not in chosen]]


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_mmr_equals_a_greedy_loop(seed, lam):
    """Greedy MMR top K (4 of 10), then the rest in the agent's order; a zero vector: cos 0."""
    _, feats, ranked, _ = random_case(seed)
    feats[ranked[0, 3]] = 0.0  # an item without features
    got = build(MMRReranker, 4, lam=lam).rerank(observation(feats, ranked), ranked)
    for row, r in zip(got, ranked, strict=True):
        np.testing.assert_array_equal(row, reference_mmr(feats.astype(np.float32), r, 4, lam))


def reference_floor(ranked_row, exp, u, k, slots, min_exposure):
    """The exploration floor by loops over one user's list."""
    length = len(ranked_row)
    k = min(k, length)
    qual = [exp[j] < min_exposure for j in range(length)]
    have = sum(qual[:k])
    pool = [j for j in range(k, length) if qual[j]]
    need = min(max(min(slots, k) - have, 0), len(pool))
    picks = sorted(sorted(pool, key=lambda j: u[j])[:need])
    stay = [j for j in range(k) if not qual[j]]
    dropped = stay[len(stay) - need :] if need else []
    kept = [j for j in range(k) if j not in dropped]
    rest = [j for j in range(length) if j not in kept and j not in picks]
    return [ranked_row[j] for j in kept + picks + rest]


@pytest.mark.filterwarnings("error")  # no floating-point warning either
@pytest.mark.parametrize(
    ("k", "slots", "min_exposure"), [(4, 1, 1), (4, 2, 2), (3, 5, 3), (12, 2, 1), (5, 0, 1)]
)
@pytest.mark.parametrize("seed", SEEDS)
def test_exploration_floor_equals_a_loop_with_the_keyed_draws(seed, k, slots, min_exposure):
    """Qualifying items drawn by the ``rerank/exploration`` stream replace the lowest top items."""
    _, feats, ranked, impressions = random_case(seed, n=16, length=10)
    rr = build(ExplorationFloorReranker, k, seed=seed, slots=slots, min_exposure=min_exposure)
    rr.update(shown(impressions))
    rr.update(shown(impressions[:3]))
    counts = np.bincount(impressions.ravel(), minlength=16) + np.bincount(
        impressions[:3].ravel(), minlength=16
    )
    obs = observation(feats[:16], ranked, step=3 + seed)
    got = rr.rerank(obs, ranked)
    u = Stream(seed, "rerank/exploration").uniform(obs.user_ids, obs.step, size=10)
    for b in range(ranked.shape[0]):
        want = reference_floor(ranked[b], counts[ranked[b]], u[b], k, slots, min_exposure)
        np.testing.assert_array_equal(got[b], want)


@pytest.mark.parametrize(("k", "slots"), [(4, 2), (30, 5), (70, 3)])
@pytest.mark.parametrize("seed", SEEDS)
def test_exploration_floor_on_long_lists(seed, k, slots):
    """Lists of 90 items (positions past 63 too): the loop's order, whatever the position."""
    rng = np.random.default_rng(seed + 40)
    n, length = 120, 90
    ranked = np.stack([rng.permutation(n)[:length] for _ in range(4)]).astype(np.int64)
    impressions = rng.integers(0, n, size=(60, 5))
    rr = build(ExplorationFloorReranker, k, seed=seed, slots=slots)
    rr.update(shown(impressions))
    counts = np.bincount(impressions.ravel(), minlength=n)
    obs = observation(rng.normal(size=(n, 3)), ranked, step=seed)
    got = rr.rerank(obs, ranked)
    u = Stream(seed, "rerank/exploration").uniform(obs.user_ids, obs.step, size=length)
    for b in range(ranked.shape[0]):
        np.testing.assert_array_equal(
            got[b], reference_floor(ranked[b], counts[ranked[b]], u[b], k, slots, 1)
        )


class LinearScorer:
    """An agent's ``score(obs, item_ids, features)``: ``features @ w`` (records its input)."""

    def __init__(self, w: np.ndarray) -> None:
        self.w = w
        self.seen: list[np.ndarray] = []

    def __call__(self, obs, item_ids, features):
        """``(B, L)`` scores of the given features."""
        self.seen.append(np.asarray(features))
        return np.asarray(features, np.float64) @ self.w


def style_case(seed: int):
    """Random features, half AIGC shifted along a style direction; ranked lists of 12."""
    rng = np.random.default_rng(seed)
    n = 24
    source = rng.permutation(np.arange(n) % 2)
    feats = rng.normal(size=(n, 3)) + np.outer(source, [1.5, -0.5, 0.0])
    ranked = np.stack([rng.permutation(n)[:12] for _ in range(5)]).astype(np.int64)
    return feats, source, ranked


def style_unit(feats, source):
    """The unit style direction ``mean(f | AIGC) - mean(f | human)``, normalised."""
    v = feats[source == 1].mean(0) - feats[source == 0].mean(0)
    return v / np.sqrt((v * v).sum())


@pytest.mark.parametrize("weight", [0.0, 0.25, 3.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_style_removal_without_scores_equals_relevance_minus_standardised_style(seed, weight):
    """``s_j - weight * z_j``, z the style projection standardised over the user's list."""
    feats, source, ranked = style_case(seed)
    obs = observation(feats, ranked, source=source)
    got = build(StyleRemovalReranker, 4, weight=weight).rerank(obs, ranked)
    unit = style_unit(obs.catalog.features.astype(np.float64), source)
    length = ranked.shape[1]
    for row, r in zip(got, ranked, strict=True):
        proj = obs.catalog.features[r].astype(np.float64) @ unit
        z = (proj - proj.mean()) / proj.std()
        score = [1 - j / length - weight * z[j] for j in range(length)]
        order = sorted(range(length), key=lambda j: (-score[j], j))
        np.testing.assert_array_equal(row, r[order])


def test_style_removal_rescores_style_free_features_with_the_agent():
    """With the agent's scorer: features minus their style projection, sorted by its scores."""
    feats, source, ranked = style_case(7)
    obs = observation(feats, ranked, source=source)
    rr = build(StyleRemovalReranker, 4, weight=9.0)  # the weight is not used with scores
    scorer = LinearScorer(np.array([1.0, 0.4, -0.3]))
    rr.bind_scorer(scorer)
    got = rr.rerank(obs, ranked)
    f = obs.catalog.features.astype(np.float64)
    unit = style_unit(f, source)
    listed = f[ranked]
    cleaned = listed - (listed @ unit)[..., None] * unit
    np.testing.assert_allclose(scorer.seen[0], cleaned, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scorer.seen[0] @ unit, 0.0, atol=1e-5)
    score = scorer.seen[0].astype(np.float64) @ scorer.w
    np.testing.assert_array_equal(got, np.take_along_axis(ranked, np.argsort(-score, 1), 1))


@pytest.mark.parametrize(
    "source",
    [np.zeros(6, int), np.ones(6, int), np.array([0, 1, 0, 1, 0, 1])],
    ids=["all-human", "all-aigc", "no-style"],
)
def test_style_removal_keeps_the_order_without_a_style(source):
    """One source only, or equal source means: nothing to remove, the order is kept."""
    feats = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 0.0], [3.0, 0.0], [0.5, 1.0], [0.5, 1.0]])
    ranked = np.array([[5, 2, 0, 3], [1, 4, 3, 2]], np.int64)
    obs = observation(feats, ranked, source=source)
    rr = build(StyleRemovalReranker, 2, weight=5.0)
    np.testing.assert_array_equal(rr.rerank(obs, ranked), ranked)
    with pytest.raises(ScenarioError, match="StyleRemovalReranker needs item source labels"):
        rr.rerank(observation(feats, ranked), ranked)


@pytest.mark.filterwarnings("error")
def test_style_removal_with_scores_keeps_the_order_without_a_style():
    """Equal source means: nothing to remove; the agent's scorer is not asked, no warning."""
    feats = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 0.0], [3.0, 0.0], [0.5, 1.0], [0.5, 1.0]])
    ranked = np.array([[5, 2, 0, 3], [1, 4, 3, 2]], np.int64)
    obs = observation(feats, ranked, source=np.array([0, 1, 0, 1, 0, 1]))
    rr = build(StyleRemovalReranker, 2)
    scorer = LinearScorer(np.array([1.0, -1.0]))  # would reorder the lists
    rr.bind_scorer(scorer)
    np.testing.assert_array_equal(rr.rerank(obs, ranked), ranked)
    assert scorer.seen == []


@pytest.mark.parametrize(
    ("cls", "field", "good", "bad"),
    [
        (PopularityPenaltyReranker, "weight", [0.0, 7.5], [-1e-9, -1.0]),
        (MMRReranker, "lam", [0.0, 0.5, 1.0], [-1e-9, -1.0, 1.0 + 1e-9, 2.0]),
        (ExplorationFloorReranker, "slots", [0, 1000], [-1, 1001]),
        (ExplorationFloorReranker, "min_exposure", [1, 50], [0, -1]),
        (StyleRemovalReranker, "weight", [0.0, 3.0], [-1e-9, -2.0]),
    ],
)
def test_parameter_bounds(cls, field, good, bad):
    """Each bounded key takes its bounds and refuses values just past them, naming itself."""
    for value in good:
        assert getattr(cls.Params(**{field: value}), field) == value
    for value in bad:
        with pytest.raises(ValueError, match=field):
            cls.Params(**{field: value})


@pytest.mark.parametrize(
    ("cls", "defaults"),
    [
        (PopularityPenaltyReranker, {"weight": 0.5}),
        (MMRReranker, {"lam": 0.7}),
        (ExplorationFloorReranker, {"slots": 1, "min_exposure": 1}),
        (StyleRemovalReranker, {"weight": 0.25}),
    ],
)
def test_documented_defaults(cls, defaults):
    """Defaults of docs/scenario-reference.md: changing one changes every scenario omitting it."""
    assert cls.Params().model_dump() == defaults
