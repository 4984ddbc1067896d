"""The group re-rankers of ``simlab.agents.rerank_groups`` against per-row loop references.

Each re-ranker's documented rule (calibration's greedy KL trade-off, its k-means++ groups,
xQuAD's coverage products, FA*IR's prefix quotas) is written here as a plain loop over users,
list positions and groups and compared with the vectorised output on random inputs, so a
changed constant, comparison, key or tie rule fails a test rather than only moving a mix.
Every test runs with warnings as errors: users without a live history item (shares of zero
counts) and empty k-means clusters must not divide by zero.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError
from test_rerank_references import build, observation, shown

from simlab.agents.base import ItemCounts
from simlab.agents.rerank import head_items
from simlab.agents.rerank_groups import (
    CalibrationReranker,
    FairReranker,
    XQuADReranker,
    binom_cdf,
    fair_quotas,
    kmeans_labels,
)
from simlab.batch import PAD
from simlab.rng import Stream

SEEDS = range(4)
pytestmark = pytest.mark.filterwarnings("error")


def random_case(seed: int, n: int = 30, b: int = 7, length: int = 12):
    """Random features, sources, ``(B, L)`` rankings of distinct items and histories.

    User 0 has no history at all, user 1 only PAD and items outside the catalog, and user 2
    exactly one live item (a share of 1).
    """
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, 3))
    source = rng.integers(0, 2, size=n)
    ranked = np.stack([rng.permutation(n)[:length] for _ in range(b)]).astype(np.int64)
    history = rng.integers(0, n, size=(b, 6))
    history[rng.random((b, 6)) < 0.3] = PAD
    history[0] = PAD
    history[1] = [PAD, n + 3, PAD, n + 7, PAD, PAD]
    history[2] = [PAD, n + 1, 5, PAD, n + 2, PAD]
    impressions = rng.integers(0, n, size=(9, 4))
    return rng, feats, source, ranked, history, impressions


def live_history_groups(history_row, group) -> list[int]:
    """Groups of the history items that are live catalog items ``0..N-1``."""
    return [int(group[i]) for i in history_row if 0 <= i < len(group)]


def argmax_first(gains: dict[int, float]) -> int:
    """The column of the largest gain; the earliest column on (near) ties."""
    best, best_gain = -1, -np.inf
    for j, g in sorted(gains.items()):
        if g > best_gain + 1e-12:
            best, best_gain = j, g
    return best


def finish(ranked_row, chosen: list[int]) -> list[int]:
    """The chosen columns in pick order, then the rest in the agent's order."""
    rest = [j for j in range(len(ranked_row)) if j not in chosen]
    return [int(ranked_row[j]) for j in chosen + rest]


# ---------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("cls", "defaults"),
    [
        (
            CalibrationReranker,
            {
                "lam": 0.5,
                "groups": "clusters",
                "num_clusters": 8,
                "iterations": 10,
                "smoothing": 0.01,
            },
        ),
        (XQuADReranker, {"lam": 0.5, "groups": "head_tail", "head_share": 0.2}),
        (FairReranker, {"protected": "tail", "p": 0.5, "alpha": 0.1, "head_share": 0.2}),
    ],
)
def test_documented_defaults(cls, defaults):
    """Defaults of docs/scenario-reference.md: changing one changes every scenario omitting it."""
    assert cls.Params().model_dump() == defaults


TINY = 1e-9
# (class, field, last accepted value at the bound, first refused value)
BOUNDS = [
    (CalibrationReranker, "lam", 0.0, -TINY),
    (CalibrationReranker, "lam", 1.0, 1 + TINY),
    (CalibrationReranker, "num_clusters", 2, 1),
    (CalibrationReranker, "num_clusters", 256, 257),
    (CalibrationReranker, "iterations", 1, 0),
    (CalibrationReranker, "iterations", 100, 101),
    (CalibrationReranker, "smoothing", TINY, 0.0),
    (CalibrationReranker, "smoothing", 1 - TINY, 1.0),
    (XQuADReranker, "lam", 0.0, -TINY),
    (XQuADReranker, "lam", 1.0, 1 + TINY),
    (XQuADReranker, "head_share", TINY, 0.0),
    (XQuADReranker, "head_share", 1 - TINY, 1.0),
    (FairReranker, "p", TINY, 0.0),
    (FairReranker, "p", 1 - TINY, 1.0),
    (FairReranker, "alpha", TINY, 0.0),
    (FairReranker, "alpha", 1 - TINY, 1.0),
    (FairReranker, "head_share", TINY, 0.0),
    (FairReranker, "head_share", 1 - TINY, 1.0),
]


@pytest.mark.parametrize(("cls", "field", "ok", "bad"), BOUNDS)
def test_each_bound_accepts_its_edge_and_refuses_beyond(cls, field, ok, bad):
    """The edge value is accepted; one step beyond is refused, naming the field."""
    assert getattr(cls.Params(**{field: ok}), field) == ok
    with pytest.raises(ValidationError, match=field):
        cls.Params(**{field: bad})


# ---------------------------------------------------------------------------- k-means
def reference_kmeans(x, num_clusters, iterations, draws):
    """k-means++ from the draws, then Lloyd iterations, by loops over points and centres."""
    n = len(x)
    g = min(num_clusters, n)

    def sq(a, b):
        return float(((a - b) ** 2).sum())

    centres = [x[min(int(draws[0] * n), n - 1)].copy()]
    for c in range(1, g):
        d2 = [min(sq(p, m) for m in centres) for p in x]
        total = sum(d2)
        if total > 0:  # the first point whose running sum reaches draws[c] * total
            target, run, idx = draws[c] * total, 0.0, n - 1
            for i, d in enumerate(d2):
                run += d
                if run >= target:
                    idx = i
                    break
        else:
            idx = c
        centres.append(x[idx].copy())

    def assign():
        return [min(range(g), key=lambda c: (sq(p, centres[c]), c)) for p in x]

    for _ in range(iterations):
        labels = assign()
        for c in range(g):
            members = [x[i] for i in range(n) if labels[i] == c]
            if members:  # an empty cluster keeps its centre
                centres[c] = np.mean(members, axis=0)
    return assign(), g


@pytest.mark.parametrize(("n", "clusters", "iterations"), [(25, 4, 1), (25, 6, 3), (3, 5, 2)])
@pytest.mark.parametrize("seed", SEEDS)
def test_kmeans_labels_equal_a_loop_reference(seed, n, clusters, iterations):
    """Labels of separated blobs (and fewer points than clusters: one cluster per point)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)) + 6.0 * rng.integers(0, 3, size=(n, 2))
    draws = rng.random(clusters)
    labels, g = kmeans_labels(x, clusters, iterations, draws)
    want, want_g = reference_kmeans(x, clusters, iterations, draws)
    assert g == want_g == min(clusters, n)
    np.testing.assert_array_equal(labels, want)


def test_kmeans_lloyd_iterations_move_the_centres_step_by_step():
    """Two start centres at one end of a chain: each iteration shifts the boundary further."""
    x = np.arange(21.0)[:, None]
    draws = np.array([0.0, 1e-3])  # centres at points 0 and 2
    sizes = []
    for iterations in (1, 2, 3, 5):
        labels, _ = kmeans_labels(x, 2, iterations, draws)
        want, _ = reference_kmeans(x, 2, iterations, draws)
        np.testing.assert_array_equal(labels, want)
        sizes.append(int(labels.sum()))
    # by hand: start {0, 1} | {2..20} (1 ties: the first centre), means 0.5 | 11 -> 6..20;
    # means 2.5 | 13 -> 8..20; 3.5 | 14 -> 9..20; 4 | 14.5 -> 10..20, then fixed
    assert sizes == [15, 13, 12, 11]


def test_kmeans_of_identical_points_is_one_group():
    """Zero distances everywhere: every point in group 0, ``G = min(clusters, N)``."""
    labels, g = kmeans_labels(np.ones((5, 2)), 3, 2, np.array([0.5, 0.5, 0.5]))
    assert g == 3
    np.testing.assert_array_equal(labels, np.zeros(5))


@pytest.mark.parametrize("iterations", [2, 5])
@pytest.mark.parametrize(("dim", "scale"), [(1, 1.0), (1, -3.0), (3, 0.5), (3, -1.0)])
def test_kmeans_an_emptied_cluster_keeps_its_centre(dim, scale, iterations):
    """A line, scaled and turned: k-means++ starts at 0, 4 and 5.

    After one step the centres are 1.4625, 3.05 and 4.6625, and the middle cluster loses
    every point: it keeps 3.05 (not the origin).
    """
    line = np.array([0.0, 4.0, 5.0, 1.95, 1.95, 1.95, 2.1, 4.55, 4.55, 4.55])[:, None]
    direction = np.random.default_rng(dim).normal(size=dim)
    x = scale * line * direction / np.linalg.norm(direction)
    draws = np.array([0.05, 8 / 118.925, 0.5 / 16.925])  # rows 0, 1, 2 by the d2 sums
    labels, _ = kmeans_labels(x, 3, iterations, draws)
    np.testing.assert_array_equal(labels, [0, 2, 2, 0, 0, 0, 0, 2, 2, 2])
    np.testing.assert_array_equal(labels, reference_kmeans(x, 3, iterations, draws)[0])


@pytest.mark.parametrize("step", [0, 4])
@pytest.mark.parametrize("seed", [0, 3])
def test_calibration_clusters_use_the_keyed_draws_of_the_step(seed, step):
    """Groups: k-means of the float features with ``rerank/calibration`` draws at the step."""
    _, feats, _, ranked, _, _ = random_case(seed)
    obs = observation(feats, ranked, step=step)
    rr = build(CalibrationReranker, 4, seed=seed, num_clusters=5, iterations=3)
    groups, g = rr.item_groups(obs)
    draws = Stream(seed, "rerank/calibration").uniform(np.arange(5), step)
    x = obs.catalog.features.astype(np.float64)
    want, _ = reference_kmeans(x, 5, 3, draws)
    assert g == 5
    np.testing.assert_array_equal(groups, want)


# ---------------------------------------------------------------------------- calibration
def reference_calibration(ranked_row, hist_groups, group, num_groups, k, lam, a):
    """Greedy ``(1 - lam) s_i - lam KL(p || (1 - a) q + a p)``, by loops; no history: as is."""
    length = len(ranked_row)
    if not hist_groups:
        return [int(i) for i in ranked_row]
    p = [hist_groups.count(c) / len(hist_groups) for c in range(num_groups)]
    chosen: list[int] = []
    counts = [0] * num_groups
    for _ in range(min(k, length)):
        gains = {}
        for j in range(length):
            if j in chosen:
                continue
            gj = group[ranked_row[j]]
            kl = 0.0
            for c in range(num_groups):
                if p[c] > 0:
                    q = (counts[c] + (c == gj)) / (len(chosen) + 1)
                    kl += p[c] * math.log(p[c] / ((1 - a) * q + a * p[c]))
            gains[j] = (1 - lam) * (1 - j / length) - lam * kl
        best = argmax_first(gains)
        chosen.append(best)
        counts[group[ranked_row[best]]] += 1
    return finish(ranked_row, chosen)


@pytest.mark.parametrize(("lam", "smoothing"), [(0.0, 0.01), (0.3, 0.01), (0.8, 0.2), (1.0, 0.5)])
@pytest.mark.parametrize("seed", SEEDS)
def test_calibration_by_source_equals_a_greedy_loop(seed, lam, smoothing):
    """Source groups; users without a live history item keep the agent's order."""
    _, feats, source, ranked, history, _ = random_case(seed)
    rr = build(CalibrationReranker, 5, groups="source", lam=lam, smoothing=smoothing)
    got = rr.rerank(observation(feats, ranked, history, source), ranked)
    for b in range(ranked.shape[0]):
        hist = live_history_groups(history[b], source)
        want = reference_calibration(ranked[b], hist, source, 2, 5, lam, smoothing)
        np.testing.assert_array_equal(got[b], want)
    np.testing.assert_array_equal(got[:2], ranked[:2])


@pytest.mark.parametrize("seed", SEEDS)
def test_calibration_by_clusters_equals_a_greedy_loop(seed):
    """Three k-means groups, K = 6 of 12, at a step other than 0."""
    _, feats, _, ranked, history, _ = random_case(seed)
    obs = observation(feats, ranked, history, step=2)
    rr = build(CalibrationReranker, 6, seed=seed, num_clusters=3, lam=0.6, iterations=2)
    group, _ = rr.item_groups(obs)
    got = rr.rerank(obs, ranked)
    for b in range(ranked.shape[0]):
        hist = live_history_groups(history[b], group)
        want = reference_calibration(ranked[b], hist, group, 3, 6, 0.6, 0.01)
        np.testing.assert_array_equal(got[b], want)


# ---------------------------------------------------------------------------- xQuAD
def reference_xquad(ranked_row, hist_groups, group, k, lam):
    """Greedy ``(1 - lam) s_i + lam P(c_i|u) prod_{j in S, c_j = c_i} (1 - s_j)``, by loops."""
    length = len(ranked_row)
    if hist_groups:
        share = [hist_groups.count(c) / len(hist_groups) for c in (0, 1)]
    else:
        share = [0.5, 0.5]
    uncovered = [1.0, 1.0]
    chosen: list[int] = []
    for _ in range(min(k, length)):
        gains = {}
        for j in range(length):
            if j not in chosen:
                c = group[ranked_row[j]]
                gains[j] = (1 - lam) * (1 - j / length) + lam * share[c] * uncovered[c]
        best = argmax_first(gains)
        chosen.append(best)
        uncovered[group[ranked_row[best]]] *= 1 - (1 - best / length)
    return finish(ranked_row, chosen)


@pytest.mark.parametrize("lam", [0.0, 0.4, 0.7, 1.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_xquad_by_source_equals_a_greedy_loop(seed, lam):
    """Source groups; a user without a live history item has ``P(c|u) = 1/2``."""
    _, feats, source, ranked, history, _ = random_case(seed)
    rr = build(XQuADReranker, 5, lam=lam, groups="source")
    got = rr.rerank(observation(feats, ranked, history, source), ranked)
    for b in range(ranked.shape[0]):
        hist = live_history_groups(history[b], source)
        np.testing.assert_array_equal(got[b], reference_xquad(ranked[b], hist, source, 5, lam))


@pytest.mark.parametrize("head_share", [0.1, 0.3])
@pytest.mark.parametrize("seed", SEEDS)
def test_xquad_head_tail_equals_a_greedy_loop_over_counted_impressions(seed, head_share):
    """Head/tail from every update's impressions (two updates add up); group 0 is head."""
    _, feats, _, ranked, history, impressions = random_case(seed)
    rr = build(XQuADReranker, 4, lam=0.6, head_share=head_share)
    rr.update(shown(impressions))
    rr.update(shown(impressions[:4]))
    exposure = ItemCounts()
    exposure.add(0, np.concatenate([impressions.ravel(), impressions[:4].ravel()]))
    group = (~head_items(exposure, np.arange(30), head_share)).astype(int)
    assert 0 < group.sum() < 30
    got = rr.rerank(observation(feats, ranked, history), ranked)
    for b in range(ranked.shape[0]):
        hist = live_history_groups(history[b], group)
        np.testing.assert_array_equal(got[b], reference_xquad(ranked[b], hist, group, 4, 0.6))


# ---------------------------------------------------------------------------- FA*IR
@pytest.mark.parametrize(("t", "p"), [(0, 0.4), (1, 0.1), (6, 0.5), (9, 0.25), (30, 0.9)])
def test_binomial_cdf_is_a_running_sum_of_the_pmf(t, p):
    """``P(X <= x)`` for ``x = 0..t`` from ``comb(t, x) p^x (1 - p)^(t - x)``; ends at 1."""
    pmf = [math.comb(t, x) * p**x * (1 - p) ** (t - x) for x in range(t + 1)]
    got = binom_cdf(t, p)
    np.testing.assert_allclose(got, np.cumsum(pmf), rtol=1e-12, atol=1e-15)
    assert got[-1] <= 1.0 and got[-1] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("k", "p", "alpha"), [(12, 0.5, 0.1), (10, 0.3, 0.05), (8, 0.8, 0.4)])
def test_fair_quotas_are_the_smallest_x_with_cdf_above_alpha(k, p, alpha):
    """Entry ``t - 1``: the smallest ``x`` with ``sum_{i <= x} comb(t, i) p^i (1-p)^(t-i) > a``."""
    want = []
    for t in range(1, k + 1):
        run, x = 0.0, 0
        for x in range(t + 1):
            run += math.comb(t, x) * p**x * (1 - p) ** (t - x)
            if run > alpha:
                break
        want.append(x)
    assert fair_quotas(k, p, alpha).tolist() == want
    assert build(FairReranker, k, p=p, alpha=alpha).quotas.tolist() == want


def reference_fair(ranked_row, protected, quotas, k):
    """Slot ``t`` takes the best protected item when the quota needs one, else the best item."""
    length = len(ranked_row)
    chosen: list[int] = []
    have = 0
    for t in range(min(k, length)):
        left = [j for j in range(length) if j not in chosen]
        prot_left = [j for j in left if protected[ranked_row[j]]]
        pick = prot_left[0] if have < quotas[t] and prot_left else left[0]
        chosen.append(pick)
        have += bool(protected[ranked_row[pick]])
    return finish(ranked_row, chosen)


@pytest.mark.parametrize("protected", ["aigc", "human"])
@pytest.mark.parametrize(("k", "p"), [(6, 0.5), (10, 0.8), (12, 0.95)])
@pytest.mark.parametrize("seed", SEEDS)
def test_fair_by_source_equals_a_quota_loop(seed, k, p, protected):
    """AIGC (source 1) or human (source 0) protected; quotas from ``p`` and ``alpha = 0.1``."""
    _, feats, source, ranked, _, _ = random_case(seed)
    rr = build(FairReranker, k, protected=protected, p=p)
    got = rr.rerank(observation(feats, ranked, source=source), ranked)
    prot = source == (1 if protected == "aigc" else 0)
    for b in range(ranked.shape[0]):
        np.testing.assert_array_equal(got[b], reference_fair(ranked[b], prot, rr.quotas, k))


@pytest.mark.parametrize("seed", SEEDS)
def test_fair_tail_equals_a_quota_loop_and_calls_are_independent(seed):
    """Tail by counted impressions; a second call with the same input gives the same lists."""
    _, feats, _, ranked, _, impressions = random_case(seed)
    rr = build(FairReranker, 8, p=0.7, head_share=0.3)
    obs = observation(feats, ranked)
    before = rr.rerank(obs, ranked)  # nothing shown yet: every item is tail (protected)
    np.testing.assert_array_equal(before, ranked)
    rr.update(shown(impressions))
    exposure = ItemCounts()
    exposure.add(0, impressions.ravel())
    prot = ~head_items(exposure, np.arange(30), 0.3)
    first = rr.rerank(obs, ranked)
    for b in range(ranked.shape[0]):
        np.testing.assert_array_equal(first[b], reference_fair(ranked[b], prot, rr.quotas, 8))
    np.testing.assert_array_equal(rr.rerank(obs, ranked), first)
