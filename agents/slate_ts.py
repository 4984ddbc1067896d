"""Slate Thompson sampling with an in-slate click model (Eide, Leslie and Frigessi, DMKD 2022).

The click model (a softmax over the slate and a no-click option, with item vectors tied
to observable features and a per-user state) and its diagonal Laplace posterior are in
:mod:`simlab.agents.slate_ts_model`, whose docstring gives the formulas; this module holds
the agent: its per-user and per-item tables, retraining and the policies.

Policies. A posterior draw first draws the user state ``z ~ N(m_z, s_z^2)`` (one per user
and draw); given ``z``, independent item parameters make ``s_u(i)`` exactly
``N(<z, m_v> + m_c, sum_f z_f^2 s_vf^2 + s_c^2)``, so the score draws are per (user,
candidate), O(B C) keyed normal draws, never ``(B, C, f)`` sampled item vectors. Draws are
keyed by (user id, step), with a separate sub-stream per draw index ``k``.

* ``greedy``: top-K by the posterior mean;
* ``thompson``: one posterior draw per user, top-K;
* ``in-slate``: K draws per user; slot ``k`` takes the best not-yet-used item of draw ``k``.

``exploration`` scales the posterior standard deviations of the draws. The default 0.5
was chosen because the Laplace posterior of a user with a handful of impressions is
dominated by the prior, and at 1.0 in-slate TS lost about one click-through point to greedy
in the small test world (on par at 0.5). The paper tempers its likelihood instead. Before
the first retrain the agent serves uniformly random slates.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from simlab.batch import PAD, Log, Observation, Slates, lookup_sorted, row_blocks
from simlab.params import INIT_SCALE_MAX, LEARNING_RATE_MAX
from simlab.rng import Stream, numpy_generator
from simlab.scenario import ParamsModel

from .base import Agent, random_slates, top_k
from .neural_train import check_trained
from .slate_ts_model import ClickData, Priors, fit_map, laplace_std

__all__ = ["SlateThompsonAgent", "ClickData", "Priors", "fit_map", "laplace_std"]


def _with_bias(x: np.ndarray, value: float) -> np.ndarray:
    """``x`` of shape ``(B, f)`` with a constant column ``value`` appended, float32."""
    col = np.full((x.shape[0], 1), value, np.float32)
    return np.concatenate([x.astype(np.float32), col], axis=1)


def _gather(x: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
    """``x[b, idx[b, c]]`` as ``(B, C)``; ``x`` itself when ``idx`` is ``None``."""
    return x if idx is None else np.take_along_axis(x, idx, axis=1)


def _normals(stream: Stream, ids: np.ndarray, step: int, n: int) -> np.ndarray:
    """``(B, n)`` float32 standard normals keyed by ``(ids, step)``.

    Box-Muller on ``stream``'s uniforms, using both outputs of each pair: half the hashing
    of :meth:`Stream.normal`, which matters for ``K`` draws over ``(B, C)`` per step.
    """
    half = (n + 1) // 2
    out = np.empty((ids.shape[0], 2 * half), np.float32)
    rows = max(1, _NORMALS_BLOCK // max(half, 1))
    for lo in range(0, ids.shape[0], rows):  # blocks of users: each block's passes in cache
        u = stream.uniform(ids[lo : lo + rows], step, size=(half, 2)).astype(np.float32)
        r = np.sqrt(-2.0 * np.log(u[..., 0]))
        theta = np.float32(2.0 * np.pi) * u[..., 1]
        np.multiply(r, np.cos(theta), out=out[lo : lo + rows, :half])
        np.multiply(r, np.sin(theta), out=out[lo : lo + rows, half:])
    return out[:, :n]


_NORMALS_BLOCK = 1 << 14
"""Normal pairs per block of :func:`_normals`."""


_SLATE_BLOCK = 1 << 20
"""(user, candidate) cells per block of the in-slate policy's draws."""


class SlateThompsonAgent(Agent):
    """In-slate click model with a diagonal Laplace posterior (see the module docstring).

    Args:
        params: :class:`SlateThompsonAgent.Params`.
        ctx: the world context (``seed``, ``num_users``).
    """

    logging_policy = "unknown"  # posterior sampling: no closed-form slate probability
    fixed_params = ("factors",)  # the posterior arrays' width (a fork cannot change it)

    class Params(ParamsModel):
        """Scenario keys of the slate-ts agent."""

        policy: Literal["greedy", "thompson", "in-slate"] = Field(
            "in-slate",
            description="greedy: posterior mean; thompson: one posterior draw per user; "
            "in-slate: one draw per slate position, best unused item of each draw.",
        )
        factors: int = Field(16, gt=0, le=1024, description="Dimension f of z_u and v_i.")
        prior_std: float = Field(
            0.1,
            gt=0,
            le=100,
            description="Prior std of each coordinate of the item offsets delta_i "
            "(v_i = W f_i + delta_i).",
        )
        bias_prior_std: float = Field(0.5, gt=0, le=100, description="Prior std of biases c_i.")
        user_prior_std: float = Field(
            0.1,
            gt=0,
            le=100,
            description="Prior std of each coordinate of the per-user offsets p_u "
            "(z_u = A g_u + p_u).",
        )
        l2: float = Field(
            1.0,
            ge=0,
            description="Gaussian prior precision of the entries of A, W, the no-click logit "
            "and the position offsets.",
        )
        learn_position_bias: bool = Field(True, description="Learn a logit offset per slate slot.")
        exploration: float = Field(
            0.5,
            ge=0,
            le=100,
            description="Scale of the posterior std in Thompson draws (1 = the Laplace "
            "posterior as is; 0 = greedy).",
        )
        epochs: int = Field(20, gt=0, le=10_000, description="Passes over the log per retrain.")
        lr: float = Field(0.05, gt=0, le=LEARNING_RATE_MAX, description="Adam learning rate.")
        batch_size: int = Field(4096, gt=0, description="Impressions per optimisation step.")
        init_scale: float = Field(
            0.1, gt=0, le=INIT_SCALE_MAX, description="Std of the initial A, W and p_u."
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._random = Stream(self.seed, "agent/slate-ts/random")
        self._draws = Stream(self.seed, "agent/slate-ts/draw")
        self._init = Stream(self.seed, "agent/slate-ts/init")
        self._num_retrains = 0
        f = params.factors
        n = int(getattr(ctx, "num_users", 0) or 0)
        # per-user tables, indexed by user id (grown when larger ids appear)
        self._profiles = np.zeros((n, 0), np.float32)  # (num_users, d_u), kept when served
        self._user_mean = np.zeros((n, f), np.float32)  # posterior mean of p_u
        self._user_std = np.zeros((n, f), np.float32)  # posterior std of p_u (if known)
        self._user_known = np.zeros(n, bool)  # whether p_u was ever fitted
        # item posterior of the last retrain, rows sorted by item id
        self._item_ids = np.zeros(0, np.int64)  # (n_items,)
        self._item_mean = np.zeros((0, f + 1), np.float32)  # (n_items, f + 1): (delta_i, c_i)
        self._item_std = np.zeros((0, f + 1), np.float32)
        self._model: dict[str, np.ndarray] | None = None  # MAP of A, W, b0, pos
        self._priors = Priors(params.prior_std, params.bias_prior_std, params.user_prior_std)

    # ------------------------------------------------------------------ learning
    def _grow_users(self, max_id: int, dim: int) -> None:
        """Make the per-user tables hold ids up to ``max_id`` and profiles of size ``dim``."""
        old, f = self._user_known.shape[0], self.params.factors
        n = max(max_id + 1, old)
        if n > old:
            self._user_mean = np.concatenate([self._user_mean, np.zeros((n - old, f), np.float32)])
            self._user_std = np.concatenate([self._user_std, np.zeros((n - old, f), np.float32)])
            self._user_known = np.concatenate([self._user_known, np.zeros(n - old, bool)])
        if self._profiles.shape != (n, dim):
            grown = np.zeros((n, dim), np.float32)
            if self._profiles.shape[1] == dim:
                grown[: self._profiles.shape[0]] = self._profiles
            self._profiles = grown

    def _click_data(self, log: Log) -> tuple[ClickData, np.ndarray, np.ndarray]:
        """The log in model indices, with the log's sorted user ids and item ids.

        ``PAD`` slots (slates narrower than the log's width) are not items: they are left
        out of the item ids and masked out of the likelihood (``ClickData.shown``).
        """
        user_ids, users = np.unique(log.user_ids, return_inverse=True)
        shown = log.slates != PAD
        item_ids, rows = np.unique(log.slates[shown], return_inverse=True)
        slates = np.zeros(log.slates.shape, np.int64)
        slates[shown] = rows
        self._grow_users(int(user_ids[-1]), self._profiles.shape[1])
        feats = np.zeros((item_ids.shape[0], log.features.shape[1]), np.float32)
        pos, found = lookup_sorted(log.feature_ids, item_ids)
        feats[found] = log.features[pos[found]]
        data = ClickData(
            users=users.reshape(-1).astype(np.int64),
            slates=slates,
            target=(log.clicked_pos + 1).astype(np.int64),
            user_features=self._profiles[user_ids],
            item_features=feats,
            shown=shown,
        )
        return data, user_ids, item_ids

    def _init_params(
        self, data: ClickData, user_ids: np.ndarray, item_ids: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Warm start from the previous model; new users get small keyed random offsets."""
        p, f = self.params, self.params.factors
        gen = numpy_generator(self.seed, "agent/slate-ts/init", self._num_retrains)
        prev = self._model or {}
        shapes = {
            "A": (data.user_features.shape[1], f),
            "W": (data.item_features.shape[1], f),
            "b0": (1,),
            "pos": (data.slates.shape[1],),
        }
        init = {}
        for key, shape in shapes.items():
            if key in prev and prev[key].shape == shape:
                init[key] = prev[key]
            elif key in ("A", "W"):
                init[key] = gen.normal(0, p.init_scale, shape)
            else:
                init[key] = np.zeros(shape)
        # random rather than zero offsets break the symmetry of <z, v> when features are 0
        fresh = p.init_scale * self._init.normal(user_ids, 0, size=f)
        known = self._user_known[user_ids][:, None]
        init["P"] = np.where(known, self._user_mean[user_ids], fresh)
        mean, _ = self._item_table(item_ids)
        init["delta"], init["c"] = mean[:, :f], mean[:, f]
        return init

    def retrain(self, log: Log) -> None:
        """Fit the MAP click model on the log window, then its diagonal Laplace posterior."""
        if not (log.slates != PAD).any():  # an empty log, or padding only
            return
        data, user_ids, item_ids = self._click_data(log)
        init = self._init_params(data, user_ids, item_ids)
        key = (self.seed, "agent/slate-ts/batches", self._num_retrains)
        model = fit_map(data, init, self.params, self._priors, key)
        check_trained("slate-ts", model, self.params, self._num_retrains)
        item_std, user_std = laplace_std(data, model, self._priors)
        self._user_mean[user_ids] = model["P"]
        self._user_std[user_ids] = user_std
        self._user_known[user_ids] = True
        self._item_ids = item_ids
        self._item_mean = np.concatenate([model["delta"], model["c"][:, None]], axis=1)
        self._item_std = item_std
        self._model = {k: model[k] for k in ("A", "W", "b0", "pos")}
        self._num_retrains += 1

    # ------------------------------------------------------------------ serving
    def _item_table(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n, f + 1)`` posterior mean and std of ``(delta_i, c_i)`` (the prior if unseen)."""
        f = self.params.factors
        mean = np.zeros((item_ids.shape[0], f + 1), np.float32)
        std = np.full((item_ids.shape[0], f + 1), self._priors.delta, np.float32)
        std[:, f] = self._priors.bias
        pos, known = lookup_sorted(self._item_ids, item_ids)
        mean[known] = self._item_mean[pos[known]]
        std[known] = self._item_std[pos[known]]
        return mean, std

    def posterior(self, obs: Observation) -> tuple[np.ndarray, ...]:
        """Posterior of the served users' states and of their candidates (after a retrain).

        Features whose size differs from what the model was trained on (e.g. a log without
        item features) are ignored.

        Returns:
            ``(z_mean, z_std, v_mean, v_std, idx)``: ``(B, f)`` user states; ``(U, f + 1)``
            vectors-and-biases ``(v_i, c_i)`` of the ``U`` distinct candidates; ``(B, C)``
            column of each candidate in the item arrays (``None`` when candidates are shared:
            the item arrays are then in candidate order).
        """
        m = self._model
        if m is None:
            raise RuntimeError("SlateThompsonAgent.posterior() needs a retrained model")
        self._grow_users(int(obs.user_ids.max(initial=0)), self._profiles.shape[1])
        cat = obs.catalog
        if obs.shared_candidates:
            ids, idx = obs.candidate_pool, None
        else:
            ids, inverse = np.unique(obs.candidates, return_inverse=True)
            idx = inverse.reshape(obs.candidates.shape)
        v_mean, v_std = self._item_table(ids)
        feats = cat.features[cat.rows(ids)]
        if feats.shape[1] == m["W"].shape[0]:
            v_mean[:, :-1] += feats @ m["W"]
        z_mean = self._user_mean[obs.user_ids].copy()
        if obs.user_features.shape[1] == m["A"].shape[0]:
            z_mean += obs.user_features @ m["A"]
        known = self._user_known[obs.user_ids][:, None]
        z_std = np.where(known, self._user_std[obs.user_ids], np.float32(self._priors.user))
        return z_mean, z_std, v_mean, v_std, idx

    def score_moments(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std of ``s_u(i)`` for every user and candidate, ``(B, C)`` each.

        With independent ``z ~ N(m_z, s_z^2)`` and ``v ~ N(m_v, s_v^2)`` per coordinate,
        ``Var <z, v> = sum_f m_zf^2 s_vf^2 + s_zf^2 m_vf^2 + s_zf^2 s_vf^2``.
        """
        zm, zs, vm, vs, idx = self.posterior(obs)
        zm1, zs1 = _with_bias(zm, 1.0), _with_bias(zs, 0.0)
        mean = zm1 @ vm.T
        var = zm1**2 @ (vs**2).T + zs1**2 @ (vm**2 + vs**2).T
        return _gather(mean, idx), _gather(np.sqrt(var), idx)

    def sample_scores(self, obs: Observation, k: int = 0) -> np.ndarray:
        """``(B, C)`` posterior draw ``k`` of every user's candidate scores (see ``_sample``)."""
        return self._sample(self.posterior(obs), obs.user_ids, obs.step, obs.candidates.shape[1], k)

    def _sample(self, post: tuple, user_ids: np.ndarray, step: int, n: int, k: int) -> np.ndarray:
        """``(B, n)`` posterior draw ``k`` of the users' ``n`` candidate scores each.

        A user state is drawn per user; given it, each score is exactly
        ``N(<z, m_v> + m_c, sum_f z_f^2 s_vf^2 + s_c^2)``. Both draws are keyed by (user id,
        step) in sub-stream ``k``; ``exploration`` scales both standard deviations.
        """
        zm, zs, vm, vs, idx = post
        a, stream = self.params.exploration, self._draws.child(str(k))
        eps_z = stream.child("user").normal(user_ids, step, size=zm.shape[1])
        z1 = _with_bias(zm + a * zs * eps_z.astype(np.float32), 1.0)
        mean = _gather(z1 @ vm.T, idx)
        sd = _gather(np.sqrt(z1**2 @ (vs**2).T), idx)
        eps = _normals(stream.child("item"), user_ids, step, n)
        return mean + a * sd * eps

    def _in_slate(self, post: tuple, obs: Observation) -> np.ndarray:
        """``(B, K)`` candidate columns: slot ``k`` takes the best unused item of draw ``k``.

        Users go in blocks (:func:`~simlab.batch.row_blocks`), so that a block's ``K`` draws
        stay in cache instead of streaming ``(B, C)`` arrays through memory once per slot:
        every draw and every step is per user, so the picks are those of all users at once.
        """
        zm, zs, vm, vs, idx = post
        b, c = obs.candidates.shape
        pick = np.empty((b, obs.slate_size), np.int64)
        for sub in row_blocks(b, c, _SLATE_BLOCK):
            part = (zm[sub], zs[sub], vm, vs, None if idx is None else idx[sub])
            users = obs.user_ids[sub]
            rows = np.arange(users.shape[0])
            taken = np.zeros((users.shape[0], c), bool)
            for slot in range(obs.slate_size):
                scores = self._sample(part, users, obs.step, c, slot)
                scores[taken] = -np.inf
                pick[sub, slot] = best = np.argmax(scores, axis=1)
                taken[rows, best] = True
        return pick

    def serving_record(self, obs: Observation) -> dict[str, np.ndarray]:
        """The served users' ids and profiles (the platform's start-up serves without act)."""
        return {"user_ids": obs.user_ids, "features": obs.user_features}

    def record_served(self, obs_step: int, record: dict[str, np.ndarray], catalog: Any) -> None:
        """Keep the served users' profiles (the fit reads them for the log's users)."""
        ids, feats = record["user_ids"], record["features"]
        self._grow_users(int(ids.max(initial=0)), feats.shape[1])
        self._profiles[ids] = feats

    def act(self, obs: Observation) -> Slates:
        """Slates by the configured policy; random before the first retrain."""
        self.record_served(obs.step, self.serving_record(obs), obs.catalog)
        if self._model is None:
            return Slates(obs.user_ids, random_slates(self._random, obs))
        k, policy = obs.slate_size, self.params.policy
        if policy == "greedy":
            scores = self.score_moments(obs)[0]
            return Slates(obs.user_ids, top_k(scores, obs.candidates, k, shared=False))
        post = self.posterior(obs)
        if policy == "thompson":
            scores = self._sample(post, obs.user_ids, obs.step, obs.candidates.shape[1], 0)
            return Slates(obs.user_ids, top_k(scores, obs.candidates, k, shared=False))
        pick = self._in_slate(post, obs)
        return Slates(obs.user_ids, np.take_along_axis(obs.candidates, pick, axis=1))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """User tables, the item posterior, the global MAP parameters and the retrain count."""
        state: dict[str, Any] = {"num_retrains": self._num_retrains}
        for name in _STATE_ARRAYS:
            state[name] = getattr(self, "_" + name).copy()
        if self._model is not None:
            state.update({f"model.{k}": v.copy() for k, v in self._model.items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._num_retrains = int(state["num_retrains"])
        for name, dtype in _STATE_ARRAYS.items():
            setattr(self, "_" + name, np.array(state[name], dtype))
        model = {
            k.split(".", 1)[1]: np.array(v) for k, v in state.items() if k.startswith("model.")
        }
        self._model = model or None


_STATE_ARRAYS = {
    "profiles": np.float32,
    "user_mean": np.float32,
    "user_std": np.float32,
    "user_known": bool,
    "item_ids": np.int64,
    "item_mean": np.float32,
    "item_std": np.float32,
}
"""Array attributes (without the leading underscore) saved by ``state_dict``."""
