"""benchmarks/peers.py: its slate sampler, its port of RecSim NG's recommender, its simlab side.

The peers themselves (RecSim NG, T-RECS) run in their own environments and are exercised by
running the benchmark; these tests cover the simlab-side code, which needs neither.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from simlab.batch import Feedback

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "peers.py"
_SPEC = importlib.util.spec_from_file_location("peers_benchmark", _PATH)
peers = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = peers  # dataclasses look their module up there
_SPEC.loader.exec_module(peers)

TINY = peers.Scale(60, 12, 3, 4, trecs_users=50, trecs_items=20, trecs_slate=3, trecs_steps=2)


@pytest.fixture(autouse=True)
def _registry_as_it_was():
    """The worker registers ``recsim-cf``: take it out again after each test.

    Later tests that walk the registry then see only shipped components, in any order.
    """
    from simlab import registry

    before = dict(registry._REGISTRY["agents"])
    yield
    registry._REGISTRY["agents"].clear()
    registry._REGISTRY["agents"].update(before)


def _sequence_prob(weights: np.ndarray, seq: tuple[int, ...]) -> float:
    """Probability of drawing ``seq`` in order without replacement, proportional to weights."""
    w = weights.astype(float).copy()
    prob = 1.0
    for i in seq:
        prob *= w[i] / w.sum()
        w[i] = 0.0
    return prob


def test_iterated_logit_draws_match_sequential_probabilities():
    """Ordered draws of 2 out of 7 follow the iterated multinomial logit law."""
    rng = np.random.default_rng(3)
    scores = rng.normal(0, 1.0, 7).astype(np.float32)
    n = 120_000
    idx = peers.iterated_logit_draws(np.tile(scores, (n, 1)), rng.random((n, 2)))
    weights = np.exp(scores.astype(float) - scores.max())
    counts = {}
    for pair in map(tuple, idx):
        counts[pair] = counts.get(pair, 0) + 1
    for seq in itertools.permutations(range(7), 2):
        p = _sequence_prob(weights, seq)
        se = np.sqrt(p * (1 - p) / n)
        assert abs(counts.get(seq, 0) / n - p) < 5 * se + 1e-4, seq


def test_iterated_logit_draws_are_distinct_in_every_row():
    """Draws are distinct column indices, also when most mass sits on one column."""
    rng = np.random.default_rng(5)
    scores = rng.normal(0, 30.0, (400, 50)).astype(np.float32)
    scores[:, 7] = 900.0  # every other column underflows relative to this one
    idx = peers.iterated_logit_draws(scores, rng.random((400, 6)))
    assert idx.shape == (400, 6)
    assert ((idx >= 0) & (idx < 50)).all()
    assert all(len(set(row)) == 6 for row in idx.tolist())
    assert (idx[:, 0] == 7).all()


def _inverse_cdf_draws(scores: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plain float64 iterated inverse-CDF draws, and each row's smallest target margin.

    The margin is how close a draw's target ``u * mass`` came to a cumulative boundary,
    relative to the mass: where it is tiny, float32 block sums may rightly pick a neighbour.
    """
    b, k = u.shape
    out = np.empty((b, k), np.int64)
    margin = np.full(b, np.inf)
    for r in range(b):
        w = np.exp(scores[r].astype(np.float64) - scores[r].max())
        for j in range(k):
            cum = np.cumsum(w)
            x = u[r, j] * cum[-1]
            col = int(np.searchsorted(cum, x, side="right"))
            margin[r] = min(margin[r], np.abs(cum - x).min() / cum[-1])
            out[r, j] = col
            w[col] = 0.0
    return out, margin


@pytest.mark.parametrize("columns", [1, 2, 3, 7, 16, 17, 50, 101])
def test_block_sampler_is_the_inverse_cdf_whatever_the_block_layout(columns):
    """Block search, search inside a block, zeroing and re-summing give the inverse CDF.

    Widths that fill their blocks exactly (16), leave padding (17, 50, 101) or have one
    column per block (1, 2, 3) all draw the column a float64 inverse CDF draws, for every
    draw of every slate, except where a target lies within rounding of a boundary.
    """
    rng = np.random.default_rng(columns)
    for k in sorted({1, min(3, columns), columns}):
        scores = rng.normal(0, 2.0, (300, columns)).astype(np.float32)
        u = rng.random((300, k))
        got = peers.iterated_logit_draws(scores, u)
        want, margin = _inverse_cdf_draws(scores, u)
        clear = margin > 1e-6  # float32 sums are off by ~1e-7 of the mass
        assert clear.mean() > 0.9
        np.testing.assert_array_equal(got[clear], want[clear])
        assert all(len(set(row)) == k for row in got.tolist())


def test_recsim_cf_history_keeps_the_last_choices_of_choosers_only():
    """Only users who chose get their history shifted; the newest entry is last (+1 ids)."""
    from simlab.world import WorldContext

    ctx = WorldContext(
        seed=0, dim=2, num_topics=2, topic_spread=1.0, steps=5, slate_size=2,
        history_length=3, num_users=4,
    )  # fmt: skip
    agent = peers.RecSimCFAgent(peers.RecSimCFAgent.Params(history_length=3), ctx)
    user_ids = np.array([0, 1, 2, 3])
    slates = np.array([[5, 6], [7, 8], [1, 2], [3, 4]])
    for step, clicked in enumerate(([0, -1, 1, 0], [1, 0, -1, -1])):
        fb = Feedback(
            step, user_ids, slates, np.array(clicked), np.array([0.5, 0.0, 1.5, 0.25], np.float32)
        )
        agent.update(fb)
    assert agent._docs.tolist() == [[0, 6, 7], [0, 0, 8], [0, 0, 3], [0, 0, 4]]
    assert agent._ctime[0].tolist() == [0.0, 0.5, 0.5]


@pytest.mark.parametrize("pair,agent", [("recsim-ng", "recsim-cf"), ("trecs", "linucb")])
def test_simlab_worker_times_a_matched_world_deterministically(pair, agent):
    """The simlab side runs each pair's world and reports rate, memory and a seeded reward."""
    spec = {"pair": pair, "scale": peers.asdict(TINY), "agent": agent, "steps": 3, "warmup": 1}
    first = peers.simlab_worker(spec)
    second = peers.simlab_worker(spec)
    users = TINY.users if pair == "recsim-ng" else TINY.trecs_users
    assert first["user_steps_per_s"] > 0 and first["peak_rss_mb"] > 0
    assert first["steady_s"] > 0 and first["steps"] == 3
    assert 0 < first["reward_per_user_step"] < 10
    assert first["reward_per_user_step"] == second["reward_per_user_step"]
    assert users * 3 == pytest.approx(first["user_steps_per_s"] * first["steady_s"])


def test_simlab_worker_profile_lists_functions():
    """With profile on, the record carries the top functions by own time per step."""
    spec = {"pair": "recsim-ng", "scale": peers.asdict(TINY), "agent": "popularity"}
    spec.update(steps=2, warmup=1, profile=True)
    rows = peers.simlab_worker(spec)["profile"]
    assert rows and all(len(r) == 3 and r[1] <= r[2] + 1e-9 for r in rows)


def test_parse_args_rejects_a_nonpositive_step_count(capsys):
    """--steps 0 is refused with a message naming the option and the value."""
    with pytest.raises(SystemExit):
        peers.parse_args(["--steps", "0"])
    assert "--steps must be a positive int, got 0" in capsys.readouterr().err


def test_table_reports_the_ratio_of_simlab_to_peer():
    """A row's ratio is simlab's rate over the peer's, printed with both peak memories."""
    peer = {"user_steps_per_s": 2000.0, "peak_rss_mb": 700.0}
    mine = {"user_steps_per_s": 50_000.0, "peak_rss_mb": 90.0}
    row = peers.Row("trecs", "large", "10k u/500 i/K=5/A=32", "linucb", peer, mine)
    assert row.ratio == pytest.approx(25.0)
    text = peers.format_table([row])
    assert "trecs / linucb" in text and "25.0x" in text and "700" in text and "90" in text
