"""User shards: a sharded population behaves like one, and sharded metrics reduce exactly.

These run in one process: several :class:`UserShard` objects over contiguous id ranges
stand in for the Ray shard actors, which wrap the same class.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_small

from simlab.batch import Slates
from simlab.errors import AgentContractError, ScenarioError
from simlab.metrics.base import StepSnapshot
from simlab.metrics.echo import DiversityMetric, InterestDriftMetric
from simlab.population import (
    LocalPopulation,
    ShardSpec,
    StepContent,
    UserShard,
    concat_states,
    join_csr,
    population_size,
    shard_bounds,
    split_state,
)
from simlab.world import World


def test_shard_bounds_cover_the_population_evenly():
    """Contiguous, non-overlapping ranges covering every id; never more shards than users."""
    assert shard_bounds(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert shard_bounds(2, 4) == [(0, 1), (1, 2)]
    for n, k in [(1000, 1), (1000, 7), (5, 5)]:
        b = shard_bounds(n, k)
        assert b[0][0] == 0 and b[-1][1] == n
        assert all(hi == lo for (_, hi), (lo, _) in zip(b[:-1], b[1:], strict=True))
        sizes = [hi - lo for lo, hi in b]
        assert max(sizes) - min(sizes) <= 1


def _step_content(world: World, t: int) -> StepContent:
    world.content.step(t, None)
    catalog = world.content.catalog(False)
    return StepContent(catalog, world.content.latent(), world.content.new_item_sources())


@pytest.mark.parametrize("exclude", [False, True])
def test_shards_respond_like_the_whole_population(exclude):
    """Three shards give the same arrivals, features, clicks and state as one population.

    With no repeat consumption, also the same consumed items at arrival.
    """
    sc = make_small(
        "users.drift_rate=0.1",
        "users.fatigue_weight=0.3",
        "platform.history_length=4",
        f"platform.exclude_consumed={str(exclude).lower()}",
    )
    world = World(sc, 1, seed=5)
    whole = LocalPopulation(sc, 5)
    spec = ShardSpec.of(sc, 5)
    shards = [UserShard(spec, lo, hi) for lo, hi in shard_bounds(population_size(sc), 3)]
    for t in range(4):
        content = _step_content(world, t)
        ids, feats, hist, consumed = whole.arrive(t, content)
        live = content.catalog.item_ids
        parts = [s.arrive(t, live=live) for s in shards]
        np.testing.assert_array_equal(ids, np.concatenate([p[0] for p in parts]))
        np.testing.assert_array_equal(feats, np.concatenate([p[1] for p in parts]))
        np.testing.assert_array_equal(hist, np.concatenate([p[2] for p in parts]))
        joined = join_csr([p.consumed for p in parts])
        if exclude:
            np.testing.assert_array_equal(consumed[0], joined[0])
            np.testing.assert_array_equal(consumed[1], joined[1])
            assert t == 0 or consumed[1].size > 0
        else:
            assert consumed is None and joined is None
        items = content.catalog.item_ids[:5]
        slates = Slates(ids, np.broadcast_to(items, (ids.shape[0], 5)))
        fb, _, counts = whole.respond(t, slates, content)
        clicked, exposure = [], 0
        for s, (lo, hi) in zip(shards, shard_bounds(population_size(sc), 3), strict=True):
            mine = (ids >= lo) & (ids < hi)
            cp, _, ex, _ = s.respond(t, ids[mine], slates.item_ids[mine], content)
            clicked.append(cp)
            exposure = exposure + ex
        np.testing.assert_array_equal(fb.clicked_pos, np.concatenate(clicked))
        np.testing.assert_array_equal(counts, exposure)
    state = concat_states([s.state_dict() for s in shards])
    for key, value in whole.state_dict().items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)


def test_state_re_splits_over_another_shard_count():
    """A population's state split over 4 shards and joined again is unchanged."""
    sc = make_small()
    pop = LocalPopulation(sc, 0)
    state = pop.state_dict()
    bounds = shard_bounds(population_size(sc), 4)
    shards = [UserShard(ShardSpec.of(sc, 0), lo, hi) for lo, hi in bounds]
    for shard, part in zip(shards, split_state(state, bounds), strict=True):
        shard.load_state_dict(part)
    joined = concat_states([s.state_dict() for s in shards])
    assert joined.keys() == state.keys()
    for k in state:
        np.testing.assert_array_equal(joined[k], state[k])
    with pytest.raises(ValueError, match="Expects user state `interest` of shape"):
        shards[0].load_state_dict(split_state(state, shard_bounds(population_size(sc), 2))[0])


def test_slate_contract_is_checked_on_the_user_side():
    """Items outside the catalog, duplicates and items outside per-user candidates fail."""
    sc = make_small()
    world = World(sc, 0, 0)
    content = _step_content(world, 0)
    shard = UserShard(ShardSpec.of(sc, 0), 0, population_size(sc))
    ids = np.array([0, 1])
    live = content.catalog.item_ids
    with pytest.raises(AgentContractError, match="agent 'x' returned item ids not in the live"):
        shard.respond(0, ids, np.array([[live[0], 10**9]] * 2), content, who="agent 'x'")
    with pytest.raises(AgentContractError, match="duplicate item"):
        shard.respond(0, ids, np.array([[live[0], live[0]]] * 2), content)
    cands = np.array([[live[0], live[1]], [live[2], live[3]]])
    with pytest.raises(AgentContractError, match=f"item {live[0]} for user 1, which is not"):
        shard.respond(0, ids, np.array([[live[0], live[1]]] * 2), content, candidates=cands)


def _snapshot(interests, initial, latent, slates):
    from types import SimpleNamespace

    from simlab.batch import Feedback

    b = slates.shape[0]
    fb = Feedback(0, np.arange(b), slates, np.full(b, -1), np.zeros(b, np.float32))
    items = SimpleNamespace(latent=latent)
    return StepSnapshot(
        0, interests.shape[0], fb, None, items, np.zeros(0), interests, initial, slate_rows=slates
    )


def test_sharded_metrics_reduce_to_the_whole_population_value():
    """Drift and diversity from per-shard partials equal the hand-computed whole value."""
    interests = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
    initial = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], np.float32)
    latent = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], np.float32)
    slates = np.array([[0, 1], [0, 2], [1, 2]])
    # by hand: drift = (0 + sqrt(2) + sqrt(0.16 + 0.64)) / 3; diversity = 1 - mean cos
    # of the slates' pairs: cos(0,1)=0, cos(0,2)=1, cos(1,2)=0 -> 1 - 1/3
    drift = (0 + np.sqrt(2) + np.sqrt(0.8)) / 3
    for metric, column, expected in [
        (InterestDriftMetric(None), "echo/interest_drift", drift),
        (DiversityMetric(None), "diversity/intra_list", 2 / 3),
    ]:
        whole = metric.measure(_snapshot(interests, initial, latent, slates))[column]
        parts = [
            metric.partial(_snapshot(interests[s], initial[s], latent, slates[s]))
            for s in (slice(0, 1), slice(1, 3))
        ]
        split = metric.reduce(parts, None)[column]
        assert whole == pytest.approx(expected, rel=1e-6)
        assert split == whole  # the same bits, however the users are split


def test_population_size_must_be_declared():
    """A user model without ``num_users`` cannot be sharded: a clear error."""
    sc = make_small()
    object.__setattr__(sc.users, "_params", sc.users.params.model_copy(update={"num_users": 0}))
    with pytest.raises(ScenarioError, match="declares no positive `num_users`"):
        population_size(sc)


def test_shared_slates_give_the_partials_of_their_copies():
    """A broadcast slate gives the responses, exposure and sharded partials of its copies."""
    sc = make_small("users.drift_rate=0.1")
    world = World(sc, 0, seed=3)
    pops = [LocalPopulation(sc, 3), LocalPopulation(sc, 3)]
    rng = np.random.default_rng(1)
    for t in range(3):
        content = _step_content(world, t)
        ids = pops[0].arrive(t, content)[0]
        pops[1].arrive(t, content)
        slate = rng.choice(content.catalog.item_ids, 5, replace=False)
        shared = Slates(ids, np.broadcast_to(slate, (ids.size, 5)))
        copied = Slates(ids, np.tile(slate, (ids.size, 1)))
        (fa, pa, ca), (fb, pb, cb) = (
            pops[0].respond(t, shared, content),
            pops[1].respond(t, copied, content),
        )
        np.testing.assert_array_equal(fa.clicked_pos, fb.clicked_pos)
        np.testing.assert_array_equal(ca, cb)
        assert pa.keys() == pb.keys() and pa
        for name in pa:
            for key, value in pa[name][0].items():
                np.testing.assert_array_equal(value, pb[name][0][key], err_msg=f"{name}/{key}")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dim", [2, 8, 32])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sharded_drift_and_diversity_are_the_same_bits_for_any_split(seed, dim, dtype):
    """Random unit interests and slates, split at random places: the row is bit-identical."""
    from simlab.batch import Feedback

    rng = np.random.default_rng(seed)
    n, k = 300, 4
    unit = lambda a: (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(dtype)  # noqa: E731
    interests, initial = unit(rng.standard_normal((n, dim))), unit(rng.standard_normal((n, dim)))
    latent = unit(rng.standard_normal((50, dim)))
    slates = np.stack([rng.choice(50, k, replace=False) for _ in range(n)])

    def snap(s: slice) -> StepSnapshot:
        b = slates[s].shape[0]
        fb = Feedback(0, np.arange(n)[s], slates[s], np.full(b, -1), np.zeros(b, np.float32))
        items = SimpleNamespace(latent=latent)
        return StepSnapshot(0, n, fb, None, items, np.zeros(0), interests[s], initial[s],
                            slate_rows=slates[s])  # fmt: skip

    for metric in (InterestDriftMetric(None), DiversityMetric(None)):
        whole = metric.reduce([metric.partial(snap(slice(0, n)))], None)
        for _ in range(4):
            cuts = np.sort(rng.integers(0, n + 1, size=rng.integers(1, 5)))
            edges = [0, *cuts.tolist(), n]
            pieces = zip(edges[:-1], edges[1:], strict=True)
            parts = [metric.partial(snap(slice(a, b))) for a, b in pieces]
            assert metric.reduce(parts, None) == whole, (type(metric).__name__, edges)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dim", [2, 8, 32])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sharded_topic_measures_are_the_same_bits_for_any_split(seed, dim, dtype):
    """Entropy, both calibration KLs and the filter bubble: bit-identical for any split.

    The topic mixes multiply interests by the topic centres; a BLAS product's last bits
    depend on how many rows it is given (a shard of 75 users and the population of 150 took
    different kernels), so the product is made exact (see ``topic_mix``).
    """
    from simlab.batch import Feedback
    from simlab.metrics.topics import TopicMetric

    rng = np.random.default_rng(seed)
    n, k, topics = 300, 4, 6
    unit = lambda a: (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(dtype)  # noqa: E731
    interests, initial = unit(rng.standard_normal((n, dim))), unit(rng.standard_normal((n, dim)))
    items = SimpleNamespace(latent=unit(rng.standard_normal((50, dim))),
                            topic=rng.integers(0, topics, 50))  # fmt: skip
    slates = np.stack([rng.choice(50, k, replace=False) for _ in range(n)])
    history = np.where(rng.random((n, 5)) < 0.8, rng.integers(0, topics, (n, 5)), -1)

    def part(a: int, b: int) -> dict:
        fb = Feedback(0, np.arange(a, b), slates[a:b], np.full(b - a, -1),
                      np.zeros(b - a, np.float32))  # fmt: skip
        snap = StepSnapshot(0, n, fb, None, items, np.zeros(0), interests[a:b], initial[a:b],
                            slate_rows=slates[a:b], history_topics=history[a:b])  # fmt: skip
        metric = TopicMetric(SimpleNamespace(user_range=(a, b), num_topics=topics))
        return metric.partial(snap)

    metric = TopicMetric(SimpleNamespace(user_range=(0, n), num_topics=topics))
    whole = metric.reduce([part(0, n)], None)
    assert all(np.isfinite(v) for v in whole.values()), whole
    for cuts in ([1], [2, 3], [75, 150, 225], [150], [64, 128], *(
        sorted(rng.integers(1, n, size=rng.integers(1, 5)).tolist()) for _ in range(4)
    )):  # fmt: skip
        edges = [0, *cuts, n]
        parts = [part(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        assert metric.reduce(parts, None) == whole, edges
