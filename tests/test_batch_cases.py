"""simlab.batch, per class of input.

Logs of slates of varying width, empty defaults, zero users with shared candidates, unknown
catalog ids and the shapes the checks name.

Slates of every candidate (``platform.slate_size: 0``) differ in width from step to step:
the log pads narrower ones with ``PAD`` on the right to the widest, keeping every row and
value in place. A log built without features reads empty ones; an observation of no user
cannot share a row; a lookup of unknown ids names the first ten of them, sorted; a field
of the wrong number of dimensions is named with the shape expected from its first axis.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_batch import make_catalog, make_feedback, make_observation

from simlab.batch import PAD, Feedback, Log


def _feedback(step: int, widths_rng, users: int, width: int) -> Feedback:
    slates = widths_rng.integers(0, 100, (users, width)).astype(np.int64)
    clicked = widths_rng.integers(-1, max(width, 1), users).astype(np.int64)
    clicked[clicked >= width] = -1
    return Feedback(
        step=step,
        user_ids=np.arange(users, dtype=np.int64),
        slates=slates,
        clicked_pos=clicked,
        engagement=np.zeros(users, np.float32),
    )


@pytest.mark.parametrize("seed", range(8))
def test_narrower_slates_are_padded_on_the_right_to_the_widest(seed):
    """Every step's rows in order, values in place, ``PAD`` after them; nothing else moves."""
    rng = np.random.default_rng(seed)
    widths = rng.integers(0, 9, int(rng.integers(1, 6)))
    steps = [_feedback(t, rng, int(rng.integers(1, 5)), int(w)) for t, w in enumerate(widths)]
    log = Log.of_steps(steps, np.zeros(0, np.int64), np.zeros((0, 2), np.float32))
    width = int(widths.max())
    assert log.slates.shape == (sum(f.user_ids.size for f in steps), width)
    row = 0
    for f in steps:
        for r in range(f.user_ids.size):
            k = f.slates.shape[1]
            assert log.slates[row, :k].tolist() == f.slates[r].tolist()
            assert (log.slates[row, k:] == PAD).all()
            row += 1
    assert log.clicked_items.tolist() == np.concatenate([f.clicked_items for f in steps]).tolist()


def test_a_log_without_features_reads_empty_ones():
    """The defaults: no feature ids, a (0, 0) float32 feature array, both read-only."""
    log = Log(
        step=np.zeros(1, np.int64),
        user_ids=np.zeros(1, np.int64),
        slates=np.zeros((1, 2), np.int64),
        clicked_pos=np.zeros(1, np.int64),
        engagement=np.zeros(1, np.float32),
    )
    assert log.feature_ids.shape == (0,) and log.feature_ids.dtype == np.int64
    assert log.features.shape == (0, 0) and log.features.dtype == np.float32
    assert not log.features.flags.writeable and not log.feature_ids.flags.writeable


@pytest.mark.parametrize("columns", [1, 4])
def test_no_user_shares_no_row(columns):
    """Zero users with shared candidates: not shared, and the pool is the (0, C) array."""
    obs = make_observation(
        num_candidates=columns,
        slate_size=1,
        user_ids=np.zeros(0, np.int64),
        user_features=np.zeros((0, 3), np.float32),
        history=np.zeros((0, 4), np.int64),
        candidates=np.zeros((0, columns), np.int64),
        shared_candidates=True,
    )
    assert obs.shared_candidates is False
    assert obs.candidate_pool.shape == (0, columns)
    assert obs.num_users == 0


@pytest.mark.parametrize("unknown", [1, 9, 10, 11, 25])
def test_unknown_ids_are_named_first_ten_sorted(unknown):
    """At most ten unknown ids in the message, the smallest first, repeats once."""
    cat = make_catalog()
    bad = np.arange(1000, 1000 + unknown)[::-1]
    query = np.concatenate([bad, bad[:3], cat.item_ids])
    with pytest.raises(KeyError) as e:
        cat.rows(query)
    assert e.value.args[0] == f"item ids not in the live catalog: {sorted(bad.tolist())[:10]}"


@pytest.mark.parametrize("field", ["user_ids", "clicked_pos"])
def test_a_field_of_two_dimensions_is_named_with_the_expected_length(field):
    """The expected shape comes from the first axis of ``user_ids`` (3 users), not the last."""
    fb = make_feedback()
    value = np.zeros((3, 2), np.int64)
    if field == "user_ids":
        with pytest.raises(ValueError) as e:
            make_feedback(user_ids=value)
        assert str(e.value) == "Expects `Feedback.user_ids` of shape (3,), actual shape: (3, 2)"
    else:
        with pytest.raises(ValueError) as e:
            make_feedback(clicked_pos=value)
        assert str(e.value) == "Expects `Feedback.clicked_pos` of shape (3,), actual shape: (3, 2)"
    assert fb.user_ids.shape == (3,)


@pytest.mark.parametrize("kind", ["Slates", "Observation"])
def test_user_ids_of_two_dimensions_are_named_with_their_first_axis(kind):
    """Slates and observations name the shape expected from the first axis too."""
    from simlab.batch import Slates

    users = np.zeros((2, 5), np.int64)
    with pytest.raises(ValueError) as e:
        if kind == "Slates":
            Slates(users, np.zeros((2, 3), np.int64))
        else:
            make_observation(user_ids=users)
    assert str(e.value) == f"Expects `{kind}.user_ids` of shape (2,), actual shape: (2, 5)"
