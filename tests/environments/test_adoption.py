"""Creators' AIGC adoption (``content.production: adoption``) acts as documented.

The choice rule is checked against its closed form (a logistic taste makes the adopting
share ``sigmoid(sensitivity * Delta + logit(baseline))``), the market signal against a
hand computation, and the whole ecosystem against synthetic exposures: production moves
toward the source the platform rewards, and only there.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import make_small
from pydantic import ValidationError

from environments.adoption import Adoption, AdoptionParams
from simlab.world import World

N = 40_000  # creators in the closed-form checks: binomial sd of a share <= 0.0025


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


def _tolerance(p: float, n: int = N) -> float:
    return 4.5 * np.sqrt(p * (1 - p) / n) + 1e-3


@pytest.mark.parametrize("baseline", [0.02, 0.1, 0.3, 0.5, 0.8, 0.97])
def test_at_equal_reward_the_baseline_share_adopts(baseline):
    """Delta = 0: the adopting share is ``baseline_share`` (AIGC's cost advantage)."""
    a = Adoption(AdoptionParams(baseline_share=baseline), seed=3)
    share = float(a.choose(np.arange(N), 0.0).mean())
    assert abs(share - baseline) < _tolerance(baseline), share


@pytest.mark.parametrize(
    ("baseline", "sensitivity", "delta"),
    [(0.1, 2.0, 1.0), (0.1, 2.0, -1.0), (0.3, 0.5, 2.0), (0.5, 4.0, 0.25), (0.2, 1.0, -3.0)],
)
def test_adopting_share_follows_the_logistic_curve(baseline, sensitivity, delta):
    """The share is ``sigmoid(sensitivity * delta + logit(baseline))``."""
    a = Adoption(AdoptionParams(baseline_share=baseline, sensitivity=sensitivity), seed=11)
    expected = _sigmoid(sensitivity * delta + np.log(baseline / (1 - baseline)))
    share = float(a.choose(np.arange(N), delta).mean())
    assert abs(share - expected) < _tolerance(expected), (share, expected)


@pytest.mark.parametrize("delta", [-5.0, -0.5, 0.5, 5.0])
def test_without_sensitivity_rewards_do_not_matter(delta):
    """``sensitivity: 0``: every creator chooses as at equal reward, whatever the signal."""
    a = Adoption(AdoptionParams(sensitivity=0.0), seed=1)
    ids = np.arange(5_000)
    np.testing.assert_array_equal(a.choose(ids, delta), a.choose(ids, 0.0))


def test_choices_are_monotone_in_the_signal_per_creator():
    """A creator who adopts at some signal adopts at every larger one (a fixed taste)."""
    a = Adoption(AdoptionParams(), seed=5)
    ids = np.arange(3_000)
    modes = np.stack([a.choose(ids, d) for d in np.linspace(-3, 3, 13)])
    assert (np.diff(modes.astype(int), axis=0) >= 0).all()
    assert modes[0].mean() < modes[-1].mean()


def _signal(steps, window):
    """Delta by hand over the last ``window`` steps, shrunk by one pooled pseudo item-step."""
    last = steps[-window:]
    r_a, r_h = sum(s[0] for s in last), sum(s[1] for s in last)
    n_a, n_h = sum(s[2] for s in last), sum(s[3] for s in last)
    r = (r_a + r_h) / (n_a + n_h)
    return np.log((r_a + r) / (n_a + 1)) - np.log((r_h + r) / (n_h + 1))


@pytest.mark.parametrize("window", [1, 2, 5])
def test_market_signal_by_hand(window):
    """Delta is the log ratio of smoothed reward per live item, over a sliding window."""
    rng = np.random.default_rng(window)
    a = Adoption(AdoptionParams(window=window), seed=0)
    seen = []
    for _ in range(7):
        source = (rng.random(40) < rng.uniform(0.1, 0.9)).astype(np.int8)
        reward = rng.poisson(3.0, 40) * (1 + 2 * source)
        a.observe(source, reward)
        seen.append(
            (reward[source == 1].sum(), reward[source == 0].sum(), source.sum(), (1 - source).sum())
        )
        assert a.delta == pytest.approx(_signal(seen, window), rel=1e-12)
    # equal reward per item, however many items each source has: no signal
    for per_item, aigc in ((2.0, 2), (0.5, 1), (7.0, 5)):
        b = Adoption(AdoptionParams(window=window), seed=0)
        b.observe((np.arange(6) < aigc).astype(np.int8), np.full(6, per_item))
        assert b.delta == pytest.approx(0.0, abs=1e-12)
    # nothing earned, or one source absent and nothing to compare: no signal
    for source, reward in ((np.array([1, 0, 0]), np.zeros(3)), (np.zeros(3), np.ones(3))):
        b = Adoption(AdoptionParams(window=window), seed=0)
        b.observe(source.astype(np.int8), reward)
        assert b.delta == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("only", [0, 1])
def test_one_source_absent_runs_the_shrunk_formula_not_the_no_signal_shortcut(only):
    """Items of one source ``only`` (0 human, 1 AIGC): Delta is the shrunk formula, bit for bit.

    Shrinking gives the absent source the pooled rate exactly and the present one the pooled
    rate up to rounding, so Delta is 0 up to an ulp: which path runs is pinned by exact
    equality with the hand formula over a grid of rewards and item counts (some nonzero).
    """
    values = []
    for n in range(1, 9):
        for total in range(1, 30):
            a = Adoption(AdoptionParams(window=1), seed=0)
            reward = np.zeros(n)
            reward[0] = total
            a.observe(np.full(n, only, np.int8), reward)
            r_a, n_a = (float(total), n) if only else (0.0, 0)
            step = (r_a, total - r_a, n_a, n - n_a)
            assert a.delta == _signal([step], 1), (n, total)
            values.append(a.delta)
    assert any(v != 0.0 for v in values) and max(abs(v) for v in values) < 1e-15


def test_revisions_touch_only_active_creators_at_the_revise_rate():
    """Inactive creators never change; about ``revise_rate`` of the active reconsider."""
    a = Adoption(AdoptionParams(revise_rate=0.2, sensitivity=3.0), seed=2)
    c = 20_000
    modes = np.zeros(c, np.int8)
    active = np.arange(c) % 2 == 0
    a.delta = 5.0  # AIGC earns far more: nearly every reconsidering creator adopts
    out = a.revise(7, modes, active)
    assert not out[~active].any()
    changed = float(out[active].mean())
    expected = 0.2 * _sigmoid(3.0 * 5.0 + np.log(0.1 / 0.9))
    assert abs(changed - expected) < _tolerance(expected, c // 2)
    assert not modes.any()  # a new array: the input is untouched
    np.testing.assert_array_equal(out, a.revise(7, modes, active))  # keyed by (creator, step)
    assert (a.revise(8, modes, active) != out).any()


def test_state_round_trip_continues_alike():
    """state_dict/load_state_dict carry the signal's window: the next values agree."""
    rng = np.random.default_rng(0)
    a, b = Adoption(AdoptionParams(window=3), 4), Adoption(AdoptionParams(window=3), 4)
    steps = [((rng.random(30) < 0.4).astype(np.int8), rng.poisson(2.0, 30)) for _ in range(6)]
    for s, r in steps[:4]:
        a.observe(s, r)
    b.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
    for s, r in steps[4:]:
        a.observe(s, r)
        b.observe(s, r)
        assert a.delta == b.delta


# ---------------------------------------------------------------------- in the ecosystem
ECO = [
    "content.production=adoption",
    "content.num_human_creators=60",
    "content.num_aigc_creators=60",
    "content.items_per_step=60",
    "content.initial_items=300",
    "content.lifetime=5",
    "content.adoption.revise_rate=0.2",
    "content.adoption.baseline_share=0.2",
    "content.adoption.sensitivity=2.0",
]


def _production(favour: float, seed: int, steps: int = 30, signal: str = "impressions"):
    """AIGC share of the items published in the last 10 of ``steps`` steps.

    Every live item is shown ``favour`` times as often if AIGC as if human (impressions), or
    clicked so (with ``signal: clicks``).
    """
    sc = make_small(*ECO, f"content.adoption.signal={signal}", steps=steps)
    content = World(sc, 0, seed).content
    shares, exposure = [], None
    for t in range(steps):
        content.step(t, exposure)
        items = content.items
        counts = np.where(items.source == 1, favour, 1.0) * 4
        if signal == "clicks":
            content.record_clicks(np.repeat(items.item_ids, counts.astype(int)))
            exposure = (items.item_ids, np.ones_like(counts))
        else:
            exposure = (items.item_ids, counts)
        shares.append(content.new_item_sources().mean())
    return float(np.mean(shares[-10:]))


@pytest.mark.parametrize("signal", ["impressions", "clicks"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_production_moves_toward_the_source_the_platform_rewards(signal, seed):
    """AIGC favoured 3:1 -> production above the baseline; disfavoured -> below; neutral near."""
    favoured = _production(3.0, seed, signal=signal)
    neutral = _production(1.0, seed, signal=signal)
    against = _production(1 / 3, seed, signal=signal)
    assert favoured > 0.5 > neutral  # tips past one half only when AIGC is favoured
    assert against < neutral
    assert abs(neutral - 0.2) < 0.12  # the baseline share, up to creator and item sampling
    assert favoured > neutral + 0.3


def test_adoption_world_restores_exactly():
    """A checkpointed adoption world continues exactly (creators' modes and the signal)."""
    sc = make_small(*ECO, steps=12)
    straight = World(sc, 1, 0)
    expected = [straight.step(t) for t in range(12)]
    first = World(sc, 1, 0)
    for t in range(6):
        first.step(t)
    again = World(sc, 1, 0)
    again.restore(pickle.loads(pickle.dumps(first.checkpoint())))
    np.testing.assert_equal([again.step(t) for t in range(6, 12)], expected[6:])


@pytest.mark.parametrize("gap", [0.0, 0.25, 1.0])
def test_quality_gap_lowers_aigc_quality_by_the_gap(gap):
    """``aigc_quality_gap`` takes exactly ``gap`` off AIGC items' latent quality."""
    base = make_small(*ECO, "content.aigc_quality_gap=0.0", steps=3)
    gapped = make_small(*ECO, f"content.aigc_quality_gap={gap}", steps=3)
    a, b = World(base, 0, 0).content.latent(), World(gapped, 0, 0).content.latent()
    np.testing.assert_array_equal(a.source, b.source)
    np.testing.assert_allclose(a.quality - b.quality, gap * a.source, atol=1e-6)


@pytest.mark.parametrize(
    "override",
    [
        ("content.phases", [{"aigc_share": 0.5}]),
        ("content.phases", [{"until": 5, "aigc_share": 0.1}, {"aigc_share": 0.9}]),
    ],
)
def test_adoption_with_a_phase_schedule_is_a_clear_error(override):
    """``production: adoption`` lets creators choose: a schedule beside it is rejected."""
    with pytest.raises((ValidationError, ValueError)) as err:
        make_small("content.production=adoption", override)
    assert "phases" in str(err.value) and "adoption" in str(err.value)
