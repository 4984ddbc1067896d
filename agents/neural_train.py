"""Torch training shared by the log-retrained agents: debiasing weights and BPR.

The exposure-propensity debiasing of ``debias: ips | snips`` (:class:`DebiasParams`,
:func:`exposure_propensity`, :func:`click_weights`; Saito et al., WSDM 2020, with the
propensity model of Schnabel et al. 2016) and :func:`train_bpr`, the BPR fit of the hybrid
matrix factorisation. The agents are in :mod:`simlab.agents.neural`. torch is imported on
first use (:func:`simlab.agents.base.require_torch`). :func:`check_trained` stops a run whose
training diverged (mf, gru4rec, two-tower, slate-ts and generative call it after every retrain).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from simlab.batch import PAD, Log, lookup_sorted
from simlab.errors import ScenarioError
from simlab.rng import torch_generator
from simlab.scenario import ParamsModel

from .base import require_torch
from .lazy_adam import LazyAdamRows

__all__ = ["train_bpr", "exposure_propensity", "click_weights", "DebiasParams", "check_trained"]

TRAINING_KNOBS = ("lr", "l2", "weight_decay", "init_scale", "source_debias", "prior_std")
"""Settings named when training diverges (those of the agent's ``Params`` that it has)."""


def check_trained(model: str, fitted: dict[str, Any], params: Any, retrain: int) -> None:
    """Raise a ``ScenarioError`` when a retrain left non-finite parameters (it diverged).

    A diverged model scores every item NaN and serves arbitrary slates without complaint;
    this names the agent's model, the retrain, the parameters and the training settings.
    One pass over the parameters per retrain (cheap next to the training); ``fitted`` holds
    numpy arrays or torch tensors (checked on their device, not copied).
    """
    bad = [name for name, value in fitted.items() if not _finite(value)]
    if not bad:
        return
    knobs = ", ".join(f"{k}={getattr(params, k)!r}" for k in TRAINING_KNOBS if hasattr(params, k))
    named = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
    raise ScenarioError(
        f"agents: {model}'s training diverged at retrain {retrain + 1}: its parameters "
        f"{named} are not finite (inf or NaN), so its scores would be meaningless; "
        f"its settings are {knobs}: lower the learning rate, l2, initial scale or debias "
        f"weight, or raise a tiny prior std"
    )


def _finite(value: Any) -> bool:
    """Whether every float (or complex) entry of an array or a torch tensor is finite."""
    if hasattr(value, "isfinite"):  # a torch tensor (numpy arrays have no such method)
        return bool(value.isfinite().all())
    array = np.asarray(value)
    return array.dtype.kind not in "fc" or bool(np.isfinite(array).all())


Debias = Literal["none", "ips", "snips"]


def _torch():
    return require_torch("the torch agents (mf, gru4rec)")


# ----------------------------------------------------------------------------- debiasing


class DebiasParams(ParamsModel):
    """Scenario keys shared by the torch agents: inverse-propensity weighting of clicks."""

    debias: Debias = Field(
        "none",
        description="Weight each training click by 1/P_i, its item's estimated exposure "
        "propensity: none; ips (mean of weighted losses); snips (weighted losses divided by "
        "the sum of the weights, per batch).",
    )
    propensity_power: float = Field(
        0.5, gt=0, le=2, description="eta in P_i = (impressions_i / max impressions)^eta."
    )
    min_propensity: float = Field(
        0.05, gt=0, le=1, description="Lower clip of P_i, so no weight exceeds 1/this."
    )


def exposure_propensity(
    log: Log, power: float = 0.5, min_propensity: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Estimated exposure propensity of every item shown in the log window.

    ``P_i = clip((n_i / max_j n_j) ** power, min_propensity, 1)``, where ``n_i`` is the
    number of logged slates that showed item ``i`` (the relative-popularity model of
    Saito et al. 2020 and Schnabel et al. 2016, who use ``power = 0.5``). The ``PAD``
    slots of narrower slates (``platform.slate_size: 0``) are no item.

    Args:
        log: the log window.
        power: ``eta``, how fast the propensity falls with fewer impressions.
        min_propensity: lower clip, so that no weight ``1 / P_i`` exceeds ``1 / min_propensity``.

    Returns:
        ``(item_ids, P)``: ``(n,)`` sorted ids of the items shown and their propensities.

    >>> slates = np.array([[1, 2], [1, 3], [1, 2], [1, 2]])
    >>> log = Log(np.zeros(4, np.int64), np.arange(4), slates, np.zeros(4, np.int64),
    ...           np.zeros(4, np.float32))
    >>> ids, p = exposure_propensity(log, power=0.5, min_propensity=0.6)
    >>> ids.tolist(), p.round(3).tolist()
    ([1, 2, 3], [1.0, 0.866, 0.6])
    """
    slates = log.slates
    ids, counts = np.unique(slates[slates != PAD], return_counts=True)
    if ids.size == 0:
        return ids.astype(np.int64), np.zeros(0)
    p = (counts / counts.max()) ** power
    return ids.astype(np.int64), np.maximum(p, min_propensity)  # p <= 1 already


def click_weights(log: Log, items: np.ndarray, params: DebiasParams) -> np.ndarray | None:
    """``(M,)`` weights ``1 / P_i`` of training clicks on ``items``; ``None`` when not debiasing.

    Args:
        log: the log window the propensities are estimated from.
        items: ``(M,)`` clicked item ids (every one was shown in ``log``).
        params: the agent's :class:`DebiasParams`.
    """
    if params.debias == "none":
        return None
    ids, prop = exposure_propensity(log, params.propensity_power, params.min_propensity)
    pos, found = lookup_sorted(ids, items)
    assert found.all(), "a clicked item was never shown in the log"
    return (1.0 / prop[pos]).astype(np.float32)


def _weighted_mean(loss: Any, weights: Any | None, self_normalize: bool) -> Any:
    """Batch loss: the mean, IPS ``mean(w * loss)`` or SNIPS ``sum(w * loss) / sum(w)``."""
    if weights is None:
        return loss.mean()
    if self_normalize:
        return (weights * loss).sum() / weights.sum()
    return (weights * loss).mean()


# ----------------------------------------------------------------------------- BPR


def train_bpr(
    users: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    params: dict[str, np.ndarray],
    item_features: np.ndarray,
    *,
    epochs: int,
    lr: float,
    l2: float,
    batch_size: int,
    seed_key: tuple[int, str, int],
    weights: np.ndarray | None = None,
    self_normalize: bool = False,
    rewrite_features: np.ndarray | None = None,
    invariance: float = 0.0,
) -> dict[str, np.ndarray]:
    """Fit BPR ``-log sigmoid(s(u, pos) - s(u, neg))`` with Adam; return the new params.

    The user table ``P`` is updated lazily (:class:`LazyAdamRows`: only the rows of a
    batch's users, with their own moment estimates), ``W``, ``Q`` and ``b`` by torch's
    dense Adam, so the cost of a retrain is linear in clicks whatever the number of users.

    With ``rewrite_features`` and ``invariance > 0`` the loss adds Zhou et al.'s black-box
    source-debiasing term ``invariance * mean |s(u, i) - s(u, R(i))|`` over the batch's
    positive and negative items, ``R(i)`` being item ``i`` with its rewrite's features.

    Args:
        users: ``(M,)`` user index of each click.
        pos: ``(M,)`` item row (into ``item_features``) of each click.
        neg: ``(epochs, M)`` negative item rows, one per click and epoch.
        params: initial ``P (U, f)``, ``W (d, f)``, ``Q (n, f)``, ``b (n,)`` arrays.
        item_features: ``(n, d)`` observable features of the log's items.
        epochs: passes over the clicks.
        lr: Adam learning rate.
        l2: L2 penalty on the vectors of each batch.
        batch_size: clicks per optimisation step.
        seed_key: ``(seed, stream, step)`` of the generator that shuffles batches.
        weights: ``(M,)`` per-click loss weights (inverse propensities), or ``None``.
        self_normalize: divide a batch's weighted loss by its weight sum (SNIPS), not size.
        rewrite_features: ``(n, d)`` features of each item's rewrite, or ``None``.
        invariance: weight of the invariance term.
    """
    torch = _torch()
    t = {
        k: torch.nn.Parameter(torch.from_numpy(np.array(v, np.float32))) for k, v in params.items()
    }
    # torch takes numpy memory without a copy, but warns on a read-only array (a log built
    # from a catalog's read-only views): those are copied ("W": writable)
    feats = torch.from_numpy(np.require(item_features, np.float32, "W"))
    shift = None  # R(f_i) - f_i: what a rewrite changes in each item's features
    if rewrite_features is not None and invariance > 0:
        shift = torch.from_numpy(np.require(rewrite_features, np.float32, "W")) - feats
    u_t, p_t = torch.from_numpy(users), torch.from_numpy(pos)
    n_t = torch.from_numpy(neg)
    w_t = None if weights is None else torch.from_numpy(np.require(weights, np.float32, "W"))
    # the user table is updated lazily (see LazyAdamRows): a batch touches only its own
    # users' rows, so a retrain costs O(clicks), not O(clicks * users) as a dense Adam step
    # over the whole user table per batch did; the item-side arrays keep a dense Adam
    users_table = LazyAdamRows(t.pop("P").detach(), lr)
    opt = torch.optim.Adam(list(t.values()), lr=lr)
    gen = torch_generator(*seed_key)
    m = users.shape[0]
    # F.embedding rather than tensor indexing: its backward is a fast dense scatter,
    # indexing's (index_put with accumulate) is several times slower on CPU.
    emb = torch.nn.functional.embedding
    for epoch in range(epochs):
        order = torch.randperm(m, generator=gen)
        for start in range(0, m, batch_size):
            idx = order[start : start + batch_size]
            u, i, j = u_t[idx], p_t[idx], n_t[epoch, idx]
            leaf, where = users_table.gather(u)  # the batch's distinct users' rows
            pu = emb(where, leaf)
            vecs = feats @ t["W"]
            qi, qj = emb(i, t["Q"]), emb(j, t["Q"])
            vi, vj = emb(i, vecs) + qi, emb(j, vecs) + qj
            bias = t["b"][:, None]
            x = (pu * (vi - vj)).sum(1) + (emb(i, bias) - emb(j, bias))[:, 0]
            reg = l2 * ((pu**2).sum() + (qi**2).sum() + (qj**2).sum())
            nll = -torch.nn.functional.logsigmoid(x)
            loss = _weighted_mean(nll, None if w_t is None else w_t[idx], self_normalize)
            if shift is not None:  # s(u, R(i)) - s(u, i) = <p_u, (R(f_i) - f_i) W>
                dw = shift @ t["W"]
                gap = torch.cat([(pu * emb(i, dw)).sum(1), (pu * emb(j, dw)).sum(1)])
                loss = loss + invariance * gap.abs().mean()
            opt.zero_grad()
            (loss + reg / idx.shape[0]).backward()
            opt.step()
            users_table.step(leaf.grad)
    out = {k: v.detach().numpy().copy() for k, v in t.items()}
    return {"P": users_table.table.numpy().copy(), **out}
