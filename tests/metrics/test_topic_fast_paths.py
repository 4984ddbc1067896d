"""The topic measures' fast paths give the plain formulas' sums bit for bit.

`TopicMetric` takes row maxima column by column, counts one broadcast slate's topics once,
and looks Steck's terms up in a table of every (clicks, history length, slate count)
triple when that table is smaller than the users' terms. Each path does the same floating
point operations on the same values as the plain dense formulas below (the former
implementation), so every partial sum must be equal, not merely close: random snapshots with
per-user and broadcast slates, 1-40 topics (either side of the column-by-column width),
short and long histories (table and direct Steck terms), pads, users without history and
topics that only a history holds.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from test_topic_measures import make_items, make_snapshot

from simlab.metrics import topics
from simlab.metrics.sums import shard_sum
from simlab.metrics.topics import TopicMetric, topic_centres_of

ALPHA = TopicMetric.calibration_alpha
KL_BOUND = -math.log(ALPHA)  # KL(h || (1 - a) q + a h) <= sum h log(1 / a)
TAU = TopicMetric.temperature


def _sum(per_user: np.ndarray, bound: float, snap) -> float:
    """Per-user values summed as the metric sums them (any sharding, the same bits)."""
    return shard_sum(per_user, bound, snap.num_users)


def plain_partial(snap) -> dict:
    """The partial sums by the dense formulas: every array (B, K), one reduction each."""
    current = np.asarray(snap.interests, np.float64)
    out = {"kl_sum": 0.0, "bubble_hits": 0, "entropy_sum": 0.0, "steck_sum": 0.0}
    present, centres = topic_centres_of(snap.items.topic, snap.items.latent)
    # similarities of interests and centres on the grid 2^-p (exact integer products)
    p = (52 - math.ceil(math.log2(centres.shape[1]))) // 2
    grid = np.rint(current * 2.0**p) @ np.rint(centres * 2.0**p).T
    logits = grid * 2.0 ** (-2 * p) * TAU
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    p_all = np.exp(log_p)
    if present.size >= 2:
        entropy = -(p_all * log_p).sum(axis=1) / np.log(present.size)
        out["entropy_sum"] = _sum(entropy, 2.0, snap)
    b, n = snap.feedback.slates.shape
    rows = np.ascontiguousarray(snap.rows())
    served = np.asarray(snap.feedback.user_ids, np.int64)
    p, log_p = p_all[served], log_p[served]
    k = p.shape[1]
    slot = np.searchsorted(present, snap.items.topic[rows])
    q = np.bincount((np.arange(b)[:, None] * k + slot).ravel(), minlength=b * k)
    q = q.reshape(b, k).astype(np.float64) / n
    q_smooth = (1.0 - ALPHA) * q + ALPHA * p
    log_q = np.log(q_smooth, out=np.zeros_like(q_smooth), where=p > 0)
    out["kl_sum"] = _sum((p * (log_p - log_q)).sum(axis=1), KL_BOUND, snap)
    out["bubble_hits"] = int((slot == p.argmax(axis=1)[:, None]).sum())
    hist = snap.history_topics
    k = max(int(hist.max()) + 1, int(snap.items.topic.max()) + 1)
    h = np.bincount((np.arange(b)[:, None] * k + hist)[hist >= 0], minlength=b * k)
    h = h.reshape(b, k).astype(np.float64)
    count = h.sum(axis=1)
    has = count > 0
    h = h[has] / count[has, None]
    flat = (np.arange(h.shape[0])[:, None] * k + snap.items.topic[rows[has]]).ravel()
    q = np.bincount(flat, minlength=h.size).reshape(h.shape) / n
    q_smooth = (1.0 - ALPHA) * q + ALPHA * h
    ratio = np.divide(h, q_smooth, out=np.ones_like(h), where=h > 0)
    out["steck_sum"] = _sum((h * np.log(ratio)).sum(axis=1), KL_BOUND, snap)
    out["steck_users"] = int(h.shape[0])
    return out


def random_snapshot(seed: int, topics_n: int, history: int, slate: int, broadcast: bool):
    """Users with random interests, a random catalog and histories (pads, some empty)."""
    rng = np.random.default_rng(seed)
    users, dim, items_n = 60, 6, max(slate, 3 * topics_n)
    topic = np.concatenate([np.arange(topics_n), rng.integers(0, topics_n, items_n - topics_n)])
    latent = rng.standard_normal((items_n, dim))
    interests = rng.standard_normal((users, dim))
    interests /= np.linalg.norm(interests, axis=1, keepdims=True)
    served = np.sort(rng.choice(users, 45, replace=False))
    ids = np.arange(10, 10 + items_n)
    if broadcast:
        slates = np.broadcast_to(rng.choice(ids, slate, replace=False), (served.size, slate))
    else:
        slates = np.stack([rng.choice(ids, slate, replace=False) for _ in served])
    # histories: pads (-1) at random, a few users with none, a topic no live item has
    hist = rng.integers(0, topics_n + 1, (served.size, history))
    hist[rng.random(hist.shape) < 0.3] = -1
    hist[:3] = -1
    items = make_items(topic, latent)
    snap = make_snapshot(items, served, slates, interests, interests[::-1], history_topics=hist)
    if broadcast:  # the rows as the platform hands a non-personalised slate: one broadcast row
        snap.slate_rows = np.broadcast_to(snap.catalog.rows(slates[:1]), slates.shape)
    return snap


CASES = [
    (topics_n, history, slate, broadcast)
    for topics_n in (1, 2, 5, 16, 33, 40)
    for history, slate in ((4, 3), (20, 10), (50, 40))
    for broadcast in (False, True)
]


@pytest.mark.parametrize("topics_n, history, slate, broadcast", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_partials_equal_the_plain_formulas_bit_for_bit(seed, topics_n, history, slate, broadcast):
    """Every partial sum of the metric equals the dense formulas' exactly."""
    snap = random_snapshot(seed, topics_n, history, slate, broadcast)
    assert broadcast == (snap.rows().strides[0] == 0)
    got = TopicMetric(SimpleNamespace(user_range=None)).partial(snap)
    want = plain_partial(snap)
    for key, value in want.items():
        if key == "entropy_sum" and topics_n < 2:
            continue  # undefined with one topic: the metric leaves it at 0
        assert got[key] == value, key  # equal, not close


@pytest.mark.parametrize("width", [1, 2, 3, 31, 32, 33, 60])
def test_row_max_is_numpys_row_maximum(width):
    """Column by column or row by row, the maxima are numpy's (NaN and inf rows included)."""
    rng = np.random.default_rng(width)
    a = rng.standard_normal((257, width))
    a[5] = np.nan  # a NaN row stays NaN
    a[7, : max(width // 2, 1)] = np.inf
    got = topics._row_max(a)
    assert got.shape == (257, 1)
    np.testing.assert_array_equal(got, a.max(axis=1, keepdims=True))


@pytest.mark.parametrize("n", [1, 2, 7, 30])
def test_steck_table_and_direct_terms_agree_for_every_triple(n):
    """Every (clicks, count, shown) triple: the looked-up term is the directly computed one."""
    width = 12
    c, m, j = np.meshgrid(np.arange(width + 1), np.arange(1, width + 1), np.arange(n + 1))
    keep = c <= m
    clicks, count, shown = c[keep][:, None], m[keep], j[keep][:, None]
    direct = topics._kl_terms(clicks / count[:, None], shown / n, ALPHA)
    # many users with these counts make the table the cheaper path
    reps = (width + 1) * width * (n + 1) // clicks.size + 1
    table = topics._steck_terms(
        np.tile(clicks, (reps, 1)), np.tile(count, reps), np.tile(shown, (reps, 1)), n, ALPHA
    )
    np.testing.assert_array_equal(table, np.tile(direct, (reps, 1)))
    assert np.all(direct[clicks[:, 0] == 0] == 0.0)
    assert np.all(np.isfinite(direct))
