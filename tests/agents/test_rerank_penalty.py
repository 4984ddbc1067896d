"""The popularity-penalty re-ranker against its formula, per user and per catalog.

``score = -j / L - weight * exposure / max exposure``, the maximum over the live catalog:
its rule by a loop over each row, a row re-ranked alone equal to its row of the batch, and
the scale set by the most exposed live item (listed or not), never by a retired one.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_rerank_references import SEEDS, build, observation, random_case, shown

from simlab.agents.rerank import PopularityPenaltyReranker


@pytest.mark.parametrize("weight", [0.0, 0.3, 2.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_popularity_penalty_equals_its_formula(seed, weight):
    """Sort by ``-j / L - weight * exposure / max exposure`` (stable: rank breaks ties).

    The maximum is over the live catalog, listed or not.
    """
    _, feats, ranked, impressions = random_case(seed)
    rr = build(PopularityPenaltyReranker, 4, weight=weight)
    np.testing.assert_array_equal(rr.rerank(observation(feats, ranked), ranked), ranked)
    rr.update(shown(impressions))
    counts = np.bincount(impressions.ravel(), minlength=feats.shape[0]).astype(float)
    top = counts.max()
    length = ranked.shape[1]
    got = rr.rerank(observation(feats, ranked), ranked)
    for row, r in zip(got, ranked, strict=True):
        score = [-j / length - weight * counts[r[j]] / top for j in range(length)]
        order = sorted(range(length), key=lambda j: (-score[j], j))
        np.testing.assert_array_equal(row, r[order])


@pytest.mark.parametrize("seed", SEEDS)
def test_popularity_penalty_of_a_user_ignores_who_else_is_served(seed):
    """Each row re-ranked alone equals its row of the batch (the maximum is the catalog's)."""
    _, feats, ranked, impressions = random_case(seed)
    rr = build(PopularityPenaltyReranker, 4, weight=1.5)
    rr.update(shown(impressions))
    whole = rr.rerank(observation(feats, ranked), ranked)
    for b in range(ranked.shape[0]):
        alone = rr.rerank(observation(feats, ranked[b : b + 1]), ranked[b : b + 1])
        np.testing.assert_array_equal(alone[0], whole[b])


def test_popularity_penalty_scales_by_the_live_catalogs_most_exposed_item():
    """The most exposed live item sets the scale even unlisted; a retired item's does not."""
    feats = np.zeros((6, 2))
    ranked = np.array([[0, 1, 2, 3]], np.int64)
    rr = build(PopularityPenaltyReranker, 4, weight=1.0)
    rr.update(shown([[0] * 1 + [4] * 3, [5] * 4, [5] * 4, [5] * 4]))  # 0: 1, 4: 3, 5: 12
    # items 0-4 live: scale 3 (item 4); item 0's penalty 1/3 > the 1/4 between ranks
    got = rr.rerank(observation(feats[:5], ranked), ranked)
    np.testing.assert_array_equal(got, [[1, 0, 2, 3]])  # a listed-only scale (1) gives 1, 2, 3, 0
    # item 5 live too: scale 12, item 0's penalty 1/12 < 1/4: the agent's order stands
    got = rr.rerank(observation(feats, ranked), ranked)
    np.testing.assert_array_equal(got, [[0, 1, 2, 3]])
