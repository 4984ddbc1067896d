"""Tests of ``CreatorEcosystem.commission``, the hook strategic creators steer content with."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import make_small

from simlab.world import World


def test_commission_publishes_in_the_chosen_topic():
    """Commissioned creators publish extra items in their new topic; others are unchanged."""
    plain = World(make_small(), 0, seed=0).content
    steered = World(make_small(), 0, seed=0).content
    steered.commission(np.array([0, 0, 3]), np.array([5, 5, 2]))
    plain.step(0, None)
    steered.step(0, None)
    per_step = plain.params.items_per_step
    n = plain.items.item_ids.shape[0]
    assert steered.items.item_ids.shape[0] == n + 3
    np.testing.assert_array_equal(steered.items.latent[:n], plain.items.latent)
    extra = steered.items.select(steered.items.published == 0)
    assert extra.item_ids.shape[0] == per_step + 3
    assert extra.creator[-3:].tolist() == [0, 0, 3]
    assert extra.topic[-3:].tolist() == [5, 5, 2]
    assert steered.creator_topic[0] == 5 and steered.creator_topic[3] == 2
    steered.step(1, None)  # a commission lasts one step
    assert (steered.items.published == 1).sum() == per_step


def test_commission_rejects_bad_input():
    """Bad creator ids, topics or conflicting topics raise ``ValueError``."""
    content = World(make_small(), 0, seed=0).content
    with pytest.raises(ValueError, match=re.escape("`topics` in [0, 8), actual values: [8]")):
        content.commission(np.array([0]), np.array([8]))
    with pytest.raises(ValueError, match=re.escape("`creator_ids` in [0, 40)")):
        content.commission(np.array([40]), np.array([0]))
    with pytest.raises(ValueError, match="one topic per creator"):
        content.commission(np.array([1, 1]), np.array([0, 2]))
