"""Publishing of new items against a per-item loop reference of the documented recipe."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.environments.content import CreatorEcosystem, Phase
from simlab.rng import Stream
from simlab.world_context import WorldContext

SEED, DIM, TOPICS = 3, 6, 4


def ecosystem(**fields) -> CreatorEcosystem:
    """A small creator ecosystem of the given parameters."""
    fields.setdefault("num_human_creators", 7)
    fields.setdefault("num_aigc_creators", 3)
    fields.setdefault("initial_items", 30)
    fields.setdefault("items_per_step", 12)
    fields.setdefault("lifetime", 5)
    ctx = WorldContext(SEED, DIM, TOPICS, 1.5, 10, 5, 4)
    return CreatorEcosystem(CreatorEcosystem.Params(**fields), ctx)


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` over its norm (zero stays zero)."""
    n = float(np.sqrt((v.astype(np.float64) ** 2).sum()))
    return v / n if n > 0 else v


def reference_item(eco: CreatorEcosystem, i: int, share: float, creator: int | None = None):
    """One new item by hand: (creator, source, topic, latent, features, quality) or None."""
    p, pool = eco.params, eco.pool
    if creator is None:
        aigc = Stream(SEED, "content/source").uniform(np.array([i]), 0)[0] < share
        pick = Stream(SEED, "content/creator").uniform(np.array([i]), 0)[0]
        adopt = p.production == "adoption"  # any active creator, in its current mode
        active = [
            c
            for c in range(pool.num_creators)
            if pool.active[c] and (adopt or pool.source[c] == aigc)
        ]
        if not active:
            return None
        creator = active[int(pick * len(active))]
    source = int(pool.source[creator])
    scale = 1.5 / np.sqrt(DIM)
    noise = Stream(SEED, "content/item_vec").normal(np.array([i]), 0, size=DIM)[0]
    latent = unit(pool.vec[creator] + p.item_spread * scale * noise)
    z = Stream(SEED, "content/quality").normal(np.array([i]), 0)[0]
    quality = p.quality_mean + p.quality_std * z - p.aigc_quality_gap * source
    fnoise = Stream(SEED, "content/features").normal(np.array([i]), 0, size=DIM)[0]
    features = latent + p.feature_noise * fnoise / np.sqrt(DIM)
    features = features + (p.anisotropy + p.style_magnitude * source) * eco.style
    return creator, source, int(pool.topic[creator]), latent, features, quality


def assert_items_match(items, eco, ids, share, creators=None):
    """The table's rows for ``ids`` equal the reference (unpublished ids absent)."""
    got = {int(i): r for r, i in enumerate(items.item_ids)}
    for n, i in enumerate(ids):
        ref = reference_item(eco, i, share, None if creators is None else creators[n])
        if ref is None:
            assert i not in got
            continue
        r = got[i]
        creator, source, topic, latent, features, quality = ref
        assert (items.creator[r], items.source[r], items.topic[r]) == (creator, source, topic)
        np.testing.assert_allclose(items.latent[r], latent, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(items.features[r], features, rtol=1e-5, atol=1e-5)
        assert items.quality[r] == pytest.approx(quality, rel=1e-5, abs=1e-6)
        assert items.original[r] == -1


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"phases": [Phase(aigc_share=0.4)], "style_magnitude": 0.7},
        {"phases": [Phase(aigc_share=1.0)], "anisotropy": 0.3, "aigc_quality_gap": 0.25},
        {"phases": [Phase(aigc_share=0.5)], "quality_mean": 1.5, "quality_std": 0.2},
        {"phases": [Phase(aigc_share=0.3)], "item_spread": 0.0, "feature_noise": 0.9},
        {"phases": [Phase(aigc_share=0.5)], "exits": 1},  # every AIGC creator has left
        {"phases": [Phase(aigc_share=0.5)], "exits": 0},  # every human creator has left
    ],
)
def test_items_follow_the_recipe_item_by_item(fields):
    """Initial and step items: creator, source, topic, latent, features, quality by hand."""
    fields = dict(fields)
    exits = fields.pop("exits", None)
    eco = ecosystem(**fields)
    share = eco.aigc_share(0)
    assert_items_match(eco.items, eco, range(30), share)
    ages = [(-1 - r % 5) for r in range(30)]
    for r, i in enumerate(eco.items.item_ids.tolist()):
        assert eco.items.published[r] == ages[i]
    if exits is not None:
        eco.pool.active[eco.pool.source == exits] = False
    eco.step(0, None)
    new = eco.items.select(eco.items.published == 0)
    assert_items_match(new, eco, range(30, 42), share)
    np.testing.assert_array_equal(eco.new_item_sources(), new.source)
    assert new.latent.dtype == new.features.dtype == new.quality.dtype == np.float32
    if exits is not None:
        assert 0 < new.item_ids.size < 12 and (new.source != exits).all()


def test_ids_increase_across_steps_even_when_items_are_skipped():
    """Item ids are consecutive over the whole run; skipped ids are never reused."""
    eco = ecosystem(phases=[Phase(aigc_share=0.5)], initial_items=0)
    eco.pool.active[eco.pool.source == 1] = False
    seen = []
    for t in range(4):
        eco.step(t, None)
        seen += eco.items.select(eco.items.published == t).item_ids.tolist()
    assert seen == sorted(seen) and len(set(seen)) == len(seen) and len(seen) < 48
    assert eco._next_id == 48


def test_commissioned_items_are_by_the_given_creators():
    """Commissioned creators publish items of their new topic by the same recipe."""
    eco = ecosystem(phases=[Phase(aigc_share=0.5)], style_magnitude=0.4)
    eco.commission(np.array([8, 1, 1]), np.array([3, 0, 0]))
    eco.step(0, None)
    new = eco.items.select(eco.items.published == 0)
    assert_items_match(new, eco, range(42, 45), 0.5, creators=[8, 1, 1])
    assert new.topic[-3:].tolist() == [3, 0, 0]


def human_then(share: float) -> list[Phase]:
    """Human items only before step 1, then the given AIGC share."""
    return [Phase(until=1, aigc_share=0.0), Phase(aigc_share=share)]


@pytest.mark.parametrize("share", [0.5, 1.0])
def test_rewrites_copy_a_popular_human_item_by_hand(share):
    """A rewrite: the original picked by its impressions, its topic, noisy latent and quality."""
    p = {"rewrite_share": 0.6, "rewrite_noise": 0.2, "quality_std": 0.4}
    eco = ecosystem(phases=human_then(share), initial_items=40, lifetime=40, **p)
    items = eco.items
    human = items.item_ids[items.source == 0]
    shown = human[::3]
    counts = np.arange(1, shown.size + 1, dtype=np.int64) ** 2
    eco.step(1, (shown, counts))
    new = eco.items.select(eco.items.published == 1)
    cdf = np.cumsum(counts) / counts.sum()
    scale = 1.5 / np.sqrt(DIM)
    rewrites = 0
    for r, i in enumerate(new.item_ids.tolist()):
        u = Stream(SEED, "content/rewrite").uniform(np.array([i]), 0, size=2)[0]
        if new.source[r] == 0 or u[0] >= 0.6:
            assert new.original[r] == -1
            continue
        rewrites += 1
        orig = int(shown[min(int((cdf <= u[1]).sum()), shown.size - 1)])
        assert new.original[r] == orig
        o = int(np.flatnonzero(items.item_ids == orig)[0])
        noise = Stream(SEED, "content/rewrite_vec").normal(np.array([i]), 0, size=DIM + 1)[0]
        latent = unit(items.latent[o] + 0.2 * scale * noise[:DIM])
        np.testing.assert_allclose(new.latent[r], latent, rtol=1e-5, atol=1e-6)
        quality = items.quality[o] + 0.2 * 0.4 * noise[DIM]
        assert new.quality[r] == pytest.approx(quality, rel=1e-5, abs=1e-6)
        assert new.topic[r] == items.topic[o] and new.source[r] == 1
        fnoise = Stream(SEED, "content/features").normal(np.array([i]), 0, size=DIM)[0]
        np.testing.assert_allclose(new.features[r], latent + 0.3 * fnoise / np.sqrt(DIM), atol=1e-5)
    assert rewrites >= 2


def test_without_impressions_every_live_human_item_is_equally_likely():
    """No impressions last step: the original is drawn uniformly over live human items."""
    eco = ecosystem(phases=human_then(1.0), rewrite_share=1.0, initial_items=40, lifetime=40)
    items = eco.items
    human = items.item_ids[items.source == 0]
    eco.step(1, None)
    new = eco.items.select(eco.items.published == 1)
    assert new.item_ids.size == 12
    for r, i in enumerate(new.item_ids.tolist()):
        u = Stream(SEED, "content/rewrite").uniform(np.array([i]), 0, size=2)[0]
        cdf = np.arange(1, human.size + 1) / human.size
        assert new.original[r] == human[min(int((cdf <= u[1]).sum()), human.size - 1)]


def test_no_human_item_means_no_rewrite():
    """With every live item AIGC there is nothing to rewrite: AIGC items are fresh."""
    eco = ecosystem(phases=[Phase(aigc_share=1.0)], rewrite_share=1.0)
    assert not (eco.items.source == 0).any()
    eco.step(0, None)
    new = eco.items.select(eco.items.published == 0)
    assert (new.original == -1).all()
    assert_items_match(new, eco, range(30, 42), 1.0)


@pytest.mark.parametrize("exits", [False, True])
def test_adoption_draws_creators_among_every_active_one(exits):
    """With adoption an item's creator is any active creator; its source is the creator's mode."""
    eco = ecosystem(production="adoption", style_magnitude=0.5)
    assert_items_match(eco.items, eco, range(30), 0.0)
    assert eco.items.source.any() or not eco.pool.source.any()
    if exits:  # nobody left: nothing is published, the ids are spent all the same
        eco.pool.active[:] = False
    else:
        eco.pool.active[::3] = False
    eco.step(0, None)
    new = eco.items.select(eco.items.published == 0)
    assert_items_match(new, eco, range(30, 42), 0.0)
    assert new.item_ids.size == (0 if exits else 12) and eco._next_id == 42
    np.testing.assert_array_equal(new.source, eco.pool.source[new.creator])
