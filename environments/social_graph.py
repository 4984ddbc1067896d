"""The users' social network, for social filtering (Chaney et al., RecSys 2018).

A graph is drawn once per trial from the users' preference vectors (a homophilous network:
users with similar tastes are friends) or at random (a control without homophily), and is
returned as a symmetric ``(num_users, num_users)`` 0/1 ``scipy.sparse`` matrix with an empty
diagonal. Kinds (``users.social_graph.kind``):

- ``covariance`` (default): ``u`` and ``v`` are linked when the covariance of their
  preference vectors (over attributes, ``numpy.cov``) is at least ``c*``, the largest
  threshold at which every user still has a friend: ``c* = min_u max_{v != u} cov(u, v)``.
  This is the rule of T-RECS's replication of Chaney et al. except that T-RECS counts a
  user's own variance (the diagonal) as a link, so users with flat preferences there keep
  only themselves; here every user has at least one other friend.
- ``knn``: each user is linked to the ``neighbours`` users of largest covariance with it,
  then the graph is made symmetric (a user may have more than ``neighbours`` friends).
- ``random``: each user draws ``neighbours`` other users uniformly, with replacement (keyed
  by the user id; a user drawn twice is one friend, so a user may start with fewer than
  ``neighbours``), then the graph is made symmetric; no relation to preferences.

``covariance`` and ``knn`` build the dense covariance matrix, O(num_users**2) memory, so they
are limited to 20,000 users.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from simlab.rng import Stream
from simlab.scenario import ParamsModel

__all__ = ["SocialGraphParams", "social_graph", "MAX_DENSE_USERS"]

MAX_DENSE_USERS = 20_000


class SocialGraphParams(ParamsModel):
    """How the users' social network is drawn (``users.social_graph``)."""

    kind: Literal["covariance", "knn", "random"] = Field(
        "covariance",
        description="`covariance` (link users whose preference covariance is at least the "
        "largest threshold leaving nobody alone, as T-RECS's replication of Chaney), `knn` "
        "(each user's `neighbours` most similar users) or `random` (no homophily).",
    )
    neighbours: int = Field(
        5,
        gt=0,
        description="Friends per user for `knn`; draws per user, with replacement, for "
        "`random` (before symmetry).",
    )

    def check_size(self, num_users: int, attributes: int | None = None) -> None:
        """Raise ``ValueError`` when the graph cannot be drawn for ``num_users`` users.

        ``attributes``: the length of the preference vectors, when known (a covariance over
        one attribute is undefined: every covariance would be NaN and nobody linked).
        """
        if num_users < 2:
            raise ValueError("a social graph needs at least 2 users")
        if self.kind != "random" and attributes is not None and attributes < 2:
            raise ValueError(
                f"social_graph.kind '{self.kind}' links users by the covariance of their "
                f"preferences over the attributes, which needs at least 2 (world.dim is "
                f"{attributes}); raise world.dim or use kind `random`"
            )
        if self.kind != "random" and num_users > MAX_DENSE_USERS:
            raise ValueError(
                f"social_graph.kind '{self.kind}' builds a dense {num_users} x {num_users} "
                f"covariance matrix; it allows at most {MAX_DENSE_USERS} users (use `random`)"
            )
        if self.kind != "covariance" and self.neighbours >= num_users:
            raise ValueError(
                f"social_graph.neighbours: {self.neighbours} must be below num_users ({num_users})"
            )


def social_graph(params: SocialGraphParams, preferences: np.ndarray, seed: int):
    """The symmetric 0/1 adjacency of the users' network (see the module docstring).

    Args:
        params: the graph settings.
        preferences: ``(num_users, K)`` every user's preference vector.
        seed: the trial seed (the ``random`` kind draws from it).

    Returns:
        ``scipy.sparse.csr_matrix`` of shape ``(num_users, num_users)``, float64 0/1, empty
        diagonal.
    """
    from scipy import sparse

    n = preferences.shape[0]
    params.check_size(n, preferences.shape[1])
    if params.kind == "random":
        who = np.arange(n, dtype=np.int64)
        draw = Stream(seed, "users/social_graph").integers(who, 0, n - 1, size=params.neighbours)
        rows, cols = np.repeat(who, params.neighbours), draw.ravel()
        cols = cols + (cols >= rows)  # skip oneself
    else:
        cov = np.cov(preferences)
        np.fill_diagonal(cov, -np.inf)
        if params.kind == "covariance":
            rows, cols = np.nonzero(cov >= cov.max(axis=1).min())
        else:
            # the k largest covariances, in any order, come before position k (k < n)
            top = np.argpartition(-cov, params.neighbours, axis=1)[:, : params.neighbours]
            rows, cols = np.repeat(np.arange(n), params.neighbours), top.ravel()
    adj = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    adj = ((adj + adj.T) > 0).astype(np.float64)
    adj.setdiag(0)
    adj.eliminate_zeros()
    return adj.tocsr()
