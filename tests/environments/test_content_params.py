"""The ``creators`` content model's settings: defaults, bounds and the phase rules.

Classes: each field's default (results depend on them) and the edge of its bound (the last
accepted and the first refused value); the AIGC schedule's rules — only the last phase may
omit ``until``, ``until`` strictly increasing (the message names both phases), no schedule
with ``production: adoption``, AIGC shares only with AIGC creators (or creators entering),
no ramp on the first phase and none longer than its phase.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from simlab.environments.content_params import CreatorEcosystemParams, Phase

DEFAULTS = {
    "num_human_creators": 100,
    "num_aigc_creators": 20,
    "items_per_step": 20,
    "initial_items": 1000,
    "lifetime": 50,
    "creator_spread": 0.3,
    "item_spread": 0.3,
    "feature_noise": 0.3,
    "quality_mean": 0.0,
    "quality_std": 0.5,
    "style_magnitude": 0.0,
    "anisotropy": 0.0,
    "rewrite_share": 0.0,
    "rewrite_noise": 0.1,
    "exit_threshold": 0.0,
    "exit_patience": 10,
    "creators_per_step": 0,
    "production": "schedule",
    "aigc_quality_gap": 0.0,
}


def test_defaults():
    """Every default as documented, and one phase of no AIGC."""
    p = CreatorEcosystemParams()
    for name, value in DEFAULTS.items():
        assert getattr(p, name) == value, name
    assert p.phases == [Phase(aigc_share=0.0)]
    assert Phase(aigc_share=0.5).until is None and Phase(aigc_share=0.5).ramp == 0


# (model, required keys, field, last accepted value at the bound, first refused value)
ECOSYSTEM = [
    ("num_human_creators", 1, 0),
    ("num_aigc_creators", 0, -1),
    ("items_per_step", 0, -1),
    ("initial_items", 0, -1),
    ("lifetime", 1, 0),
    ("creator_spread", 0.0, -0.01),
    ("item_spread", 0.0, -0.01),
    ("feature_noise", 0.0, -0.01),
    ("quality_std", 0.0, -0.01),
    ("style_magnitude", 0.0, -0.01),
    ("anisotropy", 0.0, -0.01),
    ("rewrite_share", 1.0, 1.01),
    ("rewrite_share", 0.0, -0.01),
    ("rewrite_noise", 0.0, -0.01),
    ("exit_threshold", 0.0, -0.01),
    ("exit_patience", 1, 0),
    ("creators_per_step", 0, -1),
    ("aigc_quality_gap", 0.0, -0.01),
]
# a phase's `until` is positive, its share a probability, its ramp non-negative
PHASE = [("until", 1, 0), ("aigc_share", 1.0, 1.01), ("aigc_share", 0.0, -0.01), ("ramp", 0, -1)]
BOUNDS = [(CreatorEcosystemParams, {}, *b) for b in ECOSYSTEM] + [
    (Phase, {"aigc_share": 0.5}, *b) for b in PHASE
]


@pytest.mark.parametrize(("model", "base", "field", "ok", "bad"), BOUNDS)
def test_each_bound_accepts_its_edge_and_refuses_beyond(model, base, field, ok, bad):
    """The edge value is accepted; one step beyond is refused, naming the field."""
    assert getattr(model(**{**base, field: ok}), field) == ok
    with pytest.raises(ValidationError, match=field):
        model(**{**base, field: bad})


def _phases(*untils):
    return [{"until": u, "aigc_share": 0.1} for u in untils]


@pytest.mark.parametrize("untils", [(10, None), (5, 10, None), (3, 4, 5), (7,), (None,)])
def test_increasing_phases_with_an_open_last_one_are_accepted(untils):
    """Strictly increasing ``until``; the last phase may omit it."""
    p = CreatorEcosystemParams(phases=_phases(*untils))
    assert [ph.until for ph in p.phases] == list(untils)


@pytest.mark.parametrize(("untils", "index"), [((None, 10), 0), ((5, None, 20), 1)])
def test_only_the_last_phase_may_omit_until(untils, index):
    """A phase without ``until`` before the last: refused, naming its index."""
    with pytest.raises(ValidationError, match=rf"phases\[{index}\] has no `until`"):
        CreatorEcosystemParams(phases=_phases(*untils))


@pytest.mark.parametrize(
    ("untils", "message"),
    [
        ((10, 10), r"phases\[1\]\.until=10 must be greater than phases\[0\]\.until=10"),
        ((10, 5, None), r"phases\[1\]\.until=5 must be greater than phases\[0\]\.until=10"),
        ((3, 8, 6), r"phases\[2\]\.until=6 must be greater than phases\[1\]\.until=8"),
        ((1, 2, 9, 4), r"phases\[3\]\.until=4 must be greater than phases\[2\]\.until=9"),
        ((1, 2, 3, 4, 5, 6, 6), r"phases\[6\]\.until=6 must be greater than phases\[5\]\.until=6"),
    ],
)
def test_phases_out_of_order_name_both_phases(untils, message):
    """Equal or decreasing ``until``: the message names the phase and the one before it."""
    with pytest.raises(ValidationError, match=message):
        CreatorEcosystemParams(phases=_phases(*untils))


def test_adoption_refuses_a_schedule_and_accepts_none():
    """``production: adoption`` with phases: refused; without: the default phase."""
    assert CreatorEcosystemParams(production="adoption").production == "adoption"
    with pytest.raises(ValidationError, match="production: adoption"):
        CreatorEcosystemParams(production="adoption", phases=_phases(None))
    with pytest.raises(ValidationError, match="production"):
        CreatorEcosystemParams(production="other")


@pytest.mark.parametrize(
    ("aigc", "entering", "share", "ok"),
    [
        (0, 0, 0.0, True),  # no AIGC anywhere
        (0, 0, 0.01, False),  # a share with nobody to produce it
        (0, 2, 0.5, True),  # creators entering can be AIGC
        (1, 0, 1.0, True),
    ],
)
def test_aigc_shares_need_aigc_creators(aigc, entering, share, ok):
    """A positive AIGC share needs AIGC creators or creators entering."""
    kw = {"num_aigc_creators": aigc, "creators_per_step": entering}
    kw["phases"] = [{"aigc_share": share}]
    if ok:
        CreatorEcosystemParams(**kw)
    else:
        with pytest.raises(ValidationError, match="num_aigc_creators is 0"):
            CreatorEcosystemParams(**kw)


def test_an_empty_schedule_is_refused():
    """``phases: []`` has no share for any step: refused (at least one phase)."""
    with pytest.raises(ValidationError, match="phases"):
        CreatorEcosystemParams(phases=[])


def _ramped(*phases: tuple) -> list[dict]:
    """Phases from ``(until, ramp)`` pairs, alternating shares 0.1 and 0.6."""
    return [{"until": u, "aigc_share": (0.1, 0.6)[i % 2], "ramp": r}
            for i, (u, r) in enumerate(phases)]  # fmt: skip


@pytest.mark.parametrize(
    "phases",
    [
        ((None, 1),),
        ((None, 40),),
        ((5, 2), (None, 0)),
        ((5, 5), (10, 3), (None, 1)),
    ],
)
def test_a_first_phase_ramp_is_refused(phases):
    """The first phase has no earlier share to ramp from: refused, saying what to do."""
    with pytest.raises(ValidationError, match=r"phases\[0\]\.ramp=\d+: the first phase") as e:
        CreatorEcosystemParams(phases=_ramped(*phases))
    assert "set ramp: 0, or put a phase before it" in str(e.value)


@pytest.mark.parametrize(
    ("phases", "index", "steps"),
    [
        (((10, 0), (14, 8), (None, 4)), 1, 4),  # the share would jump at step 14
        (((10, 0), (11, 2), (None, 0)), 1, 1),
        (((3, 0), (8, 2), (20, 13), (None, 1)), 2, 12),
        (((1, 0), (2, 0), (3, 0), (9, 7)), 3, 6),
    ],
)
def test_a_ramp_longer_than_its_phase_is_refused(phases, index, steps):
    """A ramp that would not end before its phase does: refused, naming the phase's length."""
    pattern = rf"phases\[{index}\]\.ramp=\d+ is longer than the phase \(steps .*, {steps} steps\)"
    with pytest.raises(ValidationError, match=pattern) as e:
        CreatorEcosystemParams(phases=_ramped(*phases))
    assert f"at most {steps} steps" in str(e.value)


@pytest.mark.parametrize(
    "phases",
    [
        ((10, 0), (14, 4), (None, 4)),  # a ramp as long as its phase
        ((10, 0), (None, 500)),  # the last phase: any ramp
        ((2, 0), (4, 1), (7, 3), (None, 0)),
    ],
)
def test_ramps_within_their_phases_are_accepted(phases):
    """Ramps after the first phase, each ending within its phase (or in the last one)."""
    p = CreatorEcosystemParams(phases=_ramped(*phases))
    assert [ph.ramp for ph in p.phases] == [r for _, r in phases]


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        ([{"until": 10, "aigc_share": 0.0}, {"until": 5, "aigc_share": 0.5}], "out of order"),
        ([{"until": 8, "aigc_share": 0.0}, {"until": 8, "aigc_share": 0.5}], "out of order"),
        ([{"aigc_share": 0.0}, {"aigc_share": 0.5}], "phases[0] has no `until`"),
        ([{"aigc_share": 0.2}, {"until": 4, "aigc_share": 0.5}], "phases[0] has no `until`"),
        ([{"aigc_share": 0.2, "ramp": 3}], "phases[0].ramp=3: the first phase"),
        (
            [{"until": 5, "aigc_share": 0.0}, {"until": 7, "aigc_share": 0.5, "ramp": 3}],
            "phases[1].ramp=3 is longer than the phase",
        ),
    ],
)
def test_schedule_errors_are_reported_at_content_phases(phases, message):
    """A schedule error names ``content.phases`` (not the whole section) and no raw list.

    The message itself names the phase and its values; repeating the list as the "got"
    value would only bury it.
    """
    from simlab.errors import ScenarioError
    from simlab.scenario import parse_scenario

    data = {
        "name": "phases",
        "steps": 20,
        "users": {"model": "logit", "num_users": 10},
        "content": {"model": "creators", "initial_items": 30, "phases": phases},
        "agents": [{"model": "random"}],
    }
    with pytest.raises(ScenarioError) as e:
        parse_scenario(data)
    lines = [line for line in str(e.value).splitlines() if message in line]
    assert len(lines) == 1, str(e.value)
    assert "content.phases: " in lines[0]
    assert "got [" not in lines[0]
