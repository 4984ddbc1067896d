"""The creator ecosystem's step by hand: schedule, retirement, reactions, hooks, checkpoints."""

from __future__ import annotations

import re

import numpy as np
import pytest

from simlab.environments.content import CreatorEcosystem, Phase
from simlab.rng import Stream
from simlab.world_context import WorldContext

SEED, DIM, TOPICS = 4, 5, 3


def ecosystem(dim: int = DIM, **fields) -> CreatorEcosystem:
    """A small creator ecosystem of the given parameters."""
    fields.setdefault("num_human_creators", 6)
    fields.setdefault("num_aigc_creators", 3)
    fields.setdefault("initial_items", 24)
    fields.setdefault("items_per_step", 8)
    fields.setdefault("lifetime", 4)
    ctx = WorldContext(SEED, dim, TOPICS, 1.0, 10, 5, 4)
    return CreatorEcosystem(CreatorEcosystem.Params(**fields), ctx)


def share_reference(phases: list[dict], t: int) -> float:
    """The documented schedule: the phase holding ``t``, its ramp from the previous share."""
    start = 0
    for i, ph in enumerate(phases):
        last = i == len(phases) - 1
        if last or t < ph["until"]:
            ramp = ph.get("ramp", 0)
            if i == 0 or ramp == 0:
                return ph["aigc_share"]
            prev = phases[i - 1]["aigc_share"]
            done = min(t - start + 1, ramp)  # steps of the ramp taken, the first included
            return prev + (ph["aigc_share"] - prev) * done / ramp
        start = ph["until"]
    raise AssertionError


@pytest.mark.parametrize(
    "phases",
    [
        [{"aigc_share": 0.3}],
        [{"until": 3, "aigc_share": 0.2}, {"aigc_share": 0.9, "ramp": 4}],
        [{"until": 2, "aigc_share": 0.0}, {"until": 8, "aigc_share": 1.0, "ramp": 6}],
        [
            {"until": 2, "aigc_share": 0.0},
            {"until": 5, "aigc_share": 1.0, "ramp": 3},
            {"aigc_share": 0.4, "ramp": 20},
        ],
        [
            {"until": 2, "aigc_share": 0.5},
            {"until": 5, "aigc_share": 0.1},
            {"until": 9, "aigc_share": 0.7, "ramp": 1},
        ],
        [{"until": 1, "aigc_share": 1.0}, {"until": 3, "aigc_share": 0.0, "ramp": 2}],
    ],
)
def test_aigc_share_follows_the_phases_and_their_ramps(phases):
    """Every step's share equals the documented rule (the last phase holds past its end)."""
    eco = ecosystem(phases=[Phase(**ph) for ph in phases], num_aigc_creators=1)
    for t in range(14):
        assert eco.aigc_share(t) == pytest.approx(share_reference(phases, t), abs=1e-12), t


@pytest.mark.parametrize("first, then", [(0.0, 1.0), (1.0, 0.0)])
def test_initial_catalog_has_step_zeros_share(first, then):
    """The initial catalog is published at step 0's AIGC share, not a later one's."""
    phases = [Phase(until=1, aigc_share=first), Phase(aigc_share=then)]
    eco = ecosystem(phases=phases)
    assert (eco.items.source == first).all()
    eco.step(1, None)
    assert (eco.new_item_sources() == then).all()


@pytest.mark.parametrize("stride", [1, 3])
@pytest.mark.parametrize("lifetime, per_step, initial", [(4, 8, 24), (1, 3, 5), (6, 0, 6)])
def test_items_live_exactly_lifetime_steps(lifetime, per_step, initial, stride):
    """An item published at s is live at steps s..s+lifetime-1; the initial catalog ages out.

    With steps skipped (``stride`` 3), items past their lifetime retire too.
    """
    eco = ecosystem(lifetime=lifetime, items_per_step=per_step, initial_items=initial)
    published = dict(zip(eco.items.item_ids.tolist(), eco.items.published.tolist(), strict=True))
    for t in range(0, 8 * stride, stride):
        eco.step(t, None)
        published.update(
            {i: t for i in range(eco._next_id - per_step, eco._next_id) if i not in published}
        )
        live = sorted(i for i, s in published.items() if 0 <= t - s < lifetime)
        assert eco.items.item_ids.tolist() == live
        cat = eco.catalog(False)
        assert cat.age.tolist() == [t - published[i] for i in live] and cat.source is None
        np.testing.assert_array_equal(eco.catalog(True).source, eco.items.source)
        assert eco.latent() is eco.items


@pytest.mark.parametrize(
    "ids, topics, message",
    [
        ([0, 1], [0], "`creator_ids` and `topics` of one shape, actual shapes: (2,) and (1,)"),
        ([3], [0, 1], "`creator_ids` and `topics` of one shape, actual shapes: (1,) and (2,)"),
        ([], [2], "`creator_ids` and `topics` of one shape, actual shapes: (0,) and (1,)"),
        ([9], [0], "`creator_ids` in [0, 9), actual values: [9]"),
        ([2, 15], [0, 1], "`creator_ids` in [0, 9), actual values: [2, 15]"),
        ([-1, 2], [0, 0], "`creator_ids` in [0, 9), actual values: [-1, 2]"),
        ([2], [3], "`topics` in [0, 3), actual values: [3]"),
        ([2, 1], [0, 7], "`topics` in [0, 3), actual values: [0, 7]"),
        ([2, 4], [0, -1], "`topics` in [0, 3), actual values: [0, -1]"),
        ([4, 2, 4], [1, 0, 2], "one topic per creator in `commission`, got two for one"),
    ],
)
def test_bad_commissions_are_clear_errors(ids, topics, message):
    """Mismatched shapes, ids or topics out of range, two topics for one creator raise."""
    eco = ecosystem()
    with pytest.raises(ValueError, match=re.escape(message)):
        eco.commission(np.array(ids), np.array(topics))
    assert eco._commissioned is None


def test_edge_commissions_are_accepted():
    """The first and last creator and topic are in range; an empty commission adds nothing."""
    eco = ecosystem()
    eco.commission(np.array([0, 8, 8]), np.array([2, 0, 0]))
    assert eco.creator_topic[0] == 2 and eco.creator_topic[8] == 0
    eco.step(0, None)
    assert (eco.items.published == 0).sum() == 8 + 3
    eco.commission(np.zeros(0, np.int64), np.zeros(0, np.int64))
    eco.step(1, None)
    assert (eco.items.published == 1).sum() == 8


def test_exits_count_last_steps_impressions_per_creator():
    """Exposure per creator is the sum of its live items' impressions at the last step."""
    eco = ecosystem(exit_threshold=3.0, exit_patience=1, lifetime=10)
    items = eco.items
    shown = items.item_ids[::2]
    counts = np.arange(shown.size) % 4
    eco.step(0, (np.append(shown, 999), np.append(counts, 50)))  # 999 is not live: ignored
    per_creator = np.zeros(9)
    np.add.at(per_creator, items.creator[::2], counts)
    assert eco.pool.active.tolist() == (per_creator >= 3).tolist()
    assert eco.pool.exited.tolist() == [-1 if x >= 3 else 0 for x in per_creator]


@pytest.mark.parametrize("exposure", [None, "empty"])
def test_no_exits_without_last_steps_exposure(exposure):
    """The first step (no exposure yet) counts no low step; an empty exposure counts zeros."""
    eco = ecosystem(exit_threshold=1.0, exit_patience=1)
    last = None if exposure is None else (np.zeros(0, np.int64), np.zeros(0))
    eco.step(0, last)
    assert eco.pool.active.all() == (exposure is None)


def test_no_exits_with_a_zero_threshold():
    """exit_threshold 0: creators never exit, whatever their exposure."""
    eco = ecosystem(exit_patience=1)
    for t in range(3):
        eco.step(t, (np.zeros(0, np.int64), np.zeros(0)))
    assert eco.pool.active.all()


@pytest.mark.parametrize("per_step, share", [(0, 0.5), (3, 0.0), (4, 1.0)])
def test_entrants_join_each_step_with_the_steps_share(per_step, share):
    """creators_per_step creators enter at every step, AIGC with that step's share."""
    phases = [Phase(until=2, aigc_share=0.0), Phase(aigc_share=share)]
    eco = ecosystem(creators_per_step=per_step, phases=phases)
    for t in range(4):
        eco.step(t, None)
        entered = np.flatnonzero(eco.pool.entered == t)
        assert entered.size == per_step
        u = Stream(SEED, "content/creator_source").uniform(entered, 0)
        expect = u < eco.aigc_share(t)
        assert eco.pool.source[entered].tolist() == expect.astype(int).tolist()


def test_popular_human_items_weigh_last_steps_impressions():
    """Rewrites pick among last step's live human items by their impressions (else uniform)."""
    phases = [Phase(until=1, aigc_share=0.0), Phase(aigc_share=0.5)]
    eco = ecosystem(rewrite_share=0.5, phases=phases)
    human = eco.items.item_ids[eco.items.source == 0]
    eco.step(0, None)
    assert eco._popular[0].tolist() == human.tolist()
    assert eco._popular[1].tolist() == [1.0] * human.size
    human = eco.items.item_ids[eco.items.source == 0]
    shown = eco.items.item_ids[1::3]
    counts = np.arange(shown.size, dtype=float) + 1
    eco.step(1, (shown, counts))
    weight = dict(zip(shown.tolist(), counts.tolist(), strict=True))
    assert eco._popular[0].tolist() == human.tolist()
    assert eco._popular[1].tolist() == [weight.get(i, 0.0) for i in human.tolist()]


def test_clicked_counts_the_last_steps_clicks_per_live_item():
    """``record_clicks`` then ``_clicked``: clicks per live item, 0 for the others."""
    eco = ecosystem()
    ids = eco.items.item_ids
    assert eco._clicked(eco.items).tolist() == [0.0] * ids.size
    eco.record_clicks(np.array([ids[3], ids[1], ids[3], 777]))
    want = np.zeros(ids.size)
    want[3], want[1] = 2, 1
    np.testing.assert_array_equal(eco._clicked(eco.items), want)
    eco.record_clicks(np.zeros(0, np.int64))
    assert not eco._clicked(eco.items).any()


@pytest.mark.parametrize("style, noise", [(0.0, 0.3), (0.8, 0.0), (0.5, 0.2)])
def test_rewrite_features_add_the_style_and_fresh_noise(style, noise):
    """An LLM rewrite's features: ``f + style s + noise z / sqrt(d)``, z keyed by the id."""
    eco = ecosystem(style_magnitude=style, feature_noise=noise)
    ids = np.array([3, 11, 5])
    f = np.arange(15, dtype=np.float32).reshape(3, 5)
    out = eco.rewrite_features(ids, f)
    z = Stream(SEED, "content/llm_rewrite").normal(ids, 0, size=DIM)
    np.testing.assert_allclose(out, f + style * eco.style + noise * z / np.sqrt(DIM), rtol=1e-6)
    assert out.dtype == np.float32
    assert np.linalg.norm(eco.style) == pytest.approx(1.0, abs=1e-6)


def test_state_round_trip_continues_identically():
    """A restored ecosystem publishes, exits and rewrites as the original."""
    fields = {"rewrite_share": 0.5, "exit_threshold": 2.0, "exit_patience": 1}
    fields["phases"] = [Phase(aigc_share=0.5)]
    a, b = ecosystem(**fields, creators_per_step=1), ecosystem(**fields, creators_per_step=1)
    for t in range(3):
        a.step(t, (a.items.item_ids[::2], np.ones(a.items.item_ids[::2].size)))
    a.commission(np.array([1]), np.array([2]))
    a.record_clicks(a.items.item_ids[:3])
    centres = b.pool.centres
    b.load_state_dict(a.state_dict())
    assert b.pool.centres is centres and b.t == a.t == 2
    for x in (a, b):
        x.step(3, (x.items.item_ids[1::2], np.ones(x.items.item_ids[1::2].size)))
    for key, value in a.items.__dict__.items():
        np.testing.assert_array_equal(b.items.__dict__[key], value)
    np.testing.assert_array_equal(b.pool.active, a.pool.active)
    np.testing.assert_array_equal(b.new_item_sources(), a.new_item_sources())
    assert b._next_id == a._next_id


@pytest.mark.parametrize("dim", [5, 300])
def test_state_of_the_same_dimension_loads_however_large(dim):
    """Creator vectors of the world's dimension load (sizes past 256 are distinct ints)."""
    a, b = ecosystem(dim=dim, initial_items=4, items_per_step=2), ecosystem(dim=dim)
    a.step(0, None)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.pool.vec, a.pool.vec)
    np.testing.assert_array_equal(b.items.latent, a.items.latent)


def test_adoption_state_round_trips():
    """A restored adoption ecosystem has the signal's window and revises as the original."""
    adoption = {"signal": "impressions", "revise_rate": 0.5, "sensitivity": 3.0}
    adoption["baseline_share"] = 0.5
    fields = dict(production="adoption", adoption=adoption, creators_per_step=1, lifetime=10)
    a, b = ecosystem(**fields), ecosystem(**fields)
    for t in range(3):
        shown = a.items.item_ids[t::3]
        a.step(t, (shown, (np.arange(shown.size) % 4).astype(float)))
    assert len(a.adoption._history) == 3 and a.adoption.delta != 0
    b.load_state_dict(a.state_dict())
    assert list(b.adoption._history) == list(a.adoption._history)
    assert b.adoption.delta == a.adoption.delta
    for t in (3, 4):
        for x in (a, b):
            x.step(t, (x.items.item_ids[::2], np.ones(x.items.item_ids[::2].size)))
        np.testing.assert_array_equal(b.pool.source, a.pool.source)
        np.testing.assert_array_equal(b.items.source, a.items.source)


def test_state_of_another_dimension_is_a_clear_error():
    """Creator vectors of another dimension do not load."""
    with pytest.raises(ValueError, match="another dimension"):
        ecosystem().load_state_dict(ecosystem(dim=4).state_dict())


def test_creator_views_are_the_pools():
    """The creator properties and table show the pool's rows, scattered by creator_spread."""
    eco = ecosystem(creator_spread=0.7)
    z = Stream(SEED, "content/creator_vec").normal(np.arange(9), 0, size=DIM)
    np.testing.assert_allclose(eco.pool.offset, 0.7 * 1.0 / np.sqrt(DIM) * z, rtol=1e-6)
    assert eco.creator_source is eco.pool.source and eco.creator_topic is eco.pool.topic
    assert eco.creator_vec is eco.pool.vec
    assert eco.creators().num_creators == 9


@pytest.mark.parametrize("signal", ["impressions", "clicks"])
def test_adoption_observes_last_steps_rewards_then_revises(signal):
    """Adoption: last step's impressions (or clicks) per source feed the signal; then revisions.

    Entrants choose at the current signal; with no exposure yet nothing is observed.
    """
    adoption = {"signal": signal, "revise_rate": 1.0, "sensitivity": 3.0, "baseline_share": 0.5}
    eco = ecosystem(production="adoption", adoption=adoption, creators_per_step=2, lifetime=10)
    eco.step(0, None)
    assert len(eco.adoption._history) == 0
    items = eco.items
    shown = items.item_ids[::2]
    counts = (np.arange(shown.size) % 3 + 1).astype(float)
    clicked = items.item_ids[1:4]
    eco.record_clicks(np.concatenate([clicked, clicked[:1]]))
    modes = eco.pool.source.copy()
    eco.step(1, (shown, counts))
    reward = np.zeros(items.item_ids.size)
    if signal == "impressions":
        reward[::2] = counts
    else:
        reward[1:4] = [2, 1, 1]
    aigc = items.source == 1
    want = (reward[aigc].sum(), reward[~aigc].sum(), int(aigc.sum()), int((~aigc).sum()))
    assert list(eco.adoption._history) == [want]
    entered = np.flatnonzero(eco.pool.entered == 1)
    modes = np.concatenate([modes, np.zeros(entered.size, np.int8)])  # share 0 at entry
    revised = eco.adoption.revise(1, modes, eco.pool.active)
    revised[entered] = eco.adoption.choose(entered, eco.adoption.delta)
    np.testing.assert_array_equal(eco.pool.source, revised)
    assert not np.array_equal(revised, modes) and eco.adoption.delta != 0
