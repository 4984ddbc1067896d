"""``measures.every``: cadenced (expensive) metric groups are measured every N steps only.

On a measured step a cadenced group's columns are bit for bit those of a run measuring
every step, NaN on the steps between; step 0 and the last step are always measured; every
other group is exact on every step; user shards skip the group's partials between.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_small

from simlab import registry
from simlab.errors import ScenarioError
from simlab.metrics.topics import TopicMetric
from simlab.population import ShardSpec, StepContent, UserShard, population_size, shard_bounds
from simlab.world import World

STEPS = 12
METRICS = ["engagement", "topics", "exposure", "diversity"]


def _rows(every: int, agent: int = 1, **top) -> list[dict[str, float]]:
    sc = make_small(f"measures.every={every}", steps=STEPS, metrics=METRICS, **top)
    world = World(sc, agent, seed=4)
    return [row for _, row in world.run()]


@pytest.fixture(scope="module")
def every_step() -> list[dict[str, float]]:
    """The rows of the run that measures every step."""
    return _rows(1)


@pytest.mark.parametrize("every", [2, 3, 5, 11, 40])
def test_cadenced_columns_are_exact_on_their_steps_and_nan_between(every, every_step):
    """topics: exact at multiples of `every` and the last step, NaN between; rest exact."""
    thinned = _rows(every)
    cadenced = set(TopicMetric.columns)
    for t, (full, row) in enumerate(zip(every_step, thinned, strict=True)):
        assert full.keys() == row.keys()
        due = t % every == 0 or t == STEPS - 1
        for col, value in row.items():
            if col in cadenced and not due:
                assert np.isnan(value), (t, col)
            else:  # bit for bit, NaN where the full run has NaN
                assert np.array_equal(value, full[col], equal_nan=True), (t, col, every)


@pytest.mark.parametrize("agent", [0, 1])
def test_every_one_measures_every_step(agent):
    """The default cadence gives a value (not NaN) of every topics column at every step."""
    rows = _rows(1, agent)
    for row in rows:
        assert not any(np.isnan(row[c]) for c in ("echo/interest_entropy", "echo/filter_bubble"))


def test_only_stateless_groups_are_cadenced():
    """Cadenced groups are sharded (stateless partials) so skipping a step loses nothing."""
    cadenced = [n for n in registry.names("metrics") if registry.resolve("metrics", n).cadenced]
    assert "topics" in cadenced
    for name in cadenced:
        assert registry.resolve("metrics", name).sharded(), name


@pytest.mark.parametrize("every", [2, 4])
def test_shards_skip_the_partials_of_a_group_between_its_steps(every):
    """A user shard computes no topics partial off its steps, and one on them."""
    sc = make_small(f"measures.every={every}", steps=STEPS, metrics=METRICS)
    world = World(sc, 1, seed=2)
    (lo, hi), *_ = shard_bounds(population_size(sc), 2)
    shard = UserShard(ShardSpec.of(sc, 2), lo, hi)
    for t in range(6):
        world.content.step(t, None)
        catalog = world.content.catalog(False)
        content = StepContent(catalog, world.content.latent(), world.content.new_item_sources())
        ids = shard.arrive(t, live=catalog.item_ids).user_ids
        slates = np.tile(catalog.item_ids[:5], (ids.size, 1))
        parts = shard.respond(t, ids, slates, content)[3]
        assert ("topics" in parts) == (t % every == 0), t
        assert "diversity" in parts


@pytest.mark.parametrize("value", [0, -3, 1.5, "x", 2_000_000])
def test_a_bad_cadence_is_refused_naming_the_field(value):
    """measures.every must be a positive int: the error names the field and the value."""
    with pytest.raises(ScenarioError, match=r"measures\.every"):
        make_small(("measures.every", value))


@pytest.mark.parametrize("steps", [1, 5, 12, 1001])
@pytest.mark.parametrize("every", [None, 0, 1, 2, 3, 7, 400])
def test_due_is_multiples_of_every_and_the_last_step_only(every, steps):
    """``due(t)`` by hand for t up to past the run.

    Never after the last step unless a multiple; a context without ``measure_every`` (or
    with 0) measures every step.
    """
    from types import SimpleNamespace

    ctx = SimpleNamespace(seed=0, num_users=3, steps=steps)
    if every is not None:
        ctx.measure_every = every
    metric = TopicMetric.__new__(TopicMetric)
    metric.ctx = ctx
    n = every or 1
    for t in range(steps + 10):
        assert metric.due(t) == (n <= 1 or t % n == 0 or t == steps - 1), (t, every)
