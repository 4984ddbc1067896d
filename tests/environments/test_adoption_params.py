"""Creators' AIGC adoption: its settings' defaults and bounds, and the choice rule by hand.

Classes: every default (results depend on them) and the edge of every bound; a creator's
choice is ``sensitivity * delta + logit(baseline_share) + taste > 0`` with its taste the
logistic transform of its keyed draw at step 0 (fixed for life: the same at any signal).
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from simlab.environments.adoption import Adoption, AdoptionParams
from simlab.rng import Stream


def test_defaults():
    """The documented defaults."""
    p = AdoptionParams()
    assert (p.baseline_share, p.sensitivity, p.revise_rate) == (0.1, 2.0, 0.05)
    assert (p.signal, p.window) == ("impressions", 5)


@pytest.mark.parametrize(
    ("field", "ok", "bad"),
    [
        ("baseline_share", 1e-9, 0.0),
        ("baseline_share", 1 - 1e-9, 1.0),
        ("sensitivity", 0.0, -0.01),
        ("revise_rate", 1.0, 1.01),
        ("revise_rate", 1e-9, 0.0),
        ("window", 1, 0),
        ("signal", "clicks", "views"),
    ],
)
def test_each_bound_accepts_its_edge_and_refuses_beyond(field, ok, bad):
    """The edge value is accepted; one step beyond is refused, naming the field."""
    assert getattr(AdoptionParams(**{field: ok}), field) == ok
    with pytest.raises(ValidationError, match=field):
        AdoptionParams(**{field: bad})


@pytest.mark.parametrize(
    ("share", "sens", "delta"), [(0.1, 2.0, 0.0), (0.5, 0.5, -1.3), (0.9, 4.0, 0.7)]
)
def test_choice_is_the_logistic_rule_on_the_step_0_taste_draw(share, sens, delta):
    """Each creator's mode equals the rule computed by hand from its keyed draw at step 0."""
    seed, ids = 5, np.arange(300, dtype=np.int64) * 7
    ad = Adoption(AdoptionParams(baseline_share=share, sensitivity=sens), seed)
    u = Stream(seed, "content/adoption/taste").uniform(ids, 0)
    want = (sens * delta + np.log(share / (1 - share)) + np.log(u / (1 - u)) > 0).astype(np.int8)
    np.testing.assert_array_equal(ad.choose(ids, delta), want)
    np.testing.assert_array_equal(
        ad.initial_modes(ids),
        (np.log(share / (1 - share)) + np.log(u / (1 - u)) > 0).astype(np.int8),
    )


def test_the_starting_share_is_the_baseline_share():
    """With no signal, the share of AIGC creators is ``baseline_share`` (20,000 creators)."""
    ids = np.arange(20_000, dtype=np.int64)
    for share in (0.1, 0.35):
        got = Adoption(AdoptionParams(baseline_share=share), 2).initial_modes(ids).mean()
        assert abs(got - share) < 5 * np.sqrt(share * (1 - share) / ids.shape[0])
