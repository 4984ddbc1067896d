"""Slate Thompson sampling with an in-slate click model (Eide, Leslie and Frigessi, DMKD 2022).

Click model. A served user ``u`` sees a slate ``(i_1, ..., i_K)`` and clicks slot ``j`` (or
nothing) with probability

    P(j | slate) = softmax([b0, s_u(i_1) + o_1, ..., s_u(i_K) + o_K])_j,
    s_u(i) = <z_u, v_i> + c_i,

where ``b0`` is a learned no-click logit, ``o_k`` an optional learned logit offset of slot
``k`` (users click lower slots less; learning it keeps position effects out of the item
parameters, and serving ranks by ``s_u(i)`` alone), ``c_i`` an item bias and ``<.,.>`` a
dot product. The likelihood uses only the items actually shown plus the no-click option,
as in the paper's in-slate model; items never shown contribute nothing.

Items. ``v_i = W f_i + delta_i`` ties item vectors to the observable features ``f_i``, with
``delta_i ~ N(0, prior_std^2 I)`` and ``c_i ~ N(0, bias_prior_std^2)``: a new item is
scored from its features, with the prior's full uncertainty.

User state. ``z_u = A g_u + p_u``: a learned linear map of the user's observable profile
``g_u`` plus a per-user offset ``p_u ~ N(0, user_prior_std^2 I)``. The paper's user state is
a GRU over the clicks; the log does not carry the history before each logged row, so a
static state is used instead, refitted on every log window (which follows slow drift).
``A``, ``W``, ``b0`` and ``o`` are point (MAP) estimates under ``N(0, 1 / l2)`` priors.

Posterior: diagonal Laplace over ``(delta_i, c_i)`` and ``p_u``. ``retrain(log)`` finds the
MAP of all parameters on the log window with Adam (warm-started from the previous model),
then gives each of those parameters a Gaussian with the MAP as mean and the inverse
diagonal Hessian of the negative log posterior as variance. The Hessian of a softmax
log-likelihood with respect to its logits is ``diag(p) - p p^T`` whatever was clicked, and
the logits are linear in each of these parameters, so the diagonal is closed-form
(see :func:`laplace_std`). This was chosen over the paper's mean-field variational
posterior because it needs one MAP fit and one pass over the log per retrain instead of a
stochastic ELBO optimisation.

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

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from simlab.batch import Log, Observation, Slates, lookup_sorted
from simlab.rng import Stream, numpy_generator, torch_generator
from simlab.scenario import ParamsModel

from .base import Agent, random_slates, require_torch, top_k

__all__ = ["SlateThompsonAgent", "ClickData", "Priors", "fit_map", "laplace_std"]


def _torch():
    return require_torch("the slate-ts agent")


@dataclass(frozen=True)
class Priors:
    """Prior standard deviations of ``delta_i`` (per coordinate), ``c_i`` and ``p_u``."""

    delta: float
    bias: float
    user: float


@dataclass(frozen=True)
class ClickData:
    """One log window in the index space of the click model.

    Attributes:
        users: ``(M,)`` row of each impression's user in ``user_features``.
        slates: ``(M, K)`` row of each shown item in ``item_features``.
        target: ``(M,)`` 0 for no click, ``j + 1`` for a click on slot ``j``.
        user_features: ``(U, d_u)`` observable profiles of the log's users.
        item_features: ``(n, d)`` observable features of the log's items.
    """

    users: np.ndarray
    slates: np.ndarray
    target: np.ndarray
    user_features: np.ndarray
    item_features: np.ndarray


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
    u = stream.uniform(ids, step, size=((n + 1) // 2, 2)).astype(np.float32)
    r = np.sqrt(-2.0 * np.log(u[..., 0]))
    theta = np.float32(2.0 * np.pi) * u[..., 1]
    return np.concatenate([r * np.cos(theta), r * np.sin(theta)], axis=-1)[..., :n]


def _tensors(torch: Any, data: ClickData) -> dict[str, Any]:
    """The arrays of ``data`` as torch tensors."""
    return {
        "g": torch.from_numpy(np.asarray(data.user_features, np.float32)),
        "f": torch.from_numpy(np.asarray(data.item_features, np.float32)),
        "u": torch.from_numpy(data.users),
        "s": torch.from_numpy(data.slates),
    }


def _logits(torch: Any, t: dict[str, Any], data: dict[str, Any], rows: Any) -> tuple:
    """Logits, user states and item vectors of the impressions ``rows``.

    Returns:
        ``(R, K + 1)`` click logits (no-click first), ``(R, f)`` user states ``z`` and
        ``(R, K, f)`` vectors ``v`` of the shown items.
    """
    z = (data["g"] @ t["A"] + t["P"])[data["u"][rows]]
    slates = data["s"][rows]
    v = (data["f"] @ t["W"] + t["delta"])[slates]
    items = (z[:, None, :] * v).sum(-1) + t["c"][slates] + t["pos"][: slates.shape[1]]
    return torch.cat([t["b0"].expand(items.shape[0], 1), items], dim=1), z, v


def fit_map(
    data: ClickData,
    init: dict[str, np.ndarray],
    params: SlateThompsonAgent.Params,
    priors: Priors,
    seed_key: tuple[int, str, int],
) -> dict[str, np.ndarray]:
    """MAP of the click model on one log window by mini-batch Adam.

    Each batch minimises its mean negative log-likelihood plus the negative log prior of
    all parameters divided by the number of impressions ``M`` (an unbiased estimate of the
    full negative log posterior over ``M``).

    Args:
        data: the log window (see :class:`ClickData`).
        init: initial ``A (d_u, f)``, ``W (d, f)``, ``P (U, f)``, ``delta (n, f)``,
            ``c (n,)``, ``b0 (1,)`` and ``pos (K,)``.
        params: the agent's parameters (epochs, learning rate, batch size, ``l2``).
        priors: prior standard deviations of the item and user parameters.
        seed_key: ``(seed, stream, step)`` of the generator that shuffles batches.

    Returns:
        The MAP parameters, same keys and shapes as ``init``.
    """
    torch = _torch()
    t = {k: torch.nn.Parameter(torch.from_numpy(np.array(v, np.float32))) for k, v in init.items()}
    if not params.learn_position_bias:
        t["pos"].requires_grad_(False)
    d = _tensors(torch, data)
    target = torch.from_numpy(data.target)
    m = data.users.shape[0]
    opt = torch.optim.Adam([p for p in t.values() if p.requires_grad], lr=params.lr)
    gen = torch_generator(*seed_key)
    for _ in range(params.epochs):
        order = torch.randperm(m, generator=gen)
        for start in range(0, m, params.batch_size):
            rows = order[start : start + params.batch_size]
            logits = _logits(torch, t, d, rows)[0]
            nll = torch.nn.functional.cross_entropy(logits, target[rows])
            prior = (
                (t["delta"] ** 2).sum() / priors.delta**2
                + (t["c"] ** 2).sum() / priors.bias**2
                + (t["P"] ** 2).sum() / priors.user**2
                + params.l2 * sum((t[k] ** 2).sum() for k in ("A", "W", "b0", "pos"))
            )
            loss = nll + 0.5 * prior / m
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {k: v.detach().numpy().copy() for k, v in t.items()}


def laplace_std(
    data: ClickData, model: dict[str, np.ndarray], priors: Priors
) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal Laplace posterior standard deviations of the item and user parameters.

    The precision of each parameter is its prior precision plus the diagonal of the
    log-likelihood's Hessian at the MAP, summed over the impressions it takes part in
    (``p`` the MAP click probability of each slot, ``v`` the shown items' vectors):

    * ``delta_if``: ``p_j (1 - p_j) z_f^2`` over the slots ``j`` showing item ``i``;
    * ``c_i``: ``p_j (1 - p_j)`` over the same slots;
    * ``p_uf``: ``sum_j p_j v_jf^2 - (sum_j p_j v_jf)^2`` over the impressions of user ``u``.

    Returns:
        ``(n, f + 1)`` std of ``(delta_i, c_i)`` and ``(U, f)`` std of ``p_u``.
    """
    torch = _torch()
    t = {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in model.items()}
    d = _tensors(torch, data)
    n, f = model["delta"].shape
    with torch.no_grad():
        logits, z, v = _logits(torch, t, d, torch.arange(data.users.shape[0]))
        p = torch.softmax(logits, dim=1)[:, 1:, None].double()  # (M, K, 1)
        z1 = torch.cat([z, torch.ones(z.shape[0], 1)], dim=1).double() ** 2  # (M, f + 1)
        items = torch.zeros(n, f + 1, dtype=torch.float64)
        items.index_add_(0, d["s"].reshape(-1), (p * (1 - p) * z1[:, None, :]).reshape(-1, f + 1))
        v = v.double()
        per_row = (p * v**2).sum(1) - (p * v).sum(1) ** 2  # (M, f)
        users = torch.zeros(model["P"].shape[0], f, dtype=torch.float64)
        users.index_add_(0, d["u"], per_row)
    items[:, :f] += 1.0 / priors.delta**2
    items[:, f] += 1.0 / priors.bias**2
    users += 1.0 / priors.user**2
    item_std = (1.0 / items.sqrt()).numpy().astype(np.float32)
    return item_std, (1.0 / users.sqrt()).numpy().astype(np.float32)


class SlateThompsonAgent(Agent):
    """In-slate click model with a diagonal Laplace posterior (see the module docstring).

    Args:
        params: :class:`SlateThompsonAgent.Params`.
        ctx: the world context (``seed``, ``num_users``).
    """

    logging_policy = "unknown"  # posterior sampling: no closed-form slate probability

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
        bias_prior_std: float = Field(
            0.5, gt=0, le=100, description="Prior std of the item biases c_i."
        )
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
        learn_position_bias: bool = Field(
            True, description="Learn a logit offset per slate position in the click model."
        )
        exploration: float = Field(
            0.5,
            ge=0,
            le=100,
            description="Scale of the posterior std in Thompson draws (1 = the Laplace "
            "posterior as is; 0 = greedy).",
        )
        epochs: int = Field(20, gt=0, le=10_000, description="Passes over the log per retrain.")
        lr: float = Field(0.05, gt=0, le=10, description="Adam learning rate.")
        batch_size: int = Field(4096, gt=0, description="Impressions per optimisation step.")
        init_scale: float = Field(0.1, gt=0, description="Std of the initial A, W and p_u.")

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._random = Stream(self.seed, "agent/slate-ts/random")
        self._draws = Stream(self.seed, "agent/slate-ts/draw")
        self._init = Stream(self.seed, "agent/slate-ts/init")
        self._num_retrains = 0
        f = params.factors
        n = int(getattr(ctx, "num_users", 0) or 0)
        # per-user tables, indexed by user id (grown when larger ids appear)
        self._profiles = np.zeros((n, 0), np.float32)  # (num_users, d_u), recorded in act()
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
        """The log in model indices, with the log's sorted user ids and item ids."""
        user_ids, users = np.unique(log.user_ids, return_inverse=True)
        item_ids, slates = np.unique(log.slates, return_inverse=True)
        self._grow_users(int(user_ids[-1]), self._profiles.shape[1])
        feats = np.zeros((item_ids.shape[0], log.features.shape[1]), np.float32)
        pos, found = lookup_sorted(log.feature_ids, item_ids)
        feats[found] = log.features[pos[found]]
        data = ClickData(
            users=users.reshape(-1).astype(np.int64),
            slates=slates.reshape(log.slates.shape).astype(np.int64),
            target=(log.clicked_pos + 1).astype(np.int64),
            user_features=self._profiles[user_ids],
            item_features=feats,
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
        if log.num_rows == 0:
            return
        data, user_ids, item_ids = self._click_data(log)
        init = self._init_params(data, user_ids, item_ids)
        key = (self.seed, "agent/slate-ts/batches", self._num_retrains)
        model = fit_map(data, init, self.params, self._priors, key)
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
            ids, idx = obs.candidates[0], None
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
        return self._sample(self.posterior(obs), obs, k)

    def _sample(self, post: tuple[np.ndarray, ...], obs: Observation, k: int) -> np.ndarray:
        """``(B, C)`` posterior draw ``k`` of every user's candidate scores.

        A user state is drawn per user; given it, each score is exactly
        ``N(<z, m_v> + m_c, sum_f z_f^2 s_vf^2 + s_c^2)``. Both draws are keyed by (user id,
        step) in sub-stream ``k``; ``exploration`` scales both standard deviations.
        """
        zm, zs, vm, vs, idx = post
        a, stream = self.params.exploration, self._draws.child(str(k))
        eps_z = stream.child("user").normal(obs.user_ids, obs.step, size=zm.shape[1])
        z1 = _with_bias(zm + a * zs * eps_z.astype(np.float32), 1.0)
        mean = _gather(z1 @ vm.T, idx)
        sd = _gather(np.sqrt(z1**2 @ (vs**2).T), idx)
        eps = _normals(stream.child("item"), obs.user_ids, obs.step, obs.candidates.shape[1])
        return mean + a * sd * eps

    def act(self, obs: Observation) -> Slates:
        """Slates by the configured policy; random before the first retrain."""
        self._grow_users(int(obs.user_ids.max(initial=0)), obs.user_features.shape[1])
        self._profiles[obs.user_ids] = obs.user_features
        if self._model is None:
            return Slates(obs.user_ids, random_slates(self._random, obs))
        k, policy = obs.slate_size, self.params.policy
        if policy == "greedy":
            scores = self.score_moments(obs)[0]
            return Slates(obs.user_ids, top_k(scores, obs.candidates, k, shared=False))
        post = self.posterior(obs)
        if policy == "thompson":
            scores = self._sample(post, obs, 0)
            return Slates(obs.user_ids, top_k(scores, obs.candidates, k, shared=False))
        rows = np.arange(obs.num_users)
        taken = np.zeros(obs.candidates.shape, bool)
        pick = np.empty((obs.num_users, k), np.int64)
        for slot in range(k):
            scores = np.where(taken, -np.inf, self._sample(post, obs, slot))
            pick[:, slot] = np.argmax(scores, axis=1)
            taken[rows, pick[:, slot]] = True
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
