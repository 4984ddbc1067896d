"""The population's helpers one by one: sizes, shard bounds, joined states, a shard's rows.

What ``tests/test_population.py`` pins through whole worlds, pinned here at each helper's
edge (the first mutation run of ``simlab/population.py`` found these unpinned).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_small

from simlab.batch import PAD
from simlab.errors import ScenarioError
from simlab.population import (
    LocalPopulation,
    ShardSpec,
    UserShard,
    concat_states,
    population_size,
    shard_bounds,
)
from simlab.world import World


@pytest.mark.parametrize("n", [0, -1, -1000, None, 2.5, "5"])
def test_a_population_size_must_be_a_positive_int(n):
    """A custom user model's ``num_users`` that is not a positive int: one clear error."""
    sc = SimpleNamespace(users=SimpleNamespace(model="mine", params=SimpleNamespace(num_users=n)))
    with pytest.raises(ScenarioError, match="declares no positive `num_users`"):
        population_size(sc)


@pytest.mark.parametrize(
    ("users", "shards", "bounds"),
    [(10, 0, [(0, 10)]), (10, -2, [(0, 10)]), (0, 3, [(0, 0)]), (1, 1, [(0, 1)]),
     (5, 5, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]), (7, 2, [(0, 4), (4, 7)])],
)  # fmt: skip
def test_shard_bounds_always_give_at_least_one_range(users, shards, bounds):
    """No shard count (not even 0) leaves the users without a range."""
    assert shard_bounds(users, shards) == bounds


def test_joined_states_pad_integer_rows_to_the_widest_shard():
    """Consumed items padded to different widths per shard are padded to the widest (PAD)."""
    a = {"ids": np.array([[1, 2, PAD]]), "x": np.array([[0.5, 1.5]]), "v": np.array([3])}
    b = {"ids": np.array([[4, 5, 6, 7], [8, PAD, PAD, PAD]]), "x": np.array([[2.0, 3.0]] * 2),
         "v": np.array([4, 5])}  # fmt: skip
    out = concat_states([a, b])
    np.testing.assert_array_equal(out["ids"], [[1, 2, PAD, PAD], [4, 5, 6, 7], [8, PAD, PAD, PAD]])
    np.testing.assert_array_equal(out["x"], [[0.5, 1.5], [2.0, 3.0], [2.0, 3.0]])
    np.testing.assert_array_equal(out["v"], [3, 4, 5])
    # a float first part is not padded, even beside integer rows of another width
    with pytest.raises(ValueError):
        concat_states([{"f": np.zeros((1, 2))}, {"f": np.zeros((1, 3), np.int64)}])


@pytest.mark.parametrize("bounds", [[(0, 40), (40, 100)], [(0, 1), (1, 99), (99, 100)]])
def test_a_shard_samples_its_own_users_interests(bounds):
    """``sample_interests`` takes global ids: a shard starting at ``lo`` reads row ``id - lo``."""
    sc = make_small("users.drift_rate=0.1", ("users.num_users", 100))
    world = World(sc, 0, seed=2)
    whole = world.population.interests()[0]
    for lo, hi in bounds:
        shard = UserShard(ShardSpec.of(sc, 2), lo, hi)
        ids = np.arange(lo, hi)[:: max(1, (hi - lo) // 7)]
        np.testing.assert_array_equal(shard.sample_interests(ids), whole[ids])


def test_a_state_without_consumed_items_is_refused_where_they_are_kept():
    """With no repeat consumption the consumed items are state: loading one without fails."""
    sc = make_small("platform.exclude_consumed=true", ("users.num_users", 30))
    pop = LocalPopulation(sc, 1)
    state = {k: v for k, v in pop.state_dict().items() if k != "consumed/items"}
    with pytest.raises(ValueError, match="no consumed items"):
        pop.shard.load_state_dict(state)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_users_who_pass_over_consumed_items_never_consume_one_twice(seed):
    """T-RECS's rule (``consumed_ranked``): shown again, a consumed item is never chosen.

    Consumed items stay in the ranked lists and the users pass over them.
    """
    sc = make_small(("users", {"model": "chaney", "num_users": 40}),
                    ("content", {"model": "chaney-items", "items_per_step": 5}),
                    "platform.slate_size=0", "platform.exclude_consumed=true",
                    "platform.consumed_ranked=true", agents=[{"model": "popularity"}])  # fmt: skip
    world = World(sc, 0, seed=seed)
    seen: set[tuple[int, int]] = set()
    shown_again = 0
    for t in range(12):
        world.step(t)
        fb = world.last_feedback
        for u, row, pos in zip(fb.user_ids, fb.slates, fb.clicked_pos, strict=True):
            shown_again += sum((int(u), int(i)) in seen for i in row)
            if pos >= 0:
                pair = (int(u), int(row[pos]))
                assert pair not in seen, (t, pair)
                seen.add(pair)
    assert len(seen) > 100 and shown_again > 0  # consumed items were shown, never chosen
