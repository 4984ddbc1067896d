"""No repeat consumption (platform.exclude_consumed) and the slate of every candidate."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_small

from simlab.errors import ScenarioError
from simlab.keysets import PairSet
from simlab.testing import record_acts
from simlab.world import World

# users who click a lot (low no-click utility) in a small catalog, so repeats are likely
CLICKY = ("users.no_click_utility=-3", "content.initial_items=60", "content.items_per_step=4")


def _run(sc, steps, agent=0, seed=0):
    world = World(sc, agent, seed)
    calls = record_acts(world)
    feedback = []
    for t in range(steps):
        world.step(t)
        feedback.append(world.last_feedback)
    return world, calls, feedback


def _repeats(feedback) -> int:
    seen, repeats = PairSet(), 0
    for fb in feedback:
        users, items = fb.user_ids[fb.clicked], fb.clicked_items[fb.clicked]
        repeats += int(seen.contains(users, items).sum())
        seen.add(users, items)
    return repeats


@pytest.mark.parametrize("candidates", [0, 30])
@pytest.mark.parametrize("agent", [0, 1])  # random, popularity
def test_no_user_consumes_an_item_twice(candidates, agent):
    """With the rule no click repeats a user's earlier click; without it repeats happen."""
    base = (*CLICKY, f"platform.max_candidates={candidates}")
    off = _repeats(_run(make_small(*base), 25, agent)[2])
    on_world, calls, feedback = _run(make_small(*base, "platform.exclude_consumed=true"), 25, agent)
    assert off > 0, "the control world must repeat, or the test shows nothing"
    assert _repeats(feedback) == 0
    # and the candidates never held a consumed item
    seen = PairSet()
    for (obs, _), fb in zip(calls, feedback, strict=True):
        users = np.repeat(obs.user_ids, obs.candidates.shape[1])
        assert not seen.contains(users, obs.candidates.ravel()).any()
        seen.add(fb.user_ids[fb.clicked], fb.clicked_items[fb.clicked])


def test_candidates_keep_their_size_and_users_without_consumption_lose_nothing():
    """Every row has max_candidates items; who consumed nothing gets the window without the rule."""
    sc_on = make_small(*CLICKY, "platform.max_candidates=20", "platform.exclude_consumed=true")
    world = World(sc_on, 0, 0)
    ref = World(make_small(*CLICKY, "platform.max_candidates=20"), 0, 0)
    calls, ref_calls = record_acts(world), record_acts(ref)
    for t in range(6):
        world.step(t)
        ref.step(t)
    for (obs, _), (ref_obs, _) in zip(calls, ref_calls, strict=True):
        assert obs.candidates.shape[1] == 20
        consumed = world.population.clicks.num_clicks  # all-time clicks per user
        fresh = np.flatnonzero(consumed[obs.user_ids] == 0)
        if obs.step > 0 and fresh.size:
            np.testing.assert_array_equal(obs.candidates[fresh], ref_obs.candidates[fresh])


def test_too_few_unconsumed_items_is_a_clear_error():
    """A slate longer than what is left to consume stops with the field and the counts."""
    sc = make_small(
        *CLICKY, "content.items_per_step=0", "content.initial_items=12", "content.lifetime=100",
        "platform.slate_size=5", "platform.exclude_consumed=true",
    )  # fmt: skip
    world = World(sc, 0, 0)
    with pytest.raises(
        ScenarioError, match="platform.exclude_consumed: at step .* fewer than slate_size 5"
    ):
        for t in range(40):
            world.step(t)


@pytest.mark.parametrize("corpus", ["recsim-corpus", "creators"])
def test_the_error_names_the_setting_of_either_kind_of_catalog(corpus):
    """A fixed corpus has no items_per_step: the message also names its num_docs."""
    content = {"model": corpus, "num_docs": 8}
    if corpus == "creators":
        content = {"model": corpus, "initial_items": 8, "items_per_step": 0, "lifetime": 100}
    sc = make_small(
        ("content", content), "users.no_click_utility=-3", "platform.slate_size=4",
        "platform.exclude_consumed=true", "world.dim=8",
    )  # fmt: skip
    world = World(sc, 0, 0)
    with pytest.raises(ScenarioError) as info:
        for t in range(40):
            world.step(t)
    text = str(info.value)
    assert "(content.items_per_step; content.num_docs for a fixed corpus)" in text


def _chaney(*overrides, steps=25):
    return make_small(
        ("users", {"model": "chaney", "num_users": 30}),
        ("content", {"model": "chaney-items", "items_per_step": 6}),
        "platform.slate_size=0",
        "platform.exclude_consumed=true",
        "platform.retrain_every=1",
        "platform.log_window=3",
        *overrides,
        steps=steps,
        agents=[{"model": "random"}, {"model": "content-filtering"}],
    )


def test_every_candidate_is_ranked_and_startup_shows_the_new_items():
    """slate_size 0: the slate is every candidate; start-up serves this step's items only."""
    sc = _chaney("platform.startup_steps=4", "platform.startup_candidates=new")
    world, calls, feedback = _run(sc, 12, agent=1)
    for t, fb in enumerate(feedback):
        if t < 4:  # the platform serves: the agent is not asked
            assert fb.slates.shape[1] == 6
            assert set(fb.slates.ravel().tolist()) == set(range(6 * t, 6 * t + 6))
        else:
            # 6 items per step, one consumed per user per step, nothing consumed twice
            assert fb.slates.shape[1] == 6 * (t + 1) - t
    assert [obs.step for obs, _ in calls] == list(range(4, 12))
    assert _repeats(feedback) == 0


def test_first_retrain_comes_after_the_startup():
    """Retrains follow the start-up: snapshots at the ends of steps S-1, S-1+R, ..."""
    sc = _chaney("platform.startup_steps=5", "platform.retrain_every=3")
    assert [t for t in range(15) if sc.platform.retrain_due(t)] == [4, 7, 10, 13]
    assert [t for t in range(9) if make_small().platform.retrain_due(t)] == [2, 5, 8]


def test_log_pads_slates_of_different_widths():
    """Steps with different slate widths join in the log, padded with PAD."""
    sc = _chaney("platform.log_window=5")
    world = World(sc, 0, 0)
    for t in range(4):
        world.step(t)
    log = world.platform.log()
    widths = [6, 11, 16, 21]  # live items minus consumed: 6t + 6 - t
    assert log.slates.shape == (30 * 4, 21)
    for i, w in enumerate(widths):
        rows = log.slates[log.step == i]
        assert (rows[:, :w] >= 0).all() and (rows[:, w:] == -1).all()
