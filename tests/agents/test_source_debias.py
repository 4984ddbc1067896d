"""Zhou et al.'s black-box source debiasing on mf: the invariance term acts on the style."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import make_small

from simlab.errors import ScenarioError
from simlab.world import World

STYLED = [
    "content.style_magnitude=1.0",
    ("content.phases", [{"aigc_share": 0.5}]),
    "users.drift_rate=0.05",
]


def _style_weight(source_debias: float, seed: int) -> float:
    sc = make_small(
        *STYLED, agents=[{"model": "mf", "factors": 8, "source_debias": source_debias}], steps=20
    )
    world = World(sc, 0, seed)
    for t in range(20):
        world.step(t)
    return float(np.linalg.norm(world.content.style @ world.agent._model["W"]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_invariance_term_removes_the_style_from_item_vectors(seed):
    """With the term on, the style's image in W shrinks by an order of magnitude.

    (A rewrite then barely changes an item's vector.)
    """
    assert _style_weight(5.0, seed) < 0.1 * _style_weight(0.0, seed)


def test_rewriter_is_black_box_and_rebound_after_restore():
    """The rewrite adds the style to any item (no labels needed) and survives a checkpoint."""
    sc = make_small(*STYLED, agents=[{"model": "mf", "factors": 4, "source_debias": 1.0}], steps=8)
    world = World(sc, 0, 0)
    for t in range(4):
        world.step(t)
    items = world.content.latent()
    rewritten = world.agent._rewriter(items.item_ids, items.features)
    shift = (rewritten - items.features) @ world.content.style
    assert np.allclose(shift.mean(), 1.0, atol=0.1)  # style_magnitude along s, plus noise
    again = World(sc, 0, 0)
    again.restore(pickle.loads(pickle.dumps(world.checkpoint())))
    for t in range(4, 8):
        again.step(t)  # retrains use the rebound rewriter


def test_source_debias_without_a_rewriter_is_a_clear_error():
    """A content model without a rewrite function cannot feed the invariance term."""
    sc = make_small(agents=[{"model": "mf", "factors": 4, "source_debias": 1.0}], steps=6)
    world = World(sc, 0, 0)
    world.agent._rewriter = None
    with pytest.raises(ScenarioError, match="source_debias needs the content model's rewrite"):
        for t in range(6):
            world.step(t)
