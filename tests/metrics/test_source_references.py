"""Every column of the source metric against a plain-Python reference, on random steps.

The reference below is written from the definitions in :mod:`simlab.metrics.source`'s
docstring (shares, Haldane log odds, the DCG-discounted relative delta, the rewrite/original
pair order of ``llm_ratio``, the polarization variance), one user and one slot at a time; the
metric must match it on random catalogs with rewrites (some of retired originals), random
slates and clicks, whole and split into user shards.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from simlab.batch import Catalog, Feedback
from simlab.environments.items import ItemTable
from simlab.metrics import SourceMetric, StepSnapshot
from simlab.metrics.source import log_odds_ratio

CTX = SimpleNamespace(seed=0, num_users=8)
NAN = float("nan")


def items_table(ids, source, original) -> ItemTable:
    """A latent item table (zero latents) with sources and rewrite originals."""
    ids = np.asarray(ids, np.int64)
    n = ids.shape[0]
    latent = np.zeros((n, 2), np.float32)
    return ItemTable(
        item_ids=ids,
        creator=np.zeros(n, np.int64),
        source=np.asarray(source, np.int8),
        topic=np.zeros(n, np.int64),
        latent=latent,
        features=latent.copy(),
        quality=np.zeros(n, np.float32),
        published=np.zeros(n, np.int64),
        original=np.asarray(original, np.int64),
    )


def snapshot(items: ItemTable, users, slates, clicked_pos, new_sources) -> StepSnapshot:
    """A step snapshot of the given users' slates over ``items``."""
    users = np.asarray(users, np.int64)
    fb = Feedback(
        step=2,
        user_ids=users,
        slates=np.asarray(slates, np.int64).reshape(users.shape[0], np.shape(slates)[-1]),
        clicked_pos=np.asarray(clicked_pos, np.int64),
        engagement=np.zeros(users.shape[0], np.float32),
    )
    catalog = Catalog(
        item_ids=items.item_ids,
        features=items.features,
        creator=items.creator,
        age=np.zeros(items.item_ids.shape[0], np.int64),
    )
    return StepSnapshot(
        step=2,
        num_users=CTX.num_users,
        feedback=fb,
        catalog=catalog,
        items=items,
        new_item_sources=np.asarray(new_sources, np.int8),
    )


def ratio(a, b) -> float:
    """``a / b``, NaN when ``b`` is 0."""
    return a / b if b else NAN


def reference(ids, source, original, slates, clicked_pos, new_sources) -> dict[str, float]:
    """Every column by loops over users and slots, from the module's definitions."""
    src = dict(zip(ids, source, strict=True))
    orig = dict(zip(ids, original, strict=True))
    shown = [item for row in slates for item in row]
    aigc = sum(src[i] for i in shown)
    human = len(shown) - aigc
    clicks = [row[p] for row, p in zip(slates, clicked_pos, strict=True) if p >= 0]
    live_a = sum(source)
    live_h = len(ids) - live_a
    new_a, new_n = sum(new_sources), len(new_sources)

    def log_odds(a, h, ra, rh):
        if ra == 0 or a + h == 0:
            return NAN
        return math.log((a + 0.5) / (h + 0.5)) - math.log((ra + 0.5) / (rh + 0.5))

    dexp = {0: 0.0, 1: 0.0}
    for row in slates:
        for k, item in enumerate(row):
            dexp[src[item]] += 1.0 / math.log2(k + 2)
    e_h, e_a = ratio(dexp[0], live_h), ratio(dexp[1], live_a)
    first = pairs = 0
    live_pairs = [(r, o) for r, o in orig.items() if o >= 0 and o in src]
    for row in slates:
        pos = {item: k for k, item in enumerate(row)}
        for r, o in live_pairs:
            if r in pos or o in pos:
                pairs += 1
                first += r in pos and (o not in pos or pos[r] < pos[o])
    share = [sum(src[i] for i in row) / len(row) for row in slates]
    p = float(np.mean(share)) if share else NAN
    var = float(np.var(share)) if share else NAN
    exposure = ratio(aigc, len(shown))
    production = ratio(new_a, new_n)
    return {
        "source/aigc_exposure_share": exposure,
        "source/aigc_production_share": production,
        "source/aigc_click_share": ratio(sum(src[i] for i in clicks), len(clicks)),
        "source/aigc_catalog_share": ratio(live_a, len(ids)),
        "source/bias_ratio": ratio(exposure, production) if production == production else NAN,
        "source/bias_log_odds": log_odds(aigc, human, live_a, live_h),
        "source/bias_log_odds_production": log_odds(aigc, human, new_a, new_n - new_a),
        "source/aigc_impressions": aigc,
        "source/human_impressions": human,
        "source/aigc_live": live_a,
        "source/human_live": live_h,
        "source/llm_ratio": ratio(first, pairs),
        "source/relative_delta": ratio(e_h - e_a, (e_h + e_a) / 2) if e_h + e_a > 0 else NAN,
        "source/user_polarization": var / (p * (1 - p)) if 0 < p < 1 else NAN,
    }


def random_step(seed: int):
    """Random live items (sparse ids), rewrites of live and retired originals, slates, clicks."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 20))
    ids = np.sort(rng.choice(200, n, replace=False))
    source = (rng.random(n) < rng.uniform(0.2, 0.8)).astype(int)
    original = np.full(n, -1)
    humans = ids[source == 0]
    for j in np.flatnonzero(source == 1):
        if humans.size and rng.random() < 0.7:  # a rewrite of a live human item
            original[j] = rng.choice(humans)
        elif rng.random() < 0.5:  # a rewrite whose original has retired
            original[j] = 500 + j
    b, k = int(rng.integers(1, 8)), int(rng.integers(1, min(n, 6) + 1))
    slates = np.stack([rng.choice(ids, k, replace=False) for _ in range(b)])
    clicked = rng.integers(-1, k, size=b)
    new = (rng.random(int(rng.integers(0, 6))) < 0.5).astype(int)
    return ids, source, original, slates, clicked, new


def newest_rewrites_step(seed: int):
    """A world's catalog: old human items, rewrites after them, the newest never shown.

    Human items have low ids (0 among them), rewrites the highest ids, so an unshown
    rewrite's id can exceed every shown id.
    """
    rng = np.random.default_rng(seed)
    n_h = int(rng.integers(4, 30))
    humans = np.sort(rng.choice(40, n_h, replace=False))
    n_r = int(rng.integers(1, 12))
    rewrites = 40 + np.sort(rng.choice(60, n_r, replace=False))
    ids = np.concatenate([humans, rewrites])
    source = np.r_[np.zeros(n_h, int), np.ones(n_r, int)]
    original = np.r_[np.full(n_h, -1), rng.choice(humans, n_r)]
    unshown = int(rng.integers(1, n_r + 1))  # the newest rewrites: in no slate
    pool = ids[: ids.shape[0] - unshown]
    b, k = int(rng.integers(2, 14)), int(rng.integers(1, min(pool.shape[0], 6) + 1))
    slates = np.stack([rng.choice(pool, k, replace=False) for _ in range(b)])
    clicked = rng.integers(-1, k, size=b)
    return ids, source, original, slates, clicked, np.zeros(0, int)


def assert_row(got: dict[str, float], want: dict[str, float]) -> None:
    """Same columns; equal values (NaN equals NaN), to rounding."""
    assert set(got) == set(want) == set(SourceMetric.columns)
    for col, w in want.items():
        if math.isnan(w):
            assert math.isnan(got[col]), col
        else:
            assert got[col] == pytest.approx(w, rel=1e-12, abs=1e-12), col


@pytest.mark.parametrize("seed", range(40))
def test_every_column_equals_the_reference(seed):
    """Whole-step values equal the loop reference on a random step."""
    ids, source, original, slates, clicked, new = random_step(seed)
    items = items_table(ids, source, original)
    users = np.arange(slates.shape[0]) * 3
    got = SourceMetric(CTX).measure(snapshot(items, users, slates, clicked, new))
    ref = reference(ids.tolist(), source.tolist(), original.tolist(), slates.tolist(), clicked, new)
    assert_row(got, ref)


@pytest.mark.parametrize("seed", range(60))
def test_llm_ratio_of_rewrites_newer_than_every_shown_item(seed):
    """Rewrites with ids above every shown id (published last, not shown yet) still pair.

    A rewrite's id once wrapped around the slate keys of ``user * span + item`` onto another
    user's shown item, dropping pairs the original won.
    """
    ids, source, original, slates, clicked, new = newest_rewrites_step(seed)
    assert ids.max() > slates.max()  # the case: an unshown rewrite above every shown id
    items = items_table(ids, source, original)
    users = np.arange(slates.shape[0])
    got = SourceMetric(CTX).measure(snapshot(items, users, slates, clicked, new))
    ref = reference(ids.tolist(), source.tolist(), original.tolist(), slates.tolist(), clicked, new)
    assert_row(got, ref)


def test_llm_ratio_when_a_rewrite_id_matches_another_users_key():
    """A hand case: a pair the original wins, and one the rewrite wins.

    Items 1-4 are human, 5 rewrites 2, 9 rewrites 1 (never shown): user 0 shows 1 without 9
    (the original wins), user 1 shows 3 and 5 (the rewrite alone: AIGC first).
    """
    items = items_table([1, 2, 3, 4, 5, 9], [0, 0, 0, 0, 1, 1], [-1, -1, -1, -1, 2, 1])
    row = SourceMetric(CTX).measure(snapshot(items, [0, 1], [[1, 3], [3, 5]], [-1, -1], []))
    assert row["source/llm_ratio"] == 1 / 2
    only_human = items_table([1, 2, 3, 4, 9], [0, 0, 0, 0, 1], [-1, -1, -1, -1, 1])
    row = SourceMetric(CTX).measure(snapshot(only_human, [0, 1], [[1, 2], [4, 3]], [-1, -1], []))
    assert row["source/llm_ratio"] == 0.0  # one pair, the original's


@pytest.mark.parametrize("seed", range(12))
def test_user_shards_reduce_to_the_whole_step(seed):
    """Parts of any user split (an empty shard included) reduce to the whole step's row."""
    ids, source, original, slates, clicked, new = random_step(100 + seed)
    items = items_table(ids, source, original)
    b = slates.shape[0]
    users = np.arange(b)
    whole = snapshot(items, users, slates, clicked, new)
    metric = SourceMetric(CTX)
    cut = np.sort(np.random.default_rng(seed).integers(0, b + 1, size=2))
    parts = [
        metric.partial(snapshot(items, users[s], slates[s], clicked[s], new))
        for s in (slice(0, cut[0]), slice(cut[0], cut[1]), slice(cut[1], b))
    ]
    split, one = metric.reduce(parts, whole), metric.measure(whole)
    assert_row(split, one)
    for col, value in one.items():  # the same bits, however the users are split
        assert split[col] == value or (math.isnan(value) and math.isnan(split[col])), col


def test_llm_ratio_and_relative_delta_by_hand():
    """Two rewrite pairs, slates chosen so each pair rule is exercised once."""
    # item 1 (human) <- 2 (AIGC rewrite); item 3 (human) <- 4 (AIGC); 5 human; 6 AIGC of 99
    items = items_table([1, 2, 3, 4, 5, 6], [0, 1, 0, 1, 0, 1], [-1, 1, -1, 3, -1, 99])
    slates = [[2, 1, 5], [3, 5, 4], [5, 6, 1], [6, 5, 4]]
    # user 0: (2, 1) both shown, rewrite higher -> AIGC first; (4, 3) neither -> no pair
    # user 1: (4, 3) both, original higher -> human first
    # user 2: (2, 1) only the original shown -> human first; 6's original retired: no pair
    # user 3: (4, 3) only the rewrite shown -> AIGC first
    row = SourceMetric(CTX).measure(snapshot(items, [0, 1, 2, 3], slates, [-1] * 4, []))
    assert row["source/llm_ratio"] == 2 / 4
    w = [1.0, 1 / math.log2(3), 0.5]  # DCG weights of slots 0, 1, 2
    e_a = (w[0] + w[2] + w[1] + w[0] + w[2]) / 3  # 2@0, 4@2, 6@1, 6@0, 4@2
    e_h = (w[1] + w[2] + w[0] + w[1] + w[0] + w[2] + w[1]) / 3
    assert row["source/relative_delta"] == pytest.approx((e_h - e_a) / ((e_h + e_a) / 2))
    assert math.isnan(row["source/aigc_production_share"])
    assert math.isnan(row["source/bias_ratio"])
    assert math.isnan(row["source/aigc_click_share"])


def test_llm_ratio_is_nan_without_live_pairs():
    """No rewrites, or rewrites of retired originals only: no pair, NaN."""
    for original in ([-1, -1, -1, -1], [-1, 77, -1, 78]):
        items = items_table([1, 2, 3, 4], [0, 1, 0, 1], original)
        row = SourceMetric(CTX).measure(snapshot(items, [0, 1], [[1, 2], [4, 3]], [1, 1], [1]))
        assert math.isnan(row["source/llm_ratio"])
        assert row["source/aigc_click_share"] == 1 / 2
        assert row["source/bias_ratio"] == (2 / 4) / 1.0


@pytest.mark.parametrize(
    ("args", "want"),
    [
        ((30, 70, 10, 90), math.log(30.5 / 70.5) - math.log(10.5 / 90.5)),
        ((0, 5, 3, 3), math.log(0.5 / 5.5)),
        ((4, 0, 1, 0), math.log(4.5 / 0.5) - math.log(1.5 / 0.5)),
        ((3, 4, 0, 10), NAN),  # no AIGC in the reference
        ((0, 0, 3, 4), NAN),  # nothing shown
    ],
)
def test_log_odds_ratio_haldane_corrected(args, want):
    """``log[(A + 1/2)/(H + 1/2)] - log[(a + 1/2)/(h + 1/2)]``, NaN without AIGC or exposure."""
    got = log_odds_ratio(*args)
    assert isinstance(got, float)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-12)
    arr = log_odds_ratio(*[np.array([a, a]) for a in args])  # pooled per seed: arrays
    assert arr.shape == (2,)
    np.testing.assert_allclose(arr, [want, want], rtol=1e-12)


def test_declared_ranges_of_shares_and_counts():
    """Shares and llm_ratio in [0, 1], counts >= 0: the dashboard clips interval bands to them."""
    ranges = SourceMetric.ranges
    assert set(ranges) == set(SourceMetric.columns)
    for col in SourceMetric.columns:
        if col.endswith("_share") or col in ("source/llm_ratio", "source/user_polarization"):
            assert ranges[col] == (0.0, 1.0), col
        elif col.endswith(("_impressions", "_live")) or col == "source/bias_ratio":
            assert ranges[col] == (0.0, None), col
    assert ranges["source/relative_delta"] == (-2.0, 2.0)
    assert ranges["source/bias_log_odds"] == ranges["source/bias_log_odds_production"]
    assert ranges["source/bias_log_odds"] == (None, None)
