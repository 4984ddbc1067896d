"""The in-slate click model of the slate-ts agent and its diagonal Laplace posterior.

Part of :mod:`simlab.agents.slate_ts` (Eide, Leslie and Frigessi, DMKD 2022): the agent
keeps the tables and serves; this module fits the model on a log window.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simlab.execution.threads import torch_threads
from simlab.rng import torch_generator

from .base import require_torch

__all__ = ["ClickData", "Priors", "fit_map", "laplace_std"]


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
        slates: ``(M, K)`` row of each shown item in ``item_features`` (any row at padding).
        target: ``(M,)`` 0 for no click, ``j + 1`` for a click on slot ``j``.
        user_features: ``(U, d_u)`` observable profiles of the log's users.
        item_features: ``(n, d)`` observable features of the log's items.
        shown: ``(M, K)`` true where a slot shows an item, false where it is padding (a
            slate narrower than ``K``: its logit is ``-inf``, so it takes no probability);
            ``None`` when every slot shows an item.
    """

    users: np.ndarray
    slates: np.ndarray
    target: np.ndarray
    user_features: np.ndarray
    item_features: np.ndarray
    shown: np.ndarray | None = None


def _tensors(torch: Any, data: ClickData) -> dict[str, Any]:
    """The arrays of ``data`` as torch tensors."""
    out = {
        "g": torch.from_numpy(np.asarray(data.user_features, np.float32)),
        "f": torch.from_numpy(np.asarray(data.item_features, np.float32)),
        "u": torch.from_numpy(data.users),
        "s": torch.from_numpy(data.slates),
    }
    if data.shown is not None:
        out["hidden"] = torch.from_numpy(~np.asarray(data.shown, bool))
    return out


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
    if "hidden" in data:
        items = items.masked_fill(data["hidden"][rows], float("-inf"))
    return torch.cat([t["b0"].expand(items.shape[0], 1), items], dim=1), z, v


def fit_map(
    data: ClickData,
    init: dict[str, np.ndarray],
    params: Any,
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
        params: the agent's ``SlateThompsonAgent.Params`` (epochs, learning rate, batch
            size, ``l2``, ``learn_position_bias``).
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
    # one thread whatever execution.threads is: on several, the scatter-adds (the backward of
    # the batches' indexing, the Laplace sums' index_add_) added in an order that changed
    # from run to run, so the same scenario gave other metrics
    with torch_threads(torch, 1):
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
    with torch.no_grad(), torch_threads(torch, 1):  # one thread: see fit_map
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
