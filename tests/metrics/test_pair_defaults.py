"""The pair samples of the homogenization measures: one default everywhere, sizes per population.

``measures.pairwise_pairs`` has a default in the scenario schema, in the world context and
in each metric (for contexts built by hand): they must agree, and the number of pairs and
anchors follows ``min(cap, n (n - 1) / 2)`` and ``min(cap, n)`` for every population size.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from simlab.metrics.echo import HomogenizationMetric
from simlab.metrics.homogenization_nn import NNHomogenizationMetric
from simlab.scenario_sections import MeasuresSection
from simlab.world_context import WorldContext


def test_the_three_defaults_agree():
    """Schema, world context and metric fallback: the same number of pairs."""
    schema = MeasuresSection().pairwise_pairs
    context = WorldContext.__dataclass_fields__["pairwise_pairs"].default
    assert schema == context == HomogenizationMetric.max_pairs == 2000


@pytest.mark.parametrize("n", [1, 2, 3, 10, 63, 64, 65, 100, 2000, 2001, 5000])
def test_pairs_and_anchors_without_a_setting_follow_the_default_cap(n):
    """A context without ``pairwise_pairs``: pairs min(2000, n(n-1)/2), anchors min(2000, n)."""
    ctx = SimpleNamespace(seed=n, num_users=n)
    m = HomogenizationMetric(ctx)
    assert m.pair_a.shape == m.pair_b.shape == (min(2000, n * (n - 1) // 2),)
    assert (m.pair_a != m.pair_b).all()
    nn = NNHomogenizationMetric(ctx)
    assert nn.anchors.shape == (min(2000, n),)
    assert len(set(nn.anchors.tolist())) == nn.anchors.shape[0]


@pytest.mark.parametrize(("n", "cap"), [(5, 3), (5, 10), (40, 7), (300, 299), (300, 300)])
def test_a_setting_caps_pairs_and_anchors(n, cap):
    """``pairwise_pairs`` set: the same rule with that cap."""
    ctx = SimpleNamespace(seed=1, num_users=n, pairwise_pairs=cap)
    assert HomogenizationMetric(ctx).pair_a.shape == (min(cap, n * (n - 1) // 2),)
    assert NNHomogenizationMetric(ctx).anchors.shape == (min(cap, n),)


def test_the_pair_sample_is_pinned():
    """Seed 0's 8 pairs among 50 users are pinned (a change of their stream is deliberate)."""
    from test_homogenization_nn import _ctx

    m = HomogenizationMetric(_ctx(50, pairs=8))
    assert m.pair_a.tolist() == [28, 38, 21, 44, 36, 33, 11, 30]
    assert m.pair_b.tolist() == [16, 39, 0, 12, 19, 15, 48, 15]


def test_pairwise_jaccard_counts_every_consumption_including_user_0s_item_0():
    """The incremental sets give the reference Jaccard, from the first step on.

    User 0 consuming item 0 (key 0) is a consumption like any other.
    """
    from test_homogenization_nn import _ctx, _snap

    from simlab.metrics.echo import jaccard_pairs

    m = HomogenizationMetric(_ctx(4, pairs=6))
    steps = [[0, 0, 5, None], [3, 0, 0, 0], [None, 7, 3, 0]]
    sets = [set() for _ in range(4)]
    for t, clicks in enumerate(steps):
        for u, c in enumerate(clicks):
            if c is not None:
                sets[u].add(c)
        got = m.measure(_snap(t, clicks, 4))["echo/homogenization"]
        want = jaccard_pairs([sets[a] for a in m.pair_a], [sets[b] for b in m.pair_b]).mean()
        assert got == pytest.approx(want, rel=1e-12), t


@pytest.mark.parametrize("n", [2, 3, 9])
def test_a_context_without_a_cadence_measures_every_step(n):
    """No ``pairwise_every`` (a hand-built context): both measures are taken at every step."""
    import numpy as np
    from test_homogenization_nn import _snap

    ctx = SimpleNamespace(seed=n, num_users=n)
    pairs, nn = HomogenizationMetric(ctx), NNHomogenizationMetric(ctx)
    interests = np.random.default_rng(n).normal(size=(n, 2))
    for t in range(4):
        snap = _snap(t, [t] * n, n, interests=interests)  # everyone consumes item t
        assert pairs.measure(snap)["echo/homogenization"] == 1.0, t
        assert nn.measure(snap)["echo/homogenization_nn"] == 1.0, t
