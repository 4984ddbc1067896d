"""Every sharded metric reduces to the same bits whether the users are one shard or many.

The Ray backend gives each user shard actor a contiguous range of users; the metrics'
partial sums are made on the shards and reduced (``docs/metrics.md``). Here several
:class:`UserShard` objects in one process stand in for the actors (they wrap the same class)
and every metric's reduced row is compared, bit for bit, with the one-population row, over
world sizes and splits that send BLAS products of different row counts down different
kernels (a 150-user world split 75/75 differed in the last bits of the topic measures).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_small

from simlab.batch import Slates
from simlab.metrics.base import StepSnapshot
from simlab.population import LocalPopulation, ShardSpec, StepContent, UserShard, population_size
from simlab.world import World

_ALL = ["creators", "diversity", "drift", "engagement", "exposure", "homogenization",
        "item_fairness", "source", "topics"]  # fmt: skip
_CHANEY = (
    ("users", {"model": "chaney", "num_users": 300}),
    ("content", {"model": "chaney-items", "items_per_step": 10}),
    "platform.slate_size=0",
    "platform.exclude_consumed=true",
    ("metrics", ["engagement", "homogenization", "topics", "drift", "diversity"]),
)
WORLDS = {
    # the quickstart's dimensions at 150 users (where the Ray docs audit saw the difference)
    "logit-150-d32": ("users.drift_rate=0.02", "platform.slate_size=10", "world.dim=32",
                      "world.num_topics=16", ("users.num_users", 150), ("metrics", _ALL)),
    "logit-300-d8": ("users.drift_rate=0.1", "users.fatigue_weight=0.3", "world.dim=8",
                     "platform.slate_size=10",
                     ("users.num_users", 300), ("metrics", _ALL)),
    "chaney-300": _CHANEY,
}  # fmt: skip


def _splits(n: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    fixed = [[1], [n // 2], [n // 3, 2 * n // 3], [64], [n - 3]]
    drawn = [sorted(set(rng.integers(1, n, size=rng.integers(1, 6)).tolist())) for _ in range(3)]
    return fixed + drawn


def _content(world: World, t: int) -> StepContent:
    world.content.step(t, None)
    return StepContent(
        world.content.catalog(False), world.content.latent(), world.content.new_item_sources()
    )


def _value(x: float) -> tuple:
    return ("nan",) if x != x else (x,)


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_every_sharded_metric_gives_the_same_bits_for_any_split(name):
    """8 steps of random slates; each split's reduced row equals the whole population's."""
    sc = make_small(*WORLDS[name])
    n = population_size(sc)
    for cuts in _splits(n, seed=len(name)):
        world = World(sc, 0, seed=5)
        whole = LocalPopulation(sc, 5)
        bounds = list(zip([0, *cuts], [*cuts, n], strict=True))
        shards = [UserShard(ShardSpec.of(sc, 5), lo, hi) for lo, hi in bounds]
        compared = set()
        for t in range(8):
            content = _content(world, t)
            ids = whole.arrive(t, content)[0]
            live = content.catalog.item_ids
            for shard in shards:
                shard.arrive(t, live=live)
            rng = np.random.default_rng(t)
            k = min(10, live.size)
            slates = np.stack([rng.choice(live, k, replace=False) for _ in range(ids.size)])
            fb, parts, counts = whole.respond(t, Slates(ids, slates), content)
            pieces = []
            for shard, (lo, hi) in zip(shards, bounds, strict=True):
                mine = (ids >= lo) & (ids < hi)
                pieces.append(shard.respond(t, ids[mine], slates[mine], content)[3])
            snap = StepSnapshot(
                step=t, num_users=n, feedback=fb, catalog=content.catalog, items=content.items,
                new_item_sources=content.new_item_sources, interest_source=whole.interests,
                exposure=counts,
                creators=world.content.creators() if hasattr(world.content, "creators") else None,
            )  # fmt: skip
            for metric_name, metric in whole.shard.metrics.items():
                if metric_name not in parts:
                    continue
                one = metric.reduce(parts[metric_name], snap)
                split = metric.reduce([p[metric_name] for p in pieces], snap)
                assert {c: _value(v) for c, v in one.items()} == {
                    c: _value(v) for c, v in split.items()
                }, (name, cuts, t, metric_name)
                compared.add(metric_name)
        assert compared >= {"topics", "drift", "diversity"}, compared
