"""``platform.consumed_ranked``: consumed items stay ranked and the users pass over them.

T-RECS's replication of Chaney et al. keeps a user's consumed items in the ranked list (they
take rank positions) and blocks repeats on the user side. Classes: the users' choice against
a loop reference (random slates and masks), the world's lists and repeats, user shards,
checkpoints, and the validation of the setting.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_no_repeat import _chaney as _no_repeat_world
from test_no_repeat import _run

from simlab.errors import ScenarioError
from simlab.keysets import PairSet
from simlab.population import ShardSpec, UserShard, population_size, shard_bounds
from simlab.world import World


def _chaney(*overrides, steps=20):
    """test_no_repeat's Chaney world (random, content filtering) with consumed items ranked."""
    return _no_repeat_world("platform.consumed_ranked=true", "platform.startup_steps=3",
                            "platform.startup_candidates=new", *overrides, steps=steps)  # fmt: skip


@pytest.mark.parametrize("seed", range(12))
def test_users_choose_the_best_weighted_item_they_have_not_consumed(seed):
    """``argmax_r r^-0.8 P`` over the ranks ``r`` (from 1) of items not passed over."""
    world, _, _ = _run(_chaney(), 4)
    users = world.population.shard.users
    rng = np.random.default_rng(seed)
    live = world._content.catalog.item_ids
    b, k = 30, int(rng.integers(2, min(live.shape[0], 12) + 1))
    ids = np.arange(b)
    slates = np.stack([rng.choice(live, k, replace=False) for _ in range(b)])
    passed = rng.random((b, k)) < rng.uniform(0.1, 0.8)
    passed[np.arange(b), rng.integers(0, k, b)] = False  # something left to choose
    fb = users.respond(4, ids, slates, world._content.items, passed_over=passed)
    cols = users._cache(slates, world._content.items)
    for u in range(b):
        value = [(j + 1) ** -0.8 * users._p[u, cols[u, j]] for j in range(k)]
        best = max((j for j in range(k) if not passed[u, j]), key=lambda j: (value[j], -j))
        assert fb.clicked_pos[u] == best
        assert fb.engagement[u] == np.float32(users._v[u, cols[u, best]])


@pytest.mark.parametrize("seed", range(6))
def test_items_of_no_known_utility_are_still_chosen_before_consumed_ones(seed):
    """Items of no known utility are still chosen before consumed ones.

    P can be 0 (a utility lost to underflow): a user whose items left all read 0 takes the
    best-ranked of them, never one passed over.
    """
    world, _, _ = _run(_chaney(), 4)
    users = world.population.shard.users
    rng = np.random.default_rng(seed)
    live = world._content.catalog.item_ids
    b, k = 20, int(rng.integers(2, min(live.shape[0], 10) + 1))
    slates = np.stack([rng.choice(live, k, replace=False) for _ in range(b)])
    passed = rng.random((b, k)) < 0.5
    passed[np.arange(b), rng.integers(0, k, b)] = False
    cols = users._cache(slates, world._content.items)
    rows = np.repeat(np.arange(b)[:, None], k, axis=1)
    users._p[rows[~passed], cols[~passed]] = 0.0  # nothing known of what is left
    fb = users.respond(4, np.arange(b), slates, world._content.items, passed_over=passed)
    assert not passed[np.arange(b), fb.clicked_pos].any()
    np.testing.assert_array_equal(fb.clicked_pos, np.argmin(passed, axis=1))  # first left


def test_consumed_items_keep_their_ranks_and_are_never_chosen_again():
    """Every live item is in every list (consumed ones included); nobody consumes twice."""
    world, calls, feedback = _run(_chaney(), 20, agent=1)
    seen, kept = PairSet(), 0
    for t, fb in enumerate(feedback):
        if t >= 3:  # after the start-up: the whole catalog, consumed items included
            assert fb.slates.shape[1] == 6 * (t + 1)
            users = np.repeat(fb.user_ids, fb.slates.shape[1])
            kept += int(seen.contains(users, fb.slates.ravel()).sum())
        chose = fb.clicked
        assert not seen.contains(fb.user_ids[chose], fb.clicked_items[chose]).any()
        seen.add(fb.user_ids[chose], fb.clicked_items[chose])
    assert kept > 0  # consumed items were ranked
    removed = _run(_chaney("platform.consumed_ranked=false"), 20, agent=1)[2]
    assert removed[-1].slates.shape[1] == 6 * 20 - 19  # the default removes them


@pytest.mark.parametrize("num_shards", [2, 3, 7])
def test_user_shards_pass_over_like_the_whole_population(num_shards):
    """Shards of any count choose and remember exactly as one shard of every user."""
    sc = _chaney()
    world, _, feedback = _run(sc, 8)
    spec = ShardSpec.of(sc, 0)
    assert spec.consumed_ranked
    n = population_size(sc)
    whole = UserShard(spec, 0, n)
    shards = [UserShard(spec, lo, hi) for lo, hi in shard_bounds(n, num_shards)]
    content = world._content
    for t, fb in enumerate(feedback):
        ids, slates = fb.user_ids, fb.slates
        want = whole.respond(t, ids, slates, content)[0]
        got = []
        for s, (lo, hi) in zip(shards, shard_bounds(n, num_shards), strict=True):
            mine = (ids >= lo) & (ids < hi)
            got.append(s.respond(t, ids[mine], slates[mine], content)[0])
        np.testing.assert_array_equal(np.concatenate(got), want)


def test_a_restored_world_continues_exactly():
    """Checkpoint at step 7, restore into a new world: the same rows as running through."""
    sc = _chaney()
    through = World(sc, 1, 3)
    rows = [through.step(t) for t in range(14)]
    first = World(sc, 1, 3)
    for t in range(7):
        first.step(t)
    again = World(sc, 1, 3)
    again.restore(first.checkpoint())
    for t in range(7, 14):
        got, want = again.step(t), rows[t]
        assert list(got) == list(want)
        np.testing.assert_array_equal(list(got.values()), list(want.values()))  # NaN == NaN


def test_a_list_of_consumed_items_only_is_a_clear_error():
    """A user with nothing left to choose: an error naming the setting, not a repeat."""
    world, _, _ = _run(_chaney(), 4)
    users = world.population.shard.users
    slates = np.tile(world._content.catalog.item_ids[:3], (2, 1))
    with pytest.raises(ScenarioError, match=r"platform.consumed_ranked: at step 4 user 1"):
        users.respond(4, np.arange(2), slates, world._content.items,
                      passed_over=np.array([[False, True, True], [True, True, True]]))  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("platform.exclude_consumed=false",), "set platform.exclude_consumed: true"),
        (
            (("users", {"model": "logit", "num_users": 30}), ("content", {"model": "creators"}),
             "platform.slate_size=5", "platform.startup_candidates=all"),
            "users.model 'logit' cannot",
        ),
    ],
)  # fmt: skip
def test_the_setting_needs_no_repeats_and_users_who_pass_over(overrides, message):
    """Without no-repeat consumption, or with users who cannot pass over: refused."""
    with pytest.raises(ScenarioError, match="platform.consumed_ranked: true") as e:
        _chaney(*overrides)
    assert message in str(e.value)
