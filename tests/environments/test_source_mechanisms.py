"""Source-bias and creator-economics mechanisms of the content ecosystem act as documented."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import make_small

from simlab.world import World

ECON = [
    "content.num_human_creators=20",
    "content.num_aigc_creators=5",
    "content.initial_items=120",
    "content.lifetime=10",
]


def _phases(*pairs):
    return ("content.phases", [dict(p) for p in pairs])


def test_share_zero_never_publishes_aigc_even_with_rewrites_and_entry():
    """AIGC share 0: no AIGC item is ever published, and every entrant is human."""
    sc = make_small(
        *ECON,
        "content.rewrite_share=1.0",
        "content.creators_per_step=3",
        _phases({"aigc_share": 0.0}),
        steps=15,
    )
    world = World(sc, 1, 0)
    for t in range(15):
        world.step(t)
        assert not world.content.new_item_sources().any()
    pool = world.content.pool
    assert (pool.source[pool.entered >= 0] == 0).all() and (pool.entered >= 0).sum() == 45


def test_ramps_move_the_share_linearly():
    """A phase's ramp goes from the previous share to its own over ``ramp`` steps."""
    sc = make_small(
        _phases({"until": 10, "aigc_share": 0.0}, {"until": 20, "aigc_share": 0.8, "ramp": 4}),
        steps=5,
    )
    content = World(sc, 0, 0).content
    got = [content.aigc_share(t) for t in (9, 10, 11, 12, 13, 14, 25)]
    assert got == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 0.8, 0.8])


def _first_items(base: list, knob: str):
    """Items after one step of two worlds, without and with ``knob``; same latent truth."""
    worlds = [World(make_small(*base, *extra, steps=3), 0, 0) for extra in ([], [knob])]
    for w in worlds:
        w.step(0)
    a, b = (w.content.latent() for w in worlds)
    np.testing.assert_array_equal(a.latent, b.latent)
    return worlds, a, b


def test_style_is_in_aigc_features_only_and_users_ignore_it():
    """Style shifts AIGC items' observable features along one direction only.

    Latent truth and users' utility are the same with and without it.
    """
    base = [*ECON, _phases({"aigc_share": 0.5})]
    (plain, styled), a, b = _first_items(base, "content.style_magnitude=2.0")
    shift = b.features - a.features
    aigc = b.source == 1
    np.testing.assert_allclose(shift[~aigc], 0.0, atol=1e-6)
    want = np.broadcast_to(2.0 * styled.content.style, shift[aigc].shape)
    np.testing.assert_allclose(shift[aigc], want, atol=1e-5)
    ids = np.arange(10)
    items = np.broadcast_to(a.item_ids[:20], (10, 20))
    np.testing.assert_array_equal(
        plain.users.expected_utility(0, ids, items, a),
        styled.users.expected_utility(0, ids, items, b),
    )


def test_anisotropy_shifts_every_item_along_the_style_direction():
    """Anisotropy adds ``anisotropy * s`` to every item's features, human ones too.

    On top of it AIGC items carry the style; latent truth is untouched.
    """
    base = [*ECON, _phases({"aigc_share": 0.5}), "content.style_magnitude=0.5"]
    (_, tilted), a, b = _first_items(base, "content.anisotropy=0.3")
    assert (b.source == 0).any() and (b.source == 1).any()
    want = np.broadcast_to(0.3 * tilted.content.style, b.features.shape)
    np.testing.assert_allclose(b.features - a.features, want, atol=1e-5)
    # the AIGC-human offset along s is the style alone: anisotropy 0.3 + style 0.5 vs 0.3
    along = b.features @ tilted.content.style - b.latent @ tilted.content.style
    gap = along[b.source == 1].mean() - along[b.source == 0].mean()
    assert gap == pytest.approx(0.5, abs=0.1)


def test_rewrites_copy_popular_human_items():
    """Rewrites keep the original's topic, embedding and quality up to noise.

    Only human items that were shown are copied (picks weigh last step's impressions).
    """
    sc = make_small(
        *ECON,
        "content.rewrite_share=1.0",
        "content.rewrite_noise=0.05",
        _phases({"aigc_share": 0.6}),
        steps=12,
        agents=[{"model": "popularity"}],
    )
    world = World(sc, 0, 0)
    checked = 0
    for t in range(12):
        before = world._last_exposure  # impressions at step t-1
        human_before = world.content.latent()
        world.step(t)
        items = world.content.latent()
        new_rw = (items.published == t) & (items.original >= 0)
        if before is None or not new_rw.any():
            continue
        shown_ids = before[0]
        shown_human = shown_ids[human_before.source[human_before.rows(shown_ids)] == 0]
        if shown_human.size:  # popularity decides: only items shown at t-1 are copied
            assert np.isin(items.original[new_rw], shown_human).all()
            checked += int(new_rw.sum())
    assert checked > 0
    rewrites = np.flatnonzero(items.original >= 0)
    assert rewrites.size > 10
    live_orig = np.isin(items.original[rewrites], items.item_ids)
    r, o = rewrites[live_orig], items.rows(items.original[rewrites[live_orig]])
    assert (items.source[r] == 1).all() and (items.source[o] == 0).all()
    np.testing.assert_array_equal(items.topic[r], items.topic[o])
    assert (np.einsum("nd,nd->n", items.latent[r], items.latent[o]) > 0.9).all()
    assert np.abs(items.quality[r] - items.quality[o]).max() < 0.2


def test_creators_without_exposure_exit_after_patience_and_entrants_join():
    """A creator with no impressions for W steps exits at step W.

    Exited creators publish nothing; entrants are AIGC with the phase's probability.
    """
    w_steps = 3
    sc = make_small(
        *ECON,
        "content.exit_threshold=0.5",
        f"content.exit_patience={w_steps}",
        "content.creators_per_step=4",
        _phases({"aigc_share": 0.5}),
        steps=12,
        agents=[{"model": "popularity"}],
    )
    world = World(sc, 0, 0)
    pool = world.content.pool
    history = []  # impressions per creator at each step
    for t in range(12):
        world.step(t)
        items = world._content.items
        history.append(np.bincount(items.creator, weights=world.last_exposure_counts))
        if t >= 1:
            published = world.content.latent()
            new = published.published == t
            assert pool.active[published.creator[new]].all()
    exited = np.flatnonzero(pool.exited >= 0)
    assert exited.size > 0
    for c in exited:
        t_exit = pool.exited[c]  # settled at the start of step t_exit from steps before
        window = [h[c] if c < h.shape[0] else 0.0 for h in history[t_exit - w_steps : t_exit]]
        assert len(window) == w_steps and sum(window) == 0
    entrants = pool.entered >= 0
    assert entrants.sum() == 4 * 12
    assert 0.2 < pool.source[entrants].mean() < 0.8


def test_restore_continues_exactly_with_every_mechanism_on():
    """Checkpoints carry creators, rewrites and popularity: a restored world continues alike."""
    sc = make_small(
        *ECON,
        "content.rewrite_share=0.5",
        "content.style_magnitude=1.0",
        "content.exit_threshold=0.5",
        "content.exit_patience=2",
        "content.creators_per_step=1",
        _phases({"until": 4, "aigc_share": 0.0}, {"aigc_share": 0.7, "ramp": 3}),
        steps=14,
    )
    straight = World(sc, 1, 2)
    expected = [straight.step(t) for t in range(14)]
    first = World(sc, 1, 2)
    for t in range(7):
        first.step(t)
    again = World(sc, 1, 2)
    again.restore(pickle.loads(pickle.dumps(first.checkpoint())))
    np.testing.assert_equal([again.step(t) for t in range(7, 14)], expected[7:])  # NaN == NaN
