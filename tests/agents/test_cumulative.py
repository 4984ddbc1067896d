"""What Chaney's recommenders share: the cumulative log, the item book and known-first ranking."""

from __future__ import annotations

import numpy as np
import pytest
from test_chaney_agents import _catalog, _obs

from simlab.agents import cumulative
from simlab.agents.cumulative import CumulativeLog, ItemBook, rank_known_first
from simlab.batch import Feedback, Log, Observation
from simlab.rng import Stream

FEATS = np.eye(8, 3)


def _log_of(steps: dict[int, list[tuple[int, list[int], int]]]) -> Log:
    """{step: [(user, slate, clicked position or -1), ...]} as a log over 8 items."""
    fbs = []
    for step, rows in sorted(steps.items()):
        users = np.array([r[0] for r in rows], np.int64)
        slates = np.array([r[1] for r in rows], np.int64)
        pos = np.array([r[2] for r in rows], np.int64)
        fbs.append(Feedback(step, users, slates, pos, np.ones(len(rows), np.float32)))
    return Log.of_steps(fbs, np.arange(8, dtype=np.int64), FEATS.astype(np.float32))


def test_log_keeps_clicks_at_any_position_and_skips_rows_without_one():
    """A consumption is the clicked item wherever it sits in the slate; no click, no row."""
    h = CumulativeLog()
    assert (h.horizon, h.users.size) == (-1, 0)
    h.ingest(_log_of({0: [(0, [1, 2, 3], 2), (1, [4, 5, 6], -1), (2, [7, 0, 1], 0)]}))
    assert list(zip(h.users.tolist(), h.items.tolist(), strict=True)) == [(0, 3), (2, 7)]
    assert h.horizon == 0


def test_log_takes_no_step_twice_even_when_an_old_window_comes_back():
    """Steps at or before the horizon are never added again, whatever window holds them."""
    h = CumulativeLog()
    h.ingest(_log_of({0: [(0, [1, 2], 0)], 1: [(1, [2, 3], 1)]}))
    h.ingest(_log_of({0: [(0, [1, 2], 0)]}))  # an older window: nothing new
    h.ingest(_log_of({1: [(1, [2, 3], 1)], 2: [(2, [4, 5], 1)]}))
    assert list(zip(h.users.tolist(), h.items.tolist(), strict=True)) == [(0, 1), (1, 3), (2, 5)]
    assert h.horizon == 2
    h.ingest(_log_of({3: [(0, [1, 2], -1)]}))  # a step without clicks: a later horizon
    assert h.horizon == 3 and h.users.size == 3


def test_item_book_publication_steps_and_known_items():
    """Catalog items are published at step - age, log items at -1 (no later than the log).

    ``known(h)`` holds every item published at or before ``h``.
    """
    book = ItemBook(3)
    book.add_log(_log_of({4: [(0, [1, 2], 0)]}))
    assert book.published.tolist() == [-1] * 8
    assert book.known(-1).tolist() == list(range(8))
    book = ItemBook(3)
    cat = _catalog(6, 8, FEATS, np.array([0, 1, 2, 3, 4, 5, 6, 6]))
    book.add_catalog(_obs(6, cat))
    assert book.published.tolist() == [0, 1, 2, 3, 4, 5, 6, 6]
    for h in range(-1, 8):
        assert book.known(h).tolist() == [i for i in range(8) if book.published[i] <= h]
    assert book.known(5).tolist() == [0, 1, 2, 3, 4, 5] and book.known(-1).size == 0
    # an item seen again keeps its first features and publication step
    later = _catalog(9, 8, FEATS * 2, np.full(8, 9))
    book.add_catalog(_obs(9, later))
    assert book.published.tolist() == [0, 1, 2, 3, 4, 5, 6, 6]
    np.testing.assert_array_equal(book.features, FEATS)


@pytest.mark.parametrize("case", range(10))
def test_items_after_the_horizon_come_last_whatever_the_scores(case):
    """Items newer than the horizon come last in the order of their draws, the others first.

    Negative, zero, huge and tied scores.
    """
    rng = np.random.default_rng(case)
    n, step = 8, 5
    published = rng.integers(0, 6, n)
    horizon = int(rng.integers(0, 5))
    cat = _catalog(step, n, FEATS, published)
    users = np.arange(4)
    obs = _obs(step, cat, users=users)
    scores = rng.choice([-1e6, -3.0, -0.5, 0.0, 0.25, 7.0, 1e9], size=(4, n))
    tb = Stream(case, "t")
    got = rank_known_first(scores, obs, horizon, tb)
    late = published > horizon
    for u in range(4):
        row = got[u].tolist()
        known = [i for i in row if not late[i]]
        assert row[: len(known)] == known  # every late item after every known one
        s = scores[u, known]
        assert (np.diff(s) <= 0).all()
        tail = row[len(known) :]
        u_draws = tb.uniform((int(users[u]) << 32) | np.arange(n), step)
        assert tail == sorted(np.flatnonzero(late).tolist(), key=lambda i: u_draws[i])


@pytest.mark.parametrize("case", range(36))
def test_ranking_is_score_then_draw_for_counts_and_for_real_scores(case):
    """Every row is sorted by (-score, draw), late items last by draw — whatever the scores.

    Small integer scores (counts, negative ones, all equal) take the one-sort path; real
    scores and integers from 2**20 up take the sort-then-ties path: both give the rule.
    """
    rng = np.random.default_rng(100 + case)
    n, step, b = int(rng.integers(2, 40)), 6, int(rng.integers(1, 12))
    kind = case % 6
    if kind == 0:
        scores = rng.integers(0, 4, (b, n)).astype(np.float64)  # counts, many ties
    elif kind == 1:
        scores = -rng.integers(0, 3, (b, n)).astype(np.float64)  # negative counts
    elif kind == 2:
        scores = np.full((b, n), 5.0)  # all tied
    elif kind == 3:
        scores = rng.integers(0, 3, (b, n)) + 2.0**20  # integers too large for one sort
    elif kind == 4:
        scores = rng.choice([0.5, 0.25, 1.0, 2.75], size=(b, n))  # real scores with ties
    else:  # integers so large that a draw added to them would be lost
        scores = rng.integers(1, 4, (b, n)) * 2.0**52
    published = rng.integers(0, step + 1, n)
    horizon = None if case % 2 else int(rng.integers(0, step))
    cat = _catalog(step, n, np.zeros((n, 4)), published)
    users = rng.choice(1000, b, replace=False)
    obs = _obs(step, cat, users=users)
    tb = Stream(case, "t")
    got = rank_known_first(scores, obs, horizon, tb)
    late = np.zeros(n, bool) if horizon is None else published > horizon
    for r in range(b):
        d = tb.uniform((int(users[r]) << 32) | np.arange(n), step)
        want = sorted(
            range(n), key=lambda i: (bool(late[i]), 0.0 if late[i] else -scores[r, i], d[i])
        )
        assert got[r].tolist() == want[: obs.slate_size]


class _CountingStream:
    """A tie-break stream that records the shape of every draw."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.shapes: list[tuple[int, ...]] = []

    def uniform(self, ids, step):
        """The stream's draws, recorded."""
        self.shapes.append(np.shape(ids))
        return self.stream.uniform(ids, step)


@pytest.mark.parametrize("top", [1, 2**19, 2**20 - 1, 2**20, 2**20 + 1, 2**40])
@pytest.mark.parametrize("sign", [1, -1])
def test_draws_for_every_item_only_when_scores_are_integers_below_2_20(top, sign):
    """Distinct integer scores (no ties, nothing late) up to ``top`` in size.

    Below ``2**20`` they are counts: one draw per candidate, a single sort; from ``2**20``
    up no draw at all (there are no ties to break). Either way the order is by score.
    """
    b, n = 3, 7
    scores = sign * (top - np.arange(n, dtype=np.float64))[None].repeat(b, axis=0)
    scores[1] = scores[1, ::-1]
    cat = _catalog(4, n, np.zeros((n, 4)), np.zeros(n, np.int64))
    obs = _obs(4, cat, users=np.arange(b, dtype=np.int64))
    tb = _CountingStream(Stream(1, "t"))
    got = rank_known_first(scores, obs, None, tb)
    assert tb.shapes == ([(b, n)] if top < 2**20 else [])
    want = np.take_along_axis(obs.candidates, np.argsort(-scores, axis=1), axis=1)
    np.testing.assert_array_equal(got, want[:, : obs.slate_size])


def _old_rank_known_first(scores, obs, horizon, tiebreak):
    """The ranking as it was before the stable sorts (kept here as the exact reference)."""
    from simlab.agents.cumulative import _LAST, _pair_ids, _small_integers

    cands = obs.candidates
    b, c = cands.shape
    key = -np.asarray(scores, np.float64)
    counts = _small_integers(key)
    if horizon is not None:
        cat = obs.catalog
        late = (obs.step - cat.age) > horizon
        if late.any():
            at = np.nonzero(late[cat.rows(cands)])
            draw = tiebreak.uniform(_pair_ids(obs.user_ids[at[0]], cands[at]), obs.step)
            key[at] = _LAST * (1.0 + draw)
    if counts:
        key += tiebreak.uniform(_pair_ids(obs.user_ids[:, None], cands), obs.step)
        return np.take_along_axis(cands, np.argsort(key, axis=1)[:, : obs.slate_size], axis=1)
    order = np.argsort(key, axis=1)
    ranked = np.take_along_axis(key, order, axis=1)
    changes = ranked[:, 1:] != ranked[:, :-1]
    tied = np.flatnonzero(~changes.all(axis=1))
    if tied.size:
        group = np.zeros((tied.shape[0], c))
        np.cumsum(changes[tied], axis=1, out=group[:, 1:])
        items = np.take_along_axis(cands[tied], order[tied], axis=1)
        group += tiebreak.uniform(_pair_ids(obs.user_ids[tied][:, None], items), obs.step)
        order[tied] = np.take_along_axis(order[tied], np.argsort(group, axis=1), axis=1)
    return np.take_along_axis(cands, order[:, : obs.slate_size], axis=1)


class _CoarseStream:
    """Draws rounded to ``levels`` values: run-plus-draw values repeat (the exact fallback)."""

    def __init__(self, stream: Stream, levels: int) -> None:
        self.stream, self.levels = stream, levels

    def uniform(self, ids, step):
        """The stream's draws, rounded down to ``1 / levels`` steps (+ half a step)."""
        u = self.stream.uniform(ids, step)
        return (np.floor(u * self.levels) + 0.5) / self.levels


def _wide_case(case: int):
    """Scores over 64-400 per-user candidates: one long run, a few repeats, or none."""
    rng = np.random.default_rng(500 + case)
    b, n, step = int(rng.integers(1, 30)), int(rng.integers(64, 400)), 9
    kind = case % 4
    scores = rng.standard_normal((b, n))
    if kind == 0:  # most items unseen by the model: one score for all of them
        scores[rng.random((b, n)) < 0.8] = 0.125
    elif kind == 1:  # a few repeats
        scores[:, ::13] = np.round(scores[:, ::13], 1)
    elif kind == 2:  # rows of the one score (a user the model knows nothing of)
        scores[rng.random(b) < 0.5] = -2.5
    published = rng.integers(0, step + 1, n + 50)
    cat = _catalog(step, n + 50, np.zeros((n + 50, 2)), published)
    users = np.sort(rng.choice(10_000, b, replace=False))
    cands = np.stack([rng.permutation(n + 50)[:n] for _ in range(b)]).astype(np.int64)
    obs = Observation(
        step=step, user_ids=users, user_features=np.zeros((b, 1), np.float32),
        history=np.full((b, 1), -1), candidates=cands, catalog=cat,
        slate_size=int(rng.integers(1, n + 1)), shared_candidates=False,
    )  # fmt: skip
    horizon = None if case % 3 == 0 else int(rng.integers(0, step))
    return scores, obs, horizon, published


@pytest.mark.parametrize("case", range(24))
def test_wide_rows_rank_by_score_then_draw(case):
    """Rows wide enough for the stable sorts: still (-score, draw), late items last."""
    scores, obs, horizon, published = _wide_case(case)
    tb = Stream(case, "t")
    got = rank_known_first(scores, obs, horizon, tb)
    for r in range(obs.num_users):
        cands = obs.candidates[r]
        late = np.zeros(cands.size, bool) if horizon is None else published[cands] > horizon
        d = tb.uniform((int(obs.user_ids[r]) << 32) | cands, obs.step)
        key = np.where(late, np.inf, -scores[r])
        want = cands[np.lexsort((d, key))]
        assert got[r].tolist() == want[: obs.slate_size].tolist()


@pytest.mark.parametrize("levels", [1, 2, 16, 2**20])
@pytest.mark.parametrize("case", range(16))
def test_equal_to_the_ranking_before_the_stable_sorts_bit_for_bit(case, levels):
    """Equal to the ranking before the stable sorts, whatever the draws.

    Coarse draws tie run-plus-draw values; those rows then rank as before, the unstable
    sorts' order of equal values included.
    """
    scores, obs, horizon, _ = _wide_case(case)
    tb = _CoarseStream(Stream(case, "t"), levels)
    np.testing.assert_array_equal(
        rank_known_first(scores, obs, horizon, tb), _old_rank_known_first(scores, obs, horizon, tb)
    )


@pytest.mark.parametrize(
    ("width", "distinct", "kind"),
    [(63, 1, None), (64, 1, "stable"), (64, 47, "stable"), (64, 48, None), (64, 64, None),
     (100, 74, "stable"), (100, 75, None), (400, 299, "stable"), (400, 300, None)],
)  # fmt: skip
def test_keys_mostly_repeated_in_the_first_row_take_the_stable_sort(width, distinct, kind):
    """From 64 keys, fewer than 3/4 distinct in the first row: the stable sort (faster there)."""
    first = np.concatenate([np.arange(distinct), np.zeros(width - distinct)])
    key = np.stack([first, np.arange(width, dtype=np.float64)])  # only row 0 is counted
    assert cumulative._key_sort_kind(key) == kind


@pytest.mark.parametrize(
    ("cells", "differ", "kind"),
    [(4, 4, "stable"), (4, 3, None), (8, 7, "stable"), (8, 6, None), (100, 76, "stable"),
     (100, 75, None), (100, 0, None), (99, 75, "stable"), (99, 74, None)],
)  # fmt: skip
def test_run_values_with_few_repeats_take_the_stable_sort(cells, differ, kind):
    """More than 3/4 of the neighbouring keys differ: nearly sorted, the adaptive stable sort."""
    changes = np.zeros((1, cells), bool)
    changes[0, :differ] = True
    assert cumulative._run_sort_kind(changes) == kind
    assert cumulative._run_sort_kind(changes.reshape(-1, 1) if cells % 2 else changes) == kind


def test_an_empty_log_changes_nothing():
    """A log without rows leaves the consumptions and the horizon as they were."""
    log = CumulativeLog()
    log.ingest(_log_of({2: [(0, [5, 6], 1)]}))
    none = np.zeros(0, np.int64)
    fb = Feedback(3, none, np.zeros((0, 2), np.int64), none, np.zeros(0, np.float32))
    empty = Log.of_steps([fb], np.arange(8, dtype=np.int64), FEATS.astype(np.float32))
    assert empty.num_rows == 0
    log.ingest(empty)
    assert log.users.tolist() == [0] and log.items.tolist() == [6] and log.horizon == 2


@pytest.mark.parametrize("width", [3, 64, 300])
def test_no_users_get_no_slates_whatever_the_width(width):
    """Zero users to serve (every user churned, an empty shard): a (0, k) answer."""
    cat = _catalog(4, width, np.zeros((width, 2)), np.zeros(width, np.int64))
    obs = _obs(4, cat, users=np.zeros(0, np.int64))
    for scores in (np.zeros((0, width)), np.zeros((0, width)) + 0.5):
        got = rank_known_first(scores, obs, 2, Stream(0, "t"))
        assert got.shape == (0, obs.slate_size)
    assert cumulative._key_sort_kind(np.zeros((0, width))) is None


@pytest.mark.parametrize("case", range(6))
def test_scores_with_small_fractional_keys_are_not_counts(case):
    """Keys (-score) just above integers (2.1, 5.3, ...) are real scores, not counts.

    They rank by score, then draw; a draw added to them would reorder different scores.
    """
    rng = np.random.default_rng(900 + case)
    b, n = 4, int(rng.integers(5, 30))
    scores = -(rng.integers(0, 5, (b, n)) + rng.choice([0.1, 0.2, 0.3, 0.4], (b, n)))
    cat = _catalog(6, n, np.zeros((n, 2)), np.zeros(n, np.int64))
    obs = _obs(6, cat, users=np.arange(b, dtype=np.int64))
    tb = Stream(case, "t")
    got = rank_known_first(scores, obs, None, tb)
    for r in range(b):
        d = tb.uniform((r << 32) | np.arange(n), 6)
        want = sorted(range(n), key=lambda i: (-scores[r, i], d[i]))
        assert got[r].tolist() == want


@pytest.mark.parametrize("block", [1, 7, 1 << 16])
@pytest.mark.parametrize("bad", [None, 0.5, -(2.0**20), 2.0**20 - 0.5, np.nan, np.inf])
@pytest.mark.parametrize("where", [0, 5, 150, 299])
def test_small_integers_checks_every_row_in_any_blocks(monkeypatch, block, bad, where):
    """Counts below 2**20 in size: True; one other key in any row (first, middle, last): False."""
    monkeypatch.setattr(cumulative, "_CHECK_BLOCK", block)
    key = np.random.default_rng(where).integers(-(2**20) + 1, 2**20, size=(300, 9)).astype(float)
    if bad is not None:
        key[where, where % 9] = bad
    assert cumulative._small_integers(key) is (bad is None)
