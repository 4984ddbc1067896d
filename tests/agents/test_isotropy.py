"""The isotropy map's edge cases and the re-ranker's contract with the agent's scorer.

Classes (the map on a real catalog is tested in ``test_source_controls.py``):

* tiny catalogs: one item has no principal direction (the map only centres), two items have
  one (their difference), and no more directions are removed than the centred catalog
  spans (N - 1), none outside its span;
* ``components: 0`` centres without computing an SVD;
* the re-ranker: without a scorer, or over a catalog of one item, the agent's lists are
  returned as they are and nothing is scored; otherwise each list is sorted by the scores the
  agent gives through the catalog's isotropy map, best first, ties in the agent's order.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from test_bandits import make_catalog, make_obs

from simlab.agents.isotropy import IsotropyReranker, isotropy_map


def test_default_and_bounds():
    """One component by default; 0 and 64 accepted, -1 and 65 refused naming the field."""
    assert IsotropyReranker.Params().components == 1
    for ok in (0, 64):
        assert IsotropyReranker.Params(components=ok).components == ok
    for bad in (-1, 65):
        with pytest.raises(ValidationError, match="components"):
            IsotropyReranker.Params(components=bad)


@pytest.mark.parametrize("components", [0, 1, 3])
def test_one_item_is_only_centred(components):
    """A catalog of one item has no spread: the map is ``f - mu`` for any f, in float32."""
    g = np.random.default_rng(0)
    item = g.normal(size=(1, 5))
    x = g.normal(size=(7, 5))
    got = isotropy_map(item, components)(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, (x - item).astype(np.float32))


def test_two_items_have_one_direction_their_difference():
    """With two items the top direction is ``a - b``: both map to 0, others lose that part."""
    g = np.random.default_rng(1)
    a, b = g.normal(size=5), g.normal(size=5)
    x = g.normal(size=(6, 5))
    t = isotropy_map(np.stack([a, b]), 1)
    np.testing.assert_allclose(t(np.stack([a, b])), 0.0, atol=1e-6)
    e = (a - b) / np.linalg.norm(a - b)
    c = x - (a + b) / 2
    np.testing.assert_allclose(t(x), c - np.outer(c @ e, e), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("n", "components"), [(2, 3), (3, 5), (4, 6), (5, 4), (8, 2), (7, 6)])
def test_only_directions_the_centred_items_span_are_removed(n, components):
    """``min(components, N - 1)`` directions of the 6-d space go, all within the items' span.

    N centred items span N - 1 directions; asking for more must not remove an arbitrary
    direction of the null space (which LAPACK picks, and which would change the scores of
    features outside the catalog's span).
    """
    g = np.random.default_rng(n)
    feats = g.normal(size=(n, 6))
    t = isotropy_map(feats, components)
    mu = t(np.zeros((1, 6))).astype(np.float64)  # the map of 0 is -(I - U U^T) mu
    linear = t(np.eye(6)).astype(np.float64) - mu  # (I - U U^T): the projection, row by row
    assert np.linalg.matrix_rank(linear, tol=1e-4) == 6 - min(components, n - 1)
    # a direction orthogonal to every centred item is kept whole
    span = np.linalg.qr((feats - feats.mean(axis=0)).T)[0][:, : n - 1]  # (6, N - 1)
    x = g.normal(size=(4, 6))
    ortho = x - (x @ span) @ span.T
    np.testing.assert_allclose(ortho @ linear, ortho, atol=1e-5)


def test_no_component_centres_without_an_svd(monkeypatch):
    """``components: 0`` is centring only, and computes no SVD of the catalog."""
    g = np.random.default_rng(2)
    feats, x = g.normal(size=(30, 4)), g.normal(size=(5, 4))

    def no_svd(*args, **kwargs):
        raise AssertionError("an SVD was computed for components=0")

    monkeypatch.setattr(np.linalg, "svd", no_svd)
    got = isotropy_map(feats, 0)(x)
    np.testing.assert_allclose(got, x - feats.mean(axis=0), rtol=1e-6, atol=1e-6)


class _Scorer:
    """Stands for the agent's ``score(obs, item_ids, features, transform)``; records its calls."""

    def __init__(self, scores: dict[int, float]) -> None:
        self.scores, self.calls = scores, []

    def __call__(self, obs, item_ids, features, transform):
        self.calls.append((item_ids.copy(), features, transform))
        return np.vectorize(self.scores.get)(item_ids)


def _reranker(scorer=None, components: int = 1) -> IsotropyReranker:
    rr = IsotropyReranker(IsotropyReranker.Params(components=components), None)
    if scorer is not None:
        rr.bind_scorer(scorer)
    return rr


def test_without_a_scorer_or_with_one_item_the_lists_stay():
    """No scorer bound, or a one-item catalog: the agent's lists, nothing scored."""
    g = np.random.default_rng(3)
    cat = make_catalog(np.arange(5), g.normal(size=(5, 3)))
    ranked = np.array([[3, 1, 4], [0, 2, 1]])
    obs = make_obs(cat, [0, 1], np.zeros((2, 3)), 0)
    np.testing.assert_array_equal(_reranker().rerank(obs, ranked), ranked)
    scorer = _Scorer({7: 1.0})
    one = make_obs(make_catalog([7], np.ones((1, 3))), [0, 1], np.zeros((2, 3)), 0)
    np.testing.assert_array_equal(_reranker(scorer).rerank(one, np.array([[7], [7]])), [[7], [7]])
    assert scorer.calls == []


@pytest.mark.parametrize("components", [0, 1, 2])
@pytest.mark.parametrize("n", [2, 6])
def test_lists_are_sorted_by_the_scores_on_isotropic_features(components, n):
    """Scores come from the agent with the catalog's isotropy map; best first, ties stay."""
    g = np.random.default_rng(n + components)
    cat = make_catalog(np.arange(n) * 2 + 10, g.normal(size=(n, 4)))
    values = {int(i): float(v) for i, v in zip(cat.item_ids, g.permutation(n) % 4, strict=True)}
    scorer = _Scorer(values)
    ranked = np.stack([g.permutation(cat.item_ids) for _ in range(5)])
    obs = make_obs(cat, np.arange(5), np.zeros((5, 4)), 0)
    got = _reranker(scorer, components).rerank(obs, ranked)
    (items, features, transform), *more = scorer.calls
    assert more == [] and features is None
    np.testing.assert_array_equal(items, ranked)
    x = g.normal(size=(3, 4))
    want_map = isotropy_map(cat.features, components)(x)
    np.testing.assert_array_equal(transform(x), want_map)
    for row, out in zip(ranked, got, strict=True):
        want = sorted(row.tolist(), key=lambda i: -values[i])  # sorted() is stable
        assert out.tolist() == want
