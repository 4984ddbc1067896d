"""Exact behaviour of the baseline agents: popularity counts and scores, the oracle's order.

Every expected value here is computed by hand from a small log (the counts) or from the
agent's named keyed stream (the tie-breaks), so a changed count, signal, scale, window
rule or stream key fails a test instead of only changing which random slates come out.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from simlab.agents import OracleAgent, PopularityAgent, RandomAgent
from simlab.agents.baselines import _add_counts, _count_by_id
from simlab.batch import PAD, Catalog, Log, Observation
from simlab.rng import Stream

SEED = 3
CTX = SimpleNamespace(seed=SEED, num_users=6)
TIEBREAK = Stream(SEED, "agent/popularity/tiebreak")


def catalog(n: int, age: np.ndarray | None = None) -> Catalog:
    """Items ``0..n-1`` with zero features (``age`` 0 unless given)."""
    return Catalog(
        item_ids=np.arange(n, dtype=np.int64),
        features=np.zeros((n, 2), np.float32),
        creator=np.zeros(n, np.int64),
        age=np.zeros(n, np.int64) if age is None else np.asarray(age, np.int64),
    )


def observation(cat: Catalog, candidates: np.ndarray | None, k: int, step: int) -> Observation:
    """Users ``0..B-1``; the whole catalog shared when ``candidates`` is None."""
    shared = candidates is None
    cands = np.tile(cat.item_ids, (4, 1)) if shared else np.asarray(candidates, np.int64)
    b = cands.shape[0]
    return Observation(
        step=step,
        user_ids=np.arange(b, dtype=np.int64),
        user_features=np.zeros((b, 2), np.float32),
        history=np.full((b, 1), PAD, np.int64),
        candidates=cands,
        catalog=cat,
        slate_size=k,
        shared_candidates=shared,
    )


def log(steps, slates, clicked_pos, engagement) -> Log:
    """A log from plain lists (one row per served user)."""
    n = len(steps)
    return Log(
        step=np.asarray(steps, np.int64),
        user_ids=np.arange(n, dtype=np.int64),
        slates=np.asarray(slates, np.int64),
        clicked_pos=np.asarray(clicked_pos, np.int64),
        engagement=np.asarray(engagement, np.float32),
    )


# Rows of steps 0, 1, 2; slates are PAD-padded like a log of steps with narrower slates.
# clicks: step 0 -> 4, 2; step 1 -> 4, (none); step 2 -> 5, 2
# impressions: step 0 -> 4 2 1 2 3; step 1 -> 4 1 0 3 ; step 2 -> 5 2 2 4 0
LOG = log(
    steps=[0, 0, 1, 1, 2, 2],
    slates=[[4, 2, 1], [2, 3, PAD], [1, 4, 0], [3, PAD, PAD], [5, 2, 2], [4, 0, 2]],
    clicked_pos=[0, 0, 1, -1, 0, 2],
    engagement=[0.5, 0.25, 2.0, 0.0, 1.5, 0.125],
)
WANT = {  # (ids, counts) per signal over the whole LOG, by hand
    "clicks": ([2, 4, 5], [2.0, 2.0, 1.0]),
    "impressions": ([0, 1, 2, 3, 4, 5], [2.0, 2.0, 5.0, 2.0, 3.0, 1.0]),
    "engagement": ([2, 4, 5], [0.25 + 0.125, 0.5 + 2.0, 1.5]),
}
SECOND = {  # the same over rows 2..5 (steps 1 and 2) only
    "clicks": ([2, 4, 5], [1.0, 1.0, 1.0]),
    "impressions": ([0, 1, 2, 3, 4, 5], [2.0, 1.0, 3.0, 1.0, 2.0, 1.0]),
    "engagement": ([2, 4, 5], [0.125, 2.0, 1.5]),
}
SIGNALS = list(WANT)


def rows(log_: Log, keep) -> Log:
    """The rows ``keep`` of a log."""
    keep = np.asarray(keep, np.int64)
    return log(log_.step[keep], log_.slates[keep], log_.clicked_pos[keep], log_.engagement[keep])


def popularity(signal: str, cumulative: bool = False) -> PopularityAgent:
    """A popularity agent of the shared context."""
    return PopularityAgent(PopularityAgent.Params(signal=signal, cumulative=cumulative), CTX)


def assert_table(agent: PopularityAgent, ids, counts) -> None:
    """The agent's (ids, counts) table equals the expected one exactly."""
    state = agent.state_dict()
    np.testing.assert_array_equal(state["ids"], ids)
    np.testing.assert_array_equal(state["counts"], np.asarray(counts, np.float64))


# ----------------------------------------------------------------------------- popularity


@pytest.mark.parametrize("signal", SIGNALS)
def test_retrain_counts_the_signal_per_item_exactly(signal):
    """The table holds exactly the items with signal (never PAD) and their hand counts."""
    agent = popularity(signal)
    assert_table(agent, [], [])  # nothing before the first retrain, ids and counts aligned
    agent.retrain(LOG)
    assert_table(agent, *WANT[signal])


@pytest.mark.parametrize("signal", SIGNALS)
@pytest.mark.parametrize("step", [0, 7])
def test_scores_are_counts_plus_the_keyed_tiebreak(signal, step):
    """Score = count + 0.5 u (1e-6 u for engagement), u the keyed tie-break of (item, step)."""
    agent = popularity(signal)
    items = np.arange(8, dtype=np.int64)  # 0, 1, 3, 6, 7 have no signal for some signals
    u = TIEBREAK.uniform(items, step)
    scale = 1e-6 if signal == "engagement" else 0.5
    np.testing.assert_array_equal(agent.scores(items, step), scale * u)  # no data yet
    agent.retrain(LOG)
    counts = np.zeros(8)
    counts[WANT[signal][0]] = WANT[signal][1]
    np.testing.assert_array_equal(agent.scores(items, step), counts + scale * u)


def test_engagement_ranks_by_engagement_not_clicks():
    """Item 4 (2.5 engagement, 2 clicks) above 5 (1.5, 1 click) above 2 (0.375, 2 clicks)."""
    agent = popularity("engagement")
    agent.retrain(LOG)
    slates = agent.act(observation(catalog(6), None, 3, step=1)).item_ids
    np.testing.assert_array_equal(slates, np.tile([4, 5, 2], (4, 1)))
    clicks = popularity("clicks")
    clicks.retrain(LOG)
    top = clicks.act(observation(catalog(6), None, 2, step=1)).item_ids[0]
    assert set(top) == {2, 4}  # tied at two clicks: the tie-break orders them


@pytest.mark.parametrize("signal", SIGNALS)
def test_per_user_candidates_rank_like_the_shared_scores(signal):
    """Per-user candidates are ranked by the same scores as the shared catalog."""
    agent = popularity(signal)
    agent.retrain(LOG)
    cands = np.array([[0, 5, 2, 1], [3, 1, 0, 4], [5, 4, 3, 2]])
    got = agent.act(observation(catalog(6), cands, 2, step=4)).item_ids
    s = agent.scores(cands, 4)
    want = np.take_along_axis(cands, np.argsort(-s, axis=1)[:, :2], axis=1)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shared", [True, False])
def test_each_item_is_scored_once_per_step_not_once_per_user(shared, monkeypatch):
    """Shared candidates score their one row; per-user ones the live catalog, then gather.

    Scores are per item (count + keyed tie-break), so both give each user's ranking; this
    pins the cost: tie-break draws for ``C`` or ``N`` items, never ``B x C``.
    """
    agent = popularity("clicks")
    agent.retrain(LOG)
    drawn = []
    uniform = agent._tiebreak.uniform
    monkeypatch.setattr(
        agent._tiebreak,
        "uniform",
        lambda ids, step: drawn.append(np.shape(ids)) or uniform(ids, step),
    )
    cands = None if shared else np.array([[0, 5, 2, 1], [3, 1, 0, 4], [5, 4, 3, 2]])
    got = agent.act(observation(catalog(6), cands, 2, step=4)).item_ids
    assert drawn == [(6,)]
    full = np.tile(np.arange(6), (4, 1)) if shared else cands
    s = agent.scores(full, 4)
    want = np.take_along_axis(full, np.argsort(-s, axis=1)[:, :2], axis=1)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("signal", SIGNALS)
def test_window_retrain_forgets_and_cumulative_counts_each_step_once(signal):
    """Windows steps {0, 1} then {1, 2}: the window counts only its rows, cumulative all once."""
    first, second = rows(LOG, [0, 1, 2, 3]), rows(LOG, [2, 3, 4, 5])
    window, total = popularity(signal), popularity(signal, cumulative=True)
    for agent in (window, total):
        agent.retrain(first)
        agent.retrain(second)
    assert_table(window, *SECOND[signal])
    assert_table(total, *WANT[signal])
    assert total.state_dict()["seen"] == 2
    total.retrain(log([], np.zeros((0, 3)), [], []))  # an empty window adds nothing
    assert_table(total, *WANT[signal])
    assert total.state_dict()["seen"] == 2


@pytest.mark.parametrize("signal", SIGNALS)
@pytest.mark.parametrize(
    ("first", "want"),
    [([0, 1], WANT), ([0, 1, 2, 3], WANT), ([0, 1, 2, 3, 4, 5], WANT), ([2, 3], SECOND)],
)
def test_cumulative_skips_every_step_already_counted_not_only_the_last(signal, first, want):
    """A later window that reaches back over several counted steps adds only the new ones.

    The whole LOG (steps 0, 1, 2) after a first window up to step s adds the steps after s;
    from step 1 on alone (rows 2, 3) step 0 is never counted.
    """
    agent = popularity(signal, cumulative=True)
    agent.retrain(rows(LOG, first))
    agent.retrain(LOG)
    assert_table(agent, *want[signal])


@pytest.mark.parametrize("signal", SIGNALS)
def test_cumulative_state_round_trip_and_old_states(signal):
    """A restored state counts on from its last step; a state without ``seen`` counts all."""
    first, rest = rows(LOG, [0, 1, 2, 3]), rows(LOG, [2, 3, 4, 5])
    agent = popularity(signal, cumulative=True)
    agent.retrain(first)
    restored = popularity(signal, cumulative=True)
    restored.load_state_dict(agent.state_dict())
    restored.retrain(rest)
    assert_table(restored, *WANT[signal])
    old = popularity(signal, cumulative=True)  # a checkpoint written before `seen` existed
    old.load_state_dict({"ids": np.zeros(0, np.int64), "counts": np.zeros(0)})
    old.retrain(LOG)
    assert_table(old, *WANT[signal])


@pytest.mark.parametrize(
    ("signal", "cumulative", "mode"),
    [
        ("clicks", False, "partitioned"),
        ("impressions", False, "partitioned"),
        ("engagement", False, "whole"),
        ("clicks", True, "whole"),
        ("impressions", True, "whole"),
        ("engagement", True, "whole"),
    ],
)
def test_retrain_log_is_partitioned_only_for_exact_window_counts(signal, cumulative, mode):
    """Integer window counts are summed from shards; float sums and cumulative need the log."""
    assert popularity(signal, cumulative).retrain_log == mode


@pytest.mark.parametrize("signal", ["clicks", "impressions"])
@pytest.mark.parametrize(
    "parts", [[[0, 1, 2, 3, 4, 5]], [[0, 3], [1, 4, 5], [2]], [[5], [0, 1, 2, 3, 4]]]
)
def test_shard_summaries_add_up_to_the_whole_window(signal, parts):
    """``retrain_from_summaries`` of the shards' ``log_summary`` equals ``retrain`` on the log."""
    agent = popularity(signal)
    summaries = [agent.log_summary(rows(LOG, p)) for p in parts]
    for ids, counts in summaries:
        assert PAD not in ids
        assert ids.shape == counts.shape
    agent.retrain_from_summaries(summaries)
    assert_table(agent, *WANT[signal])
    agent.retrain_from_summaries([])  # no shard data: an empty table
    assert_table(agent, [], [])


def test_add_counts_sums_two_tables():
    """The union of two sorted tables, counts added where ids meet."""
    ids, counts = _add_counts(
        np.array([1, 4, 9]),
        np.array([1.0, 2.0, 3.0]),
        np.array([0, 4, 10]),
        np.array([5.0, 6.0, 7.0]),
    )
    np.testing.assert_array_equal(ids, [0, 1, 4, 9, 10])
    np.testing.assert_array_equal(counts, [5.0, 1.0, 8.0, 3.0, 7.0])
    ids, counts = _add_counts(np.zeros(0, np.int64), np.zeros(0), np.array([3]), np.array([2.0]))
    np.testing.assert_array_equal(ids, [3])
    np.testing.assert_array_equal(counts, [2.0])


@pytest.mark.parametrize(
    "ids",
    [
        [2**40, 3, 2**40, 2**41],  # sparse pair-like keys: no array over the id range
        [-5, 3, -5, 0],  # negative ids without skip_pad: counted like any id
        [-1, 3, -1, 0],  # PAD's value without skip_pad: an id like any other
        [7],
    ],
)
def test_count_by_id_any_id_range(ids):
    """Ids far apart or negative give np.unique's ids and counts (no id-range array)."""
    ids = np.asarray(ids, np.int64)
    got_ids, got_counts = _count_by_id(ids, None)
    want_ids, want_counts = np.unique(ids, return_counts=True)
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_array_equal(got_counts, want_counts.astype(float))


# ----------------------------------------------------------------------------- oracle


class Truth:
    """A truth hook whose utility is a fixed ``(B, C)`` function of user and item ids."""

    def utility(self, step, user_ids, candidates):
        """``(B, C)`` utility: ``sin`` of a per-pair number (distinct values)."""
        return np.sin(1.7 * candidates + 0.3 * user_ids[:, None] + 0.01 * step)


def oracle(known: str) -> OracleAgent:
    """An oracle bound to :class:`Truth`."""
    agent = OracleAgent(OracleAgent.Params(known_items=known), CTX)
    agent.bind_truth(Truth())
    return agent


@pytest.mark.parametrize("shared", [True, False])
def test_oracle_serves_the_top_true_utilities_best_first(shared):
    """``known_items: all`` ranks every candidate by the truth's utility, best on top."""
    cat = catalog(9)
    cands = None if shared else np.array([[8, 1, 4, 6, 0], [2, 3, 5, 7, 1], [0, 8, 6, 4, 2]])
    obs = observation(cat, cands, 3, step=5)
    u = Truth().utility(5, obs.user_ids, obs.candidates)
    want = np.take_along_axis(obs.candidates, np.argsort(-u, axis=1)[:, :3], axis=1)
    np.testing.assert_array_equal(oracle("all").act(obs).item_ids, want)


def test_oracle_trained_ranks_items_newer_than_its_data_last():
    """With ``known_items: trained`` items published after the last retrained step come last."""
    age = np.array([9, 9, 0, 9, 1, 9, 9, 3])  # at step 10: items 2, 4 published at 10, 9
    obs = observation(catalog(8, age), None, 8, step=10)
    agent = oracle("trained")
    agent.retrain(log([7, 8, 8], np.zeros((3, 2)), [-1, -1, -1], [0, 0, 0]))
    assert agent.state_dict() == {"horizon": 8}
    agent.retrain(log([3], np.zeros((1, 2)), [-1], [0]))  # an older window keeps the horizon
    assert agent.state_dict() == {"horizon": 8}
    got = agent.act(obs).item_ids
    u = Truth().utility(10, obs.user_ids, obs.candidates)
    known = np.array([0, 1, 3, 5, 6, 7])  # published at step <= 8
    for b in range(obs.num_users):
        want = known[np.argsort(-u[b, known])]
        np.testing.assert_array_equal(got[b, :6], want)
        assert set(got[b, 6:]) == {2, 4}
    restored = OracleAgent(OracleAgent.Params(known_items="trained"), CTX)
    restored.bind_truth(Truth())
    restored.load_state_dict(agent.state_dict())
    np.testing.assert_array_equal(restored.act(obs).item_ids, got)
    fresh = oracle("trained")
    fresh.load_state_dict({})  # no horizon: every item is newer than the (absent) data
    assert fresh.state_dict() == {"horizon": -1}


class NegatedTruth(Truth):
    """The opposite utility: every order by utility reversed."""

    def utility(self, step, user_ids, candidates):
        """``(B, C)`` minus :class:`Truth`'s utility."""
        return -super().utility(step, user_ids, candidates)


@pytest.mark.parametrize("step", [0, 1, 2, 9])
@pytest.mark.parametrize("restored", [False, True])
def test_oracle_trained_before_any_data_ignores_the_utility(step, restored):
    """Before its first retrain (or from a state without one) no item is known yet.

    Every candidate, even one published at step 0, is then newer than the (absent) data:
    the order is the keyed random one, the same whatever the utility.
    """
    age = np.minimum(np.array([0, 1, 2, 3, 4, 5, 6, 7]), step)  # published at step - age >= 0
    obs = observation(catalog(8, age), None, 8, step=step)
    slates = []
    for truth in (Truth(), NegatedTruth()):
        agent = OracleAgent(OracleAgent.Params(known_items="trained"), CTX)
        agent.bind_truth(truth)
        if restored:
            agent.load_state_dict({})
        slates.append(agent.act(obs).item_ids)
    np.testing.assert_array_equal(slates[0], slates[1])
    u = Truth().utility(step, obs.user_ids, obs.candidates)
    assert not np.array_equal(slates[0], np.argsort(-u, axis=1))  # not the utility's order


def test_oracle_without_truth_is_a_clear_error():
    """Acting before the world binds the truth hook names the missing hook."""
    agent = OracleAgent(OracleAgent.Params(), CTX)
    with pytest.raises(RuntimeError, match="bind_truth"):
        agent.act(observation(catalog(4), None, 2, step=0))


# ----------------------------------------------------------------------------- random


@pytest.mark.parametrize(("num_items", "k"), [(5, 2), (9, 9), (12, 1)])
def test_random_agent_propensity_is_one_over_candidates(num_items, k):
    """Every slot of a uniformly random ordered slate has propensity ``1 / C``."""
    agent = RandomAgent(RandomAgent.Params(), CTX)
    obs = observation(catalog(num_items), None, k, step=2)
    slates = agent.act(obs)
    p = agent.propensities(obs, slates)
    np.testing.assert_array_equal(p, np.full((4, k), 1.0 / num_items))
    assert agent.logging_policy == "sampled"


@pytest.mark.parametrize("n", [1, 3, 1000, 16384, 40000])  # 4 n with and without bit 16
@pytest.mark.parametrize("skip_pad", [False, True])
def test_count_by_id_counts_over_the_range_only_while_it_is_small(n, skip_pad, monkeypatch):
    """The id range is counted directly up to ``4 n + 65536`` ids, then sorted instead.

    Both give the same table (tested above); this pins the memory rule: no array over the id
    range is ever longer than ``4 n + 65537`` entries, and a small range never sorts.
    """
    sorted_calls = []
    unique = np.unique
    monkeypatch.setattr(np, "unique", lambda *a, **k: sorted_calls.append(1) or unique(*a, **k))
    for top, sorts in ((4 * n + 65536, False), (4 * n + 65537, True)):
        sorted_calls.clear()
        ids = np.full(n, 5, np.int64)
        ids[-1] = top
        got_ids, got_counts = _count_by_id(ids, None, skip_pad=skip_pad)
        assert bool(sorted_calls) == sorts, (n, top)
        want_ids, want_counts = unique(ids, return_counts=True)
        np.testing.assert_array_equal(got_ids, want_ids)
        np.testing.assert_array_equal(got_counts, want_counts.astype(float))
