"""Tests of simlab.metrics on hand-built snapshots, against hand and brute-force values."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

from simlab.batch import Catalog, Feedback
from simlab.environments.content import ItemTable
from simlab.metrics import (
    DiversityMetric,
    EngagementMetric,
    ExposureMetric,
    HomogenizationMetric,
    InterestDriftMetric,
    SourceMetric,
    StepSnapshot,
    exposure_counts,
    gini,
)
from simlab.metrics.echo import jaccard_pairs

CTX = SimpleNamespace(seed=0, num_users=4)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit norm."""
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_items(item_ids, source=None, latent=None, dim: int = 3, seed: int = 0) -> ItemTable:
    """A latent item table for ``item_ids`` (random unit latents unless given)."""
    ids = np.asarray(item_ids, np.int64)
    n = ids.shape[0]
    if latent is None:
        latent = unit_rows(np.random.default_rng(seed).normal(size=(n, dim)))
    latent = np.asarray(latent, np.float32)
    return ItemTable(
        item_ids=ids,
        creator=np.zeros(n, np.int64),
        source=np.zeros(n, np.int8) if source is None else np.asarray(source, np.int8),
        topic=np.zeros(n, np.int64),
        latent=latent,
        features=latent.copy(),
        quality=np.zeros(n, np.float32),
        published=np.zeros(n, np.int64),
    )


def make_catalog(items: ItemTable) -> Catalog:
    """The observable catalog of ``items``."""
    return Catalog(
        item_ids=items.item_ids,
        features=items.features,
        creator=items.creator,
        age=np.zeros(items.item_ids.shape[0], np.int64),
    )


def make_feedback(user_ids, slates, clicked_pos, engagement=None, step: int = 0) -> Feedback:
    """Feedback from plain lists."""
    user_ids = np.asarray(user_ids, np.int64)
    clicked_pos = np.asarray(clicked_pos, np.int64)
    if engagement is None:
        engagement = np.where(clicked_pos >= 0, 0.5, 0.0)
    return Feedback(
        step=step,
        user_ids=user_ids,
        slates=np.asarray(slates, np.int64).reshape(user_ids.shape[0], np.shape(slates)[-1]),
        clicked_pos=clicked_pos,
        engagement=np.asarray(engagement, np.float32),
    )


def make_snapshot(
    feedback: Feedback,
    items: ItemTable,
    new_item_sources=(),
    interests=None,
    initial_interests=None,
    num_users: int = 4,
) -> StepSnapshot:
    """A snapshot with zero interests unless given."""
    dim = items.latent.shape[1]
    zeros = np.zeros((num_users, dim), np.float32)
    return StepSnapshot(
        step=feedback.step,
        num_users=num_users,
        feedback=feedback,
        catalog=make_catalog(items),
        items=items,
        new_item_sources=np.asarray(new_item_sources, np.int8),
        interests=zeros if interests is None else interests,
        initial_interests=zeros if initial_interests is None else initial_interests,
    )


# ----------------------------------------------------------------------------- gini


def gini_by_mean_difference(counts: np.ndarray) -> float:
    """Gini as mean absolute difference over twice the mean (the textbook definition)."""
    c = np.asarray(counts, np.float64)
    n = c.shape[0]
    return float(np.abs(c[:, None] - c[None, :]).sum() / (2 * n * n * c.mean()))


def test_gini_equal_exposure_is_zero():
    """Equal exposure has Gini 0."""
    assert gini(np.array([3, 3, 3, 3, 3])) == 0.0


@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_gini_one_item_gets_everything(n):
    """When one of n items gets all exposure the Gini is (n - 1) / n."""
    counts = np.zeros(n)
    counts[n // 2] = 7
    assert gini(counts) == pytest.approx((n - 1) / n)


def test_gini_by_hand():
    """Gini of [1, 2, 3, 4]: sum |xi - xj| = 20 over 2 * 16 * 2.5 = 80 gives 0.25."""
    assert gini(np.array([1, 2, 3, 4])) == pytest.approx(0.25)
    assert gini(np.array([4, 1, 3, 2])) == pytest.approx(0.25)
    # [0, 0, 1, 3]: sum |xi - xj| = 2 * (0+1+3+1+3+2) = 20 over 2 * 16 * 1 = 32
    assert gini(np.array([0, 3, 0, 1])) == pytest.approx(20 / 32)


def test_gini_matches_mean_difference_definition():
    """The sorted-rank formula equals the mean-absolute-difference definition on random counts."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        counts = rng.integers(0, 20, size=rng.integers(2, 40))
        counts[0] += 1
        assert gini(counts) == pytest.approx(gini_by_mean_difference(counts))


@pytest.mark.parametrize("counts", [np.zeros(5), np.zeros(0)], ids=["no-exposure", "no-items"])
def test_gini_without_exposure_is_nan(counts):
    """No exposure at all (or no items) gives NaN."""
    assert math.isnan(gini(counts))


def test_exposure_counts():
    """``exposure_counts`` counts every appearance of each live item row, zeros included."""
    slate_rows = np.array([[1, 2], [2, 3], [2, 1]])
    np.testing.assert_array_equal(exposure_counts(slate_rows, 5), [0, 2, 3, 1, 0])
    empty = exposure_counts(np.zeros((0, 2), np.int64), 5)
    np.testing.assert_array_equal(empty, np.zeros(5))


def test_snapshot_rows_default_and_precomputed():
    """``StepSnapshot.rows`` looks slate items up in the catalog unless rows were given."""
    items = make_items([3, 8, 11, 20])
    fb = make_feedback([0, 1], [[20, 3], [8, 11]], [-1, -1])
    snap = make_snapshot(fb, items)
    np.testing.assert_array_equal(snap.rows(), [[3, 0], [1, 2]])
    given = np.array([[0, 1], [2, 3]])
    snap.slate_rows = given
    assert snap.rows() is given


def test_snapshot_fetches_interests_only_when_read():
    """An ``interest_source`` is called once, and only when a metric reads interests."""
    items = make_items([3, 8])
    fb = make_feedback([0], [[3, 8]], [0])
    calls = []
    cur, init = np.ones((4, 2), np.float32), np.zeros((4, 2), np.float32)

    def source():
        calls.append(1)
        return cur, init

    snap = StepSnapshot(
        0, 4, fb, make_catalog(items), items, np.zeros(0, np.int8), interest_source=source
    )
    assert snap.rows().shape == (1, 2) and calls == []
    assert np.shares_memory(snap.interests, cur) and np.shares_memory(snap.initial_interests, init)
    assert not snap.interests.flags.writeable  # read-only views of the users' arrays
    assert calls == [1]


# ----------------------------------------------------------------------------- engagement


def test_engagement_metric():
    """CTR is clicks over served users, mean engagement is the sum over served users."""
    items = make_items([1, 2, 3, 4])
    fb = make_feedback(
        [0, 1, 2, 3], [[1, 2], [3, 4], [2, 3], [4, 1]], [0, -1, 1, -1], [0.6, 0.0, 0.2, 0.0]
    )
    row = EngagementMetric(CTX).observe(make_snapshot(fb, items))
    assert row["engagement/ctr"] == pytest.approx(0.5)
    assert row["engagement/mean"] == pytest.approx(0.2)
    assert row["users/active"] == 4


def test_engagement_metric_without_users_is_nan():
    """A step with no served users has NaN CTR and engagement and 0 active users."""
    items = make_items([1, 2])
    fb = make_feedback([], np.zeros((0, 2)), [], [])
    metric = EngagementMetric(CTX)
    row = metric.observe(make_snapshot(fb, items))
    assert math.isnan(row["engagement/ctr"]) and math.isnan(row["engagement/mean"])
    assert row["users/active"] == 0
    assert metric.history == [row]


@pytest.mark.parametrize("seed", range(4))
def test_engagement_values_stay_in_the_declared_ranges_and_reach_their_bounds(seed):
    """Every step lies in ``ranges``; each finite bound is reached (the bounds are tight)."""
    rng = np.random.default_rng(seed)
    items = make_items([1, 2, 3, 4])
    metric = EngagementMetric(CTX)
    rows = []
    for b in (0, 1, 3, 7):
        for kind in ("none", "all", "some"):
            clicked = {"none": np.full(b, -1), "all": np.zeros(b, np.int64)}.get(
                kind, rng.integers(-1, 2, b)
            )
            engagement = np.where(clicked >= 0, rng.uniform(0, 2, b), 0.0)
            slates = rng.integers(1, 5, (b, 2))
            rows.append(metric.observe(make_snapshot(make_feedback(
                np.arange(b), slates, clicked, engagement), items)))  # fmt: skip
    for col, (lo, hi) in metric.ranges.items():
        values = np.array([r[col] for r in rows], float)
        values = values[~np.isnan(values)]
        assert lo is None or (values >= lo).all() and values.min() == lo, col
        assert hi is None or (values <= hi).all() and values.max() == hi, col


# ----------------------------------------------------------------------------- exposure


def test_exposure_metric_coverage_and_gini():
    """Coverage is the share of live items shown; Gini is over all live items' counts."""
    items = make_items([1, 2, 3, 4, 5])
    fb = make_feedback([0, 1, 2], [[1, 2], [2, 3], [2, 1]], [-1, -1, -1])
    row = ExposureMetric(CTX).measure(make_snapshot(fb, items))
    assert row["exposure/coverage"] == pytest.approx(3 / 5)
    assert row["exposure/gini"] == pytest.approx(gini(np.array([2, 3, 1, 0, 0])))
    assert row["exposure/gini"] == pytest.approx(gini_by_mean_difference([2, 3, 1, 0, 0]))


# ----------------------------------------------------------------------------- source


def test_source_metric_shares():
    """AIGC shares of impressions and of this step's new items."""
    items = make_items([1, 2, 3, 4], source=[0, 1, 1, 0])
    fb = make_feedback([0, 1, 2], [[1, 2], [3, 2], [4, 1]], [0, 0, 0])
    snap = make_snapshot(fb, items, new_item_sources=[1, 0, 0, 0, 1])
    row = SourceMetric(CTX).measure(snap)
    assert row["source/aigc_exposure_share"] == pytest.approx(3 / 6)
    assert row["source/aigc_production_share"] == pytest.approx(2 / 5)
    # clicks: user 0 clicked 1 (human), user 1 clicked 3 (AIGC), user 2 clicked 4 (human)
    assert row["source/aigc_click_share"] == pytest.approx(1 / 3)


def test_source_bias_log_odds_by_hand():
    """Haldane-corrected log odds ratios of exposure vs production; no ceiling, unlike the ratio."""
    items = make_items([1, 2, 3, 4], source=[0, 1, 1, 0])
    fb = make_feedback([0, 1, 2], [[1, 2], [3, 2], [4, 1]], [0, 0, 0])
    # impressions: AIGC 3 (items 2, 3, 2), human 3; new items: 2 AIGC, 3 human
    row = SourceMetric(CTX).measure(make_snapshot(fb, items, new_item_sources=[1, 0, 0, 0, 1]))
    expected = math.log(3.5 / 3.5) - math.log(2.5 / 3.5)
    assert row["source/bias_log_odds_production"] == pytest.approx(expected)
    assert row["source/bias_ratio"] == pytest.approx((3 / 6) / (2 / 5))
    # production 4 AIGC of 5: the ratio is capped at 1.25, the log odds keeps growing
    all_aigc = make_feedback([0, 1, 2], [[2, 3], [3, 2], [2, 3]], [0, 0, 0])
    mostly = make_feedback([0, 1, 2], [[2, 3], [3, 2], [2, 1]], [0, 0, 0])  # 5 of 6 AIGC
    new = [1, 1, 1, 1, 0]
    top = SourceMetric(CTX).measure(make_snapshot(all_aigc, items, new_item_sources=new))
    less = SourceMetric(CTX).measure(make_snapshot(mostly, items, new_item_sources=new))
    assert top["source/bias_ratio"] == pytest.approx(1.25)
    got = top["source/bias_log_odds_production"]
    assert got == pytest.approx(math.log(6.5 / 0.5) - math.log(4.5 / 1.5))
    assert got > less["source/bias_log_odds_production"] > 0
    # nothing AIGC produced: NaN, as the ratio
    none = SourceMetric(CTX).measure(make_snapshot(fb, items, new_item_sources=[0, 0]))
    assert math.isnan(none["source/bias_log_odds_production"]) and math.isnan(
        none["source/bias_ratio"]
    )


@pytest.mark.parametrize(
    ("sources", "slates", "expected"),
    [
        # live 2 AIGC / 2 human; shown 3 / 3: in proportion
        ([0, 1, 1, 0], [[1, 2], [3, 2], [4, 1]], math.log(3.5 / 3.5) - math.log(2.5 / 2.5)),
        # shown only AIGC
        ([0, 1, 1, 0], [[2, 3], [3, 2], [2, 3]], math.log(6.5 / 0.5) - math.log(2.5 / 2.5)),
        # live 1 AIGC / 3 human, shown 3 AIGC / 3 human: over-exposed
        ([0, 1, 0, 0], [[1, 2], [3, 2], [4, 2]], math.log(3.5 / 3.5) - math.log(1.5 / 3.5)),
        # live 3 AIGC / 1 human, shown 2 AIGC / 4 human: under-exposed
        ([0, 1, 1, 1], [[1, 2], [1, 3], [1, 4]], math.log(3.5 / 3.5) - math.log(3.5 / 1.5)),
        # no AIGC live: NaN
        ([0, 0, 0, 0], [[1, 2], [3, 4], [1, 4]], float("nan")),
    ],
)
def test_source_bias_against_the_live_catalog_by_hand(sources, slates, expected):
    """log[(A + 1/2)/(H + 1/2)] - log[(a + 1/2)/(h + 1/2)] over impressions and live items."""
    items = make_items([1, 2, 3, 4], source=sources)
    fb = make_feedback([0, 1, 2], slates, [0, 0, 0])
    row = SourceMetric(CTX).measure(make_snapshot(fb, items, new_item_sources=[1, 0]))
    shown = np.array(slates).ravel()
    aigc = int(np.isin(shown, np.array([1, 2, 3, 4])[np.array(sources) == 1]).sum())
    assert row["source/aigc_impressions"] == aigc and row["source/human_impressions"] == 6 - aigc
    assert row["source/aigc_live"] == sum(sources) and row["source/human_live"] == 4 - sum(sources)
    if math.isnan(expected):
        assert math.isnan(row["source/bias_log_odds"])
    else:
        assert row["source/bias_log_odds"] == pytest.approx(expected)


def test_a_random_agent_reads_no_bias_against_the_catalog():
    """Random slates read about 0 against the catalog; against production, the difference."""
    rng = np.random.default_rng(0)
    ids = np.arange(1, 201)
    sources = (rng.random(200) < 0.3).astype(int)  # 30% of the live catalog is AIGC
    items = make_items(ids.tolist(), source=sources.tolist())
    slates = np.stack([rng.choice(ids, 10, replace=False) for _ in range(3000)])
    fb = make_feedback(list(range(3000)), slates.tolist(), [0] * 3000)
    row = SourceMetric(CTX).measure(make_snapshot(fb, items, new_item_sources=[1] * 5 + [0] * 5))
    assert abs(row["source/bias_log_odds"]) < 0.05
    assert row["source/bias_log_odds_production"] < -0.7  # 30% shown against 50% produced


def test_source_user_polarization_by_hand():
    """Var over users of their slates' AIGC share, over p (1 - p); 1 when sources segregate."""
    items = make_items([1, 2, 3, 4], source=[0, 1, 1, 0])
    # slate AIGC shares a_u: 1/2, 1, 0 -> mean 1/2, variance (0 + 1/4 + 1/4) / 3 = 1/6
    fb = make_feedback([0, 1, 2], [[1, 2], [3, 2], [4, 1]], [-1, -1, -1])
    row = SourceMetric(CTX).measure(make_snapshot(fb, items))
    assert row["source/user_polarization"] == pytest.approx((1 / 6) / (1 / 4))
    # every user sees one source only -> 1; every user the same mix -> 0
    split = make_feedback([0, 1], [[2, 3], [1, 4]], [-1, -1])
    assert SourceMetric(CTX).measure(make_snapshot(split, items))[
        "source/user_polarization"
    ] == pytest.approx(1.0)
    same = make_feedback([0, 1], [[1, 2], [3, 4]], [-1, -1])
    assert SourceMetric(CTX).measure(make_snapshot(same, items))[
        "source/user_polarization"
    ] == pytest.approx(0.0)
    # one source in every slate: p (1 - p) = 0 -> NaN
    human = make_feedback([0], [[1, 4]], [-1])
    assert math.isnan(
        SourceMetric(CTX).measure(make_snapshot(human, items))["source/user_polarization"]
    )


def test_source_click_share_counts_only_clicks():
    """Users who do not click do not count; no click at all gives NaN."""
    items = make_items([1, 2, 3], source=[1, 0, 1])
    fb = make_feedback([0, 1, 2], [[1, 2], [2, 3], [3, 1]], [0, -1, 1])
    row = SourceMetric(CTX).measure(make_snapshot(fb, items))
    assert row["source/aigc_click_share"] == pytest.approx(1.0)  # items 1 and 1: both AIGC
    none = make_feedback([0], [[1, 2]], [-1])
    assert math.isnan(
        SourceMetric(CTX).measure(make_snapshot(none, items))["source/aigc_click_share"]
    )


def test_creator_metric_counts_creators_with_live_items():
    """Distinct creators of the live items, by kind."""
    from simlab.metrics import CreatorMetric

    items = make_items([1, 2, 3, 4, 5], source=[0, 0, 1, 1, 0])
    items.creator = np.array([7, 7, 9, 9, 8])  # creators 7 and 8 human, 9 AIGC
    fb = make_feedback([0, 1], [[1, 2], [1, 3]], [-1, -1])
    row = CreatorMetric(CTX).measure(make_snapshot(fb, items))
    assert row["creators/active_human"] == 2 and row["creators/active_aigc"] == 1
    # impressions per creator: 7 -> 3 (items 1, 2, 1), 8 -> 0, 9 -> 1 (item 3)
    assert row["creators/exposure_gini"] == pytest.approx(gini_by_mean_difference([3, 0, 1]))
    assert math.isnan(row["creators/survival"])  # no creator table: survival unknown


def test_creator_metric_with_a_creator_table():
    """Exited creators are not active; survival = active / ever seen."""
    from simlab.environments.creator_pool import CreatorTable
    from simlab.metrics import CreatorMetric

    items = make_items([1, 2, 3], source=[0, 1, 0])
    items.creator = np.array([0, 2, 3])
    table = CreatorTable(
        source=np.array([0, 0, 1, 0], np.int8),
        active=np.array([True, False, True, True]),
        entered=np.array([-1, -1, -1, 4]),
        exited=np.array([-1, 6, -1, -1]),
    )
    fb = make_feedback([0], [[1, 2]], [-1])
    snap = make_snapshot(fb, items)
    snap.creators = table
    row = CreatorMetric(CTX).measure(snap)
    assert (row["creators/active_human"], row["creators/active_aigc"]) == (2, 1)
    assert row["creators/survival"] == pytest.approx(3 / 4)
    # active creators 0, 2, 3 got 1, 1, 0 impressions
    assert row["creators/exposure_gini"] == pytest.approx(gini_by_mean_difference([1, 1, 0]))


def test_source_metric_empty_is_nan():
    """No impressions and no new items give NaN shares."""
    items = make_items([1, 2], source=[1, 1])
    fb = make_feedback([], np.zeros((0, 2)), [], [])
    row = SourceMetric(CTX).measure(make_snapshot(fb, items, new_item_sources=[]))
    assert math.isnan(row["source/aigc_exposure_share"])
    assert math.isnan(row["source/aigc_production_share"])
    # AIGC published but nothing shown: no bias to measure
    row = SourceMetric(CTX).measure(make_snapshot(fb, items, new_item_sources=[1, 0]))
    assert math.isnan(row["source/bias_ratio"]) and math.isnan(row["source/bias_log_odds"])


# ----------------------------------------------------------------------------- diversity


def brute_force_diversity(slates: np.ndarray, items: ItemTable) -> float:
    """Mean over slates of the mean pairwise cosine distance of their latent embeddings."""
    per_slate = []
    for slate in slates:
        e = [items.latent[np.searchsorted(items.item_ids, i)].astype(np.float64) for i in slate]
        d = [
            1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
            for a, b in itertools.combinations(e, 2)
        ]
        per_slate.append(np.mean(d))
    return float(np.mean(per_slate))


@pytest.mark.parametrize("k", [2, 3, 5])
def test_diversity_matches_brute_force(k):
    """Intra-list diversity equals a brute-force mean pairwise cosine distance."""
    rng = np.random.default_rng(k)
    item_ids = np.arange(10, 40, 3)
    items = make_items(item_ids, dim=6, seed=k)
    slates = np.stack([rng.choice(item_ids, size=k, replace=False) for _ in range(7)])
    fb = make_feedback(np.arange(7), slates, np.full(7, -1))
    row = DiversityMetric(CTX).measure(make_snapshot(fb, items, num_users=7))
    assert row["diversity/intra_list"] == pytest.approx(brute_force_diversity(slates, items))


def test_diversity_by_hand():
    """Orthogonal items have distance 1, identical directions 0, opposite 2."""
    latent = np.array([[1, 0, 0], [0, 1, 0], [-1, 0, 0]], np.float32)
    items = make_items([1, 2, 3], latent=latent)
    fb = make_feedback([0, 1], [[1, 2], [1, 3]], [-1, -1])
    row = DiversityMetric(CTX).measure(make_snapshot(fb, items))
    assert row["diversity/intra_list"] == pytest.approx((1.0 + 2.0) / 2)


def test_diversity_undefined_for_single_item_slates():
    """Slates of one item (no pairs) give NaN."""
    items = make_items([1, 2])
    fb = make_feedback([0, 1], [[1], [2]], [0, -1])
    assert math.isnan(
        DiversityMetric(CTX).measure(make_snapshot(fb, items))["diversity/intra_list"]
    )


# ----------------------------------------------------------------------------- drift


def test_interest_drift_by_hand():
    """Interest drift is the mean L2 distance from step-0 interests over the population."""
    initial = np.array([[1, 0], [0, 1], [1, 0]], np.float32)
    current = np.array([[0, 1], [0, 1], [0.6, 0.8]], np.float32)
    items = make_items([1], dim=2)
    fb = make_feedback([0], [[1]], [-1])
    snap = make_snapshot(fb, items, interests=current, initial_interests=initial, num_users=3)
    want = (math.sqrt(2) + 0 + math.sqrt(0.4**2 + 0.8**2)) / 3
    assert InterestDriftMetric(CTX).measure(snap)["echo/interest_drift"] == pytest.approx(want)


# ----------------------------------------------------------------------------- homogenization


class ReferenceHomogenization:
    """Cumulative consumption sets per user, compared with :func:`jaccard_pairs`."""

    def __init__(self, metric: HomogenizationMetric, num_users: int) -> None:
        self.a, self.b = metric.pair_a, metric.pair_b
        self.sets: list[set[int]] = [set() for _ in range(num_users)]

    def observe(self, fb: Feedback) -> float:
        """Add this step's clicks and return the mean Jaccard over the metric's pairs."""
        for user, item in zip(fb.user_ids[fb.clicked], fb.clicked_items[fb.clicked], strict=True):
            self.sets[int(user)].add(int(item))
        sets_a = [self.sets[u] for u in self.a]
        sets_b = [self.sets[u] for u in self.b]
        return float(jaccard_pairs(sets_a, sets_b).mean())


def test_homogenization_pairs_are_valid_and_deterministic():
    """Pairs join two distinct users in range and depend only on the seed."""
    ctx = SimpleNamespace(seed=3, num_users=50)
    m1, m2 = HomogenizationMetric(ctx), HomogenizationMetric(ctx)
    np.testing.assert_array_equal(m1.pair_a, m2.pair_a)
    np.testing.assert_array_equal(m1.pair_b, m2.pair_b)
    assert m1.pair_a.shape == (50 * 49 // 2,)
    assert (m1.pair_a != m1.pair_b).all()
    assert m1.pair_a.min() >= 0 and max(m1.pair_a.max(), m1.pair_b.max()) < 50
    other = HomogenizationMetric(SimpleNamespace(seed=4, num_users=50))
    assert not np.array_equal(m1.pair_a, other.pair_a)


def test_homogenization_caps_pairs():
    """At most ``max_pairs`` pairs are tracked in a large population."""
    m = HomogenizationMetric(SimpleNamespace(seed=0, num_users=10_000))
    assert m.pair_a.shape == (HomogenizationMetric.max_pairs,)


def test_homogenization_single_user_is_nan():
    """A population of one user has no pairs, so homogenization is NaN."""
    items = make_items([1, 2])
    m = HomogenizationMetric(SimpleNamespace(seed=0, num_users=1))
    fb = make_feedback([0], [[1, 2]], [0])
    assert math.isnan(m.measure(make_snapshot(fb, items, num_users=1))["echo/homogenization"])


def test_homogenization_by_hand_same_item_same_step_and_repeats():
    """Hand-checked Jaccard with a shared item in one step and repeated consumption."""
    ctx = SimpleNamespace(seed=0, num_users=2)
    m = HomogenizationMetric(ctx)
    assert sorted({int(m.pair_a[0]), int(m.pair_b[0])}) == [0, 1]
    items = make_items([1, 2, 3, 4, 5])

    def step(clicks: list[int], t: int) -> float:
        """Users 0 and 1 each see items [1..5] and click at ``clicks`` (-1: none)."""
        fb = make_feedback([0, 1], [[1, 2, 3, 4, 5]] * 2, clicks, step=t)
        return m.measure(make_snapshot(fb, items, num_users=2))["echo/homogenization"]

    assert step([-1, -1], 0) == 0.0  # both empty: 0 by convention
    assert step([0, 0], 1) == pytest.approx(1.0)  # {1} vs {1}: same item, same step
    assert step([0, 1], 2) == pytest.approx(1 / 2)  # {1} vs {1, 2}: user 0 repeats item 1
    assert step([1, -1], 3) == pytest.approx(1.0)  # {1, 2} vs {1, 2}
    assert step([2, 2], 4) == pytest.approx(1.0)  # {1, 2, 3} vs {1, 2, 3}
    assert step([3, 2], 5) == pytest.approx(3 / 4)  # {1, 2, 3, 4} vs {1, 2, 3}


@pytest.mark.parametrize(
    ("num_users", "num_items", "seed"),
    [(2, 3, 0), (6, 4, 1), (12, 8, 2), (40, 15, 3), (70, 200, 4)],
)
def test_homogenization_matches_reference_sets(num_users, num_items, seed):
    """The incremental metric equals Jaccard over Python sets after every step of random clicks.

    Few items make collisions frequent: pair members consuming the same item in the same
    step, users repeating items, and the same user in several pairs.
    """
    ctx = SimpleNamespace(seed=seed, num_users=num_users)
    metric = HomogenizationMetric(ctx)
    ref = ReferenceHomogenization(metric, num_users)
    item_ids = np.arange(100, 100 + 7 * num_items, 7)  # sparse, non-contiguous ids
    items = make_items(item_ids, seed=seed)
    rng = np.random.default_rng(seed)
    k = min(3, num_items)
    for t in range(12):
        served = np.flatnonzero(rng.random(num_users) < 0.7)
        slates = np.array([rng.choice(item_ids, size=k, replace=False) for _ in served])
        slates = slates.reshape(served.shape[0], k)
        clicks = np.where(
            rng.random(served.shape[0]) < 0.6, rng.integers(0, k, served.shape[0]), -1
        )
        fb = make_feedback(served, slates, clicks, step=t)
        got = metric.measure(make_snapshot(fb, items, num_users=num_users))
        assert got["echo/homogenization"] == pytest.approx(ref.observe(fb), abs=1e-12), f"t={t}"


def test_homogenization_large_item_ids():
    """Item ids near 2**31 are handled (keys pack user and item into one int64)."""
    ctx = SimpleNamespace(seed=0, num_users=3)
    metric = HomogenizationMetric(ctx)
    ref = ReferenceHomogenization(metric, 3)
    item_ids = np.array([5, 2**31 - 2, 2**31 + 7])
    items = make_items(item_ids)
    for t, clicks in enumerate(([0, 1, 2], [1, 1, 1], [2, 0, -1])):
        fb = make_feedback([0, 1, 2], [item_ids] * 3, clicks, step=t)
        got = metric.measure(make_snapshot(fb, items, num_users=3))["echo/homogenization"]
        assert got == pytest.approx(ref.observe(fb))


def test_pairwise_measures_every_n_steps_match_every_step():
    """With measures.pairwise_every = 3, homogenization is measured every third step.

    It is NaN in between and equals the every-step value on measured steps;
    ``pairwise_pairs`` sets the sample size.
    """
    from conftest import make_small

    from simlab.world import World

    def series(*over):
        world = World(make_small(*over, "users.drift_rate=0.1", steps=9), 1, 0)
        return [world.step(t)["echo/homogenization"] for t in range(9)], world

    every, _ = series()
    third, _ = series("measures.pairwise_every=3")
    for t in range(9):
        if (t + 1) % 3:
            assert math.isnan(third[t])
        else:
            assert third[t] == pytest.approx(every[t], rel=1e-12)
    _, small = series("measures.pairwise_pairs=50")
    homog = next(m for m in small.metrics if m.name == "homogenization")
    assert homog.pair_a.shape == (50,)


def test_gini_is_nan_without_exposure_and_exact_for_tiny_inputs():
    """No items or no exposure: NaN, returned without a 0/0 (found by mutation testing)."""
    with np.errstate(all="raise"):
        assert math.isnan(gini(np.zeros(0)))
        assert math.isnan(gini(np.zeros(4)))
        assert gini(np.array([0, 1])) == pytest.approx(0.5)
        assert gini(np.array([1])) == 0.0


def test_creator_counts_without_a_creator_table_are_exact():
    """Distinct creators of live items by source, and the Gini over them (no creator table)."""
    from simlab.metrics.creators import CreatorMetric

    items = make_items([10, 11, 12, 13, 14], source=[0, 1, 1, 0, 1])
    items.creator[:] = [0, 2, 2, 5, 7]
    # user 0 sees items 10, 11; user 1 sees 11, 13; item 14 (creator 7) is never shown
    fb = make_feedback([0, 1], [[10, 11], [11, 13]], [-1, -1])
    row = CreatorMetric(CTX).measure(make_snapshot(fb, items))
    assert row["creators/active_human"] == 2  # creators 0 and 5
    assert row["creators/active_aigc"] == 2  # creators 2 and 7
    # exposure per active creator (0, 2, 5, 7): 1, 2, 1, 0
    assert row["creators/exposure_gini"] == pytest.approx(gini(np.array([1, 2, 1, 0])))
    assert math.isnan(row["creators/survival"])


def test_creator_counts_from_the_creator_table_are_exact():
    """With a creator table: active by source from it, survival = active / ever seen."""
    from simlab.metrics.creators import CreatorMetric

    items = make_items([10, 11, 12])
    items.creator[:] = [0, 1, 3]
    table = SimpleNamespace(
        num_creators=6,
        active=np.array([True, True, False, True, True, True]),
        source=np.array([0, 1, 0, 1, 1, 0]),
    )
    fb = make_feedback([0], [[10, 12]], [-1])
    snap = make_snapshot(fb, items)
    snap.creators = table
    row = CreatorMetric(CTX).measure(snap)
    assert row["creators/active_aigc"] == 3  # creators 1, 3, 4
    assert row["creators/active_human"] == 2  # creators 0, 5
    assert row["creators/survival"] == pytest.approx(5 / 6)
    # exposure of active creators 0, 1, 3, 4, 5: 1, 0, 1, 0, 0
    assert row["creators/exposure_gini"] == pytest.approx(gini(np.array([1, 0, 1, 0, 0])))
