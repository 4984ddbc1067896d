"""simlab.metrics' source and creator groups on hand-built snapshots, against hand values."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from test_metrics import CTX, gini_by_mean_difference, make_feedback, make_items, make_snapshot

from simlab.metrics import (
    SourceMetric,
    gini,
)

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
