"""Implicit matrix factorisation as in Chaney et al.'s replication (T-RECS ``ImplicitMF``).

T-RECS fits LensKit's ``ImplicitMF`` (Hu, Koren & Volinsky 2008) to the whole consumption
history at every retrain, from a fresh random start: with ``r_ui`` the number of times
``u`` consumed ``i``, preference ``p_ui = [r_ui > 0]`` and confidence
``c_ui = 1 + weight * r_ui``, it minimises

    sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + reg (sum_u |x_u|^2 + sum_i |y_i|^2)

over the users and items that have consumptions, by alternating least squares: each half
iteration solves, for every user at once (batched Cholesky through ``numpy.linalg.solve``),
``(Y^T Y + reg I + weight Y_u^T Y_u) x_u = (1 + weight) Y_u^T 1``, then the same for items.
Defaults are LensKit's (``iterations`` 20, ``reg`` 0.1, ``weight`` 40) and ``factors`` is the
world's dimension (T-RECS uses the number of attributes). Items without consumptions are
scored with the mean item vector (T-RECS's imputation for new items); items published after
the data rank last in random order (see :mod:`.cumulative`).

Simplifications, stated: each half iteration is solved exactly, where LensKit's default
(``method='cg'``) takes 3 conjugate-gradient steps from the previous value; and
``warm_start: true`` (off by default) starts each refit from the last model (new rows from
the initial scale) and runs ``warm_iterations`` instead of ``iterations``, which is much
faster when the model is refitted every step on one more step of data.

The user representation (for nearest-neighbour homogenization) is the user factors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import Log, Observation, Slates, lookup_sorted
from simlab.params import INIT_SCALE_MAX
from simlab.rng import Stream, numpy_generator
from simlab.scenario import ParamsModel

from .base import Agent, catalog_gather
from .cumulative import CumulativeLog, rank_known_first
from .ties import TiedRankingMixin

__all__ = ["ImplicitMFAgent", "als_implicit"]


def _half_step(other: np.ndarray, conf: Any, pref: Any, reg: float) -> np.ndarray:
    """``(n, f)`` the exact ALS update of one side given the other side's factors.

    ``conf`` is the ``(n, len(other))`` matrix of ``weight * r`` and ``pref`` the boolean
    preferences ``r > 0`` of the same shape (both dense, or both ``scipy.sparse``). Row
    ``u`` solves ``(O^T O + reg I + sum_i conf_ui o_i o_i^T) x_u = sum_i p_ui (1 + conf_ui)
    o_i``: the sums are two matrix products over every row at once, the solves one batched
    call. The preferences are not read off ``conf``: at ``weight`` 0 it is all zero. Should
    a row's matrix be singular in floating point (``reg`` tiny against ``weight``), every row
    takes the least-norm solution (pseudo-inverse) instead of the solve failing.
    """
    n, f = conf.shape[0], other.shape[1]
    base = other.T @ other + reg * np.eye(f)
    outer = (other[:, :, None] * other[:, None, :]).reshape(-1, f * f)
    mats = np.asarray(conf @ outer).reshape(n, f, f) + base
    has = np.asarray(pref, np.float64) if isinstance(pref, np.ndarray) else pref
    rhs = np.asarray(conf @ other) + np.asarray(has @ other)
    try:
        return np.linalg.solve(mats, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:  # a numerically singular row (reg tiny against weight)
        return (np.linalg.pinv(mats, hermitian=True) @ rhs[..., None])[..., 0]


def als_implicit(
    users: np.ndarray,
    items: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    iterations: int,
    reg: float,
    weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Alternating least squares for implicit feedback (Hu, Koren & Volinsky 2008).

    Args:
        users: ``(M,)`` row of each consumption in ``user_factors`` (repeats count).
        items: ``(M,)`` row of each consumption in ``item_factors``.
        user_factors: ``(U, f)`` starting user factors.
        item_factors: ``(I, f)`` starting item factors.
        iterations: full iterations (users then items).
        reg: L2 regularisation.
        weight: confidence weight (``c_ui = 1 + weight * r_ui``, ``r_ui`` the number of
            consumptions of the pair; preference ``p_ui = [r_ui > 0]``).

    Returns:
        ``(user_factors, item_factors)`` after the iterations.
    """
    from scipy import sparse

    shape = (user_factors.shape[0], item_factors.shape[0])
    counts = sparse.csr_matrix((np.ones(users.shape), (users, items)), shape=shape)
    conf = counts * weight  # duplicates summed: weight * r
    pref = counts.astype(bool)  # p = [r > 0]
    if shape[0] * shape[1] <= _DENSE_LIMIT:
        conf, pref = conf.toarray(), pref.toarray()
    if isinstance(conf, np.ndarray):
        conf_t, pref_t = conf.T.copy(), pref.T.copy()
    else:
        conf_t, pref_t = conf.T.tocsr(), pref.T.tocsr()
    x, y = user_factors.copy(), item_factors.copy()
    for _ in range(iterations):
        x = _half_step(y, conf, pref, reg)
        y = _half_step(x, conf_t, pref_t, reg)
    return x, y


_DENSE_LIMIT = 4_000_000
"""Users x items below which the confidence matrix is dense (the products are BLAS calls)."""


class ImplicitMFAgent(TiedRankingMixin, Agent):
    """Implicit-feedback matrix factorisation refitted on the whole history (module docs)."""

    fixed_params = ("factors",)  # the factor tables' width (a fork cannot change it)

    @staticmethod
    def fixed_value(name: str, value: Any, world: Any) -> Any:
        """The width ``factors`` means: 0 is the world's dim (so a fork may spell it out)."""
        return world.dim if name == "factors" and value == 0 else value

    class Params(ParamsModel):
        """Scenario keys of the implicit-mf agent."""

        factors: int = Field(0, ge=0, le=1024, description="Latent factors; 0 = the world's dim.")
        iterations: int = Field(
            20, gt=0, le=10_000, description="ALS iterations per refit (LensKit: 20)."
        )
        reg: float = Field(0.1, gt=0, description="L2 regularisation (LensKit: 0.1).")
        weight: float = Field(
            40.0,
            ge=0,
            le=1e6,
            description="Confidence weight: c = 1 + weight * count (LensKit: 40).",
        )
        init_scale: float = Field(
            0.01,
            gt=0,
            le=INIT_SCALE_MAX,
            description="Std of the random starting factors (LensKit: 0.01).",
        )
        warm_start: bool = Field(
            False,
            description="Start each refit from the last model and run `warm_iterations` "
            "(false: a fresh random start and `iterations`, as T-RECS).",
        )
        warm_iterations: int = Field(
            3, gt=0, le=10_000, description="ALS iterations of a warm refit."
        )
        score_new_items: bool = Field(
            False,
            description="Score items published after the model's data (with the mean item "
            "vector; false: they rank last, as in Chaney et al.'s protocol).",
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self.history = CumulativeLog()
        self.num_factors = params.factors or ctx.dim
        self.user_factors = np.zeros((int(ctx.num_users), self.num_factors))
        self.item_ids = np.zeros(0, np.int64)
        self.item_factors = np.zeros((0, self.num_factors))
        self._fits = 0
        self._tiebreak = Stream(self.seed, "agent/implicit-mf/tiebreak")

    def retrain(self, log: Log) -> None:
        """Refit the factors on every consumption so far."""
        self.history.ingest(log)
        if self.history.users.size == 0:
            return
        p = self.params
        user_ids, urow = np.unique(self.history.users, return_inverse=True)
        item_ids, irow = np.unique(self.history.items, return_inverse=True)
        rng = numpy_generator(self.seed, "agent/implicit-mf/init", self._fits)
        # the users' start is never read (the first half iteration solves them from the
        # items), but it is drawn first: the items' start depends on it
        x0 = rng.standard_normal((user_ids.shape[0], self.num_factors))  # pragma: no mutate
        y0 = rng.standard_normal((item_ids.shape[0], self.num_factors)) * p.init_scale
        iterations = p.iterations
        if p.warm_start and self._fits:
            # the items' last factors
            pos, had = lookup_sorted(self.item_ids, item_ids)
            y0[had] = self.item_factors[pos[had]]
            iterations = p.warm_iterations
        x, y = als_implicit(urow, irow, x0, y0, iterations, p.reg, p.weight)
        self.user_factors[user_ids] = x
        self.item_ids, self.item_factors = item_ids, y
        self._fits += 1

    def _item_vectors(self, ids: np.ndarray) -> np.ndarray:
        """``ids.shape + (f,)`` item factors; the mean vector for items without data."""
        if self.item_ids.size == 0:
            return np.zeros(ids.shape + (self.num_factors,))
        pos, found = lookup_sorted(self.item_ids, ids)
        mean = self.item_factors.mean(axis=0)
        return np.where(found[..., None], self.item_factors[pos], mean)

    def _scores(self, obs: Observation) -> tuple[np.ndarray, int | None]:
        """``(B, C)`` scores ``x_u . y_i`` of the candidates and the horizon of the data."""
        x = self.user_factors[obs.user_ids]
        if obs.shared_candidates:
            scores = x @ self._item_vectors(obs.candidate_pool).T
        else:  # (B, N) over the live catalog, then each user's candidates
            scores = catalog_gather(x @ self._item_vectors(obs.catalog.item_ids).T, obs)
        return scores, None if self.params.score_new_items else self.history.horizon

    def act(self, obs: Observation) -> Slates:
        """Candidates by ``x_u . y_i``, items newer than the data last."""
        scores, horizon = self._scores(obs)
        return Slates(obs.user_ids, rank_known_first(scores, obs, horizon, self._tiebreak))

    def user_representation(self) -> np.ndarray:
        """``(num_users, f)`` the user factors (zero for users without data)."""
        return self.user_factors

    def state_dict(self) -> dict[str, Any]:
        """Factors, item ids, fit count and history."""
        return {
            "user_factors": self.user_factors.copy(),
            "item_ids": self.item_ids.copy(),
            "item_factors": self.item_factors.copy(),
            "fits": self._fits,
            "history": self.history.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.user_factors = np.asarray(state["user_factors"], np.float64).copy()
        self.item_ids = np.asarray(state["item_ids"], np.int64)
        self.item_factors = np.asarray(state["item_factors"], np.float64)
        self._fits = int(state["fits"])
        self.history.load_state_dict(state["history"])
