"""The social graph against loop references: the random kind's keyed draws, stored entries, sizes.

The covariance and knn kinds are checked against the covariance matrix in ``test_chaney.py``;
here the random kind is rebuilt user by user from its keyed stream, every kind's sparse
matrix is checked to store exactly its links (no explicit zeros, no diagonal), and the size
limits are checked at their edges.
"""

from __future__ import annotations

import numpy as np
import pytest

from simlab.environments.social_graph import MAX_DENSE_USERS, SocialGraphParams, social_graph
from simlab.rng import Stream


def prefs(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 6)`` preference vectors on the simplex."""
    return np.random.default_rng(seed).dirichlet(np.full(6, 0.4), size=n)


def random_reference(n: int, k: int, seed: int) -> np.ndarray:
    """``(n, n)`` 0/1: user ``u`` draws ``k`` of the other users (skipping itself), symmetric."""
    adj = np.zeros((n, n))
    for u in range(n):
        for j in range(k):
            u01 = Stream(seed, "users/social_graph").uniform([u], 0, size=k)[0, j]
            d = min(int(u01 * (n - 1)), n - 2)  # uniform on the n - 1 others
            v = d if d < u else d + 1
            adj[u, v] = adj[v, u] = 1.0
    return adj


@pytest.mark.parametrize(("n", "k", "seed"), [(2, 1, 0), (3, 2, 1), (12, 3, 7), (40, 5, 2)])
def test_random_graph_is_each_users_keyed_draws_among_the_others(n, k, seed):
    """Each user's ``k`` draws index the other users in id order; links are made symmetric."""
    adj = social_graph(SocialGraphParams(kind="random", neighbours=k), prefs(n), seed)
    np.testing.assert_array_equal(adj.toarray(), random_reference(n, k, seed))


@pytest.mark.parametrize(("kind", "k"), [("covariance", 1), ("knn", 1), ("knn", 4), ("random", 3)])
@pytest.mark.parametrize("n", [2, 9, 30])
def test_the_matrix_stores_exactly_the_links(kind, k, n):
    """CSR, float64, every stored value 1, none on the diagonal: ``nnz`` counts the links."""
    k = min(k, n - 1)
    adj = social_graph(SocialGraphParams(kind=kind, neighbours=k), prefs(n, n), 4)
    assert adj.format == "csr" and adj.shape == (n, n) and adj.dtype == np.float64
    dense = adj.toarray()
    assert adj.nnz == int((dense != 0).sum())
    assert (adj.data == 1.0).all()
    rows = np.repeat(np.arange(n), np.diff(adj.indptr))
    assert not (rows == adj.indices).any()  # no stored diagonal entry, zero or not
    np.testing.assert_array_equal(dense, dense.T)
    # random draws are with replacement: a repeated draw gives one friend fewer
    assert (dense.sum(axis=1) >= (1 if kind == "random" else k)).all()


@pytest.mark.parametrize("kind", ["covariance", "knn"])
def test_dense_kinds_accept_exactly_up_to_the_limit(kind):
    """The dense kinds take ``MAX_DENSE_USERS`` users and refuse one more; random takes more."""
    SocialGraphParams(kind=kind).check_size(MAX_DENSE_USERS)
    with pytest.raises(ValueError, match=f"kind '{kind}' builds a dense 20001 x 20001"):
        SocialGraphParams(kind=kind).check_size(MAX_DENSE_USERS + 1)
    SocialGraphParams(kind="random").check_size(MAX_DENSE_USERS + 1)


@pytest.mark.parametrize("kind", ["knn", "random"])
@pytest.mark.parametrize("n", [2, 3, 7])
def test_neighbours_up_to_everyone_else_are_accepted(kind, n):
    """``neighbours = num_users - 1`` links everyone (knn) and is the largest accepted."""
    params = SocialGraphParams(kind=kind, neighbours=n - 1)
    params.check_size(n)
    adj = social_graph(params, prefs(n), 5).toarray()
    if kind == "knn":
        np.testing.assert_array_equal(adj, 1.0 - np.eye(n))
    with pytest.raises(ValueError, match=rf"neighbours: {n} must be below num_users \({n}\)"):
        SocialGraphParams(kind=kind, neighbours=n).check_size(n)
    SocialGraphParams(kind="covariance", neighbours=n).check_size(n)  # covariance ignores it


def test_defaults_are_the_documented_ones():
    """``covariance`` (T-RECS's rule for Chaney) and 5 neighbours for the other kinds."""
    assert SocialGraphParams().model_dump() == {"kind": "covariance", "neighbours": 5}


@pytest.mark.parametrize("kind", ["covariance", "knn"])
@pytest.mark.parametrize("n", [2, 5, 30])
def test_covariance_kinds_need_two_attributes(kind, n):
    """One attribute leaves every covariance undefined: refused, at validate time too.

    Two attributes are enough (every user gets a friend); ``random`` needs none.
    """
    params = SocialGraphParams(kind=kind, neighbours=1)
    with pytest.raises(ValueError, match=rf"kind '{kind}' .* at least 2 \(world.dim is 1\)"):
        params.check_size(n, 1)
    with pytest.raises(ValueError, match="at least 2"):
        social_graph(params, np.ones((n, 1)), 0)
    two = np.random.default_rng(n).dirichlet([1.0, 1.0], size=n)
    assert (social_graph(params, two, 0).sum(axis=1) >= 1).all()
    assert (social_graph(SocialGraphParams(kind="random", neighbours=1), np.ones((n, 1)), 0)
            .sum(axis=1) >= 1).all()  # fmt: skip

    from conftest import make_small

    from simlab.errors import ScenarioError

    chaney = {"model": "chaney", "num_users": n, "social_graph": {"kind": kind, "neighbours": 1}}
    with pytest.raises(ScenarioError, match=r"users.social_graph: .*\(world.dim is 1\)"):
        make_small(
            "world.dim=1",
            "world.num_topics=1",
            users=chaney,
            content={"model": "chaney-items"},
            agents=[{"model": "social-filtering"}],
        )
