"""Models retrained from logs in torch. This foundation ships matrix factorisation (BPR).

:class:`MatrixFactorizationAgent` is a hybrid MF: the vector of item ``i`` is
``v_i = f_i W + q_i`` (observable features ``f_i`` through a learned map ``W``, plus an id
embedding ``q_i`` for items seen in the log window) and the score of user ``u`` is
``<p_u, v_i> + b_i``. New items are scored from their features alone (cold start), so the
recommender keeps serving a changing catalog. Every retrain fits BPR on the clicks in the
platform's log window (one uniformly drawn log item as the negative of each click), warm
starting user vectors and ``W`` from the previous model. The feedback loop is real: the
model only learns from what it showed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import Log, Observation, Slates, lookup_sorted
from simlab.errors import DependencyNotInstalled
from simlab.rng import Stream, numpy_generator, torch_generator
from simlab.scenario import ParamsModel

from .base import Agent, random_slates

__all__ = ["MatrixFactorizationAgent", "train_bpr"]


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a declared dependency
        raise DependencyNotInstalled(
            "the mf agent needs torch: pip install torch==2.13.0 (CPU build)"
        ) from e
    return torch


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
) -> dict[str, np.ndarray]:
    """Fit BPR ``-log sigmoid(s(u, pos) - s(u, neg))`` with Adam; return the new params.

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
    """
    torch = _torch()
    t = {
        k: torch.nn.Parameter(torch.from_numpy(np.array(v, np.float32))) for k, v in params.items()
    }
    feats = torch.from_numpy(np.asarray(item_features, np.float32))
    u_t, p_t = torch.from_numpy(users), torch.from_numpy(pos)
    n_t = torch.from_numpy(neg)
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
            pu = emb(u, t["P"])
            vecs = feats @ t["W"]
            qi, qj = emb(i, t["Q"]), emb(j, t["Q"])
            vi, vj = emb(i, vecs) + qi, emb(j, vecs) + qj
            bias = t["b"][:, None]
            x = (pu * (vi - vj)).sum(1) + (emb(i, bias) - emb(j, bias))[:, 0]
            reg = l2 * ((pu**2).sum() + (qi**2).sum() + (qj**2).sum())
            loss = -torch.nn.functional.logsigmoid(x).mean() + reg / idx.shape[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {k: v.detach().numpy().copy() for k, v in t.items()}


class MatrixFactorizationAgent(Agent):
    """Hybrid BPR matrix factorisation retrained from the log window (see module docstring).

    Before its first retrain it serves random slates.
    """

    class Params(ParamsModel):
        """Scenario keys of the mf agent."""

        factors: int = Field(16, gt=0, le=1024, description="Latent dimension f.")
        epochs: int = Field(3, gt=0, description="Passes over the log window per retrain.")
        lr: float = Field(0.02, gt=0, description="Adam learning rate.")
        l2: float = Field(1e-4, ge=0, description="L2 penalty on user and item vectors.")
        batch_size: int = Field(2048, gt=0, description="Clicks per optimisation step.")
        init_scale: float = Field(0.1, gt=0, description="Std of the initial vectors.")

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._random = Stream(self.seed, "agent/mf/random")
        self._num_retrains = 0
        self._model: dict[str, np.ndarray] | None = None
        self._item_ids = np.zeros(0, np.int64)

    # ------------------------------------------------------------------ learning
    def _init_params(self, num_items: int, dim_features: int) -> dict[str, np.ndarray]:
        p, f = self.params, self.params.factors
        gen = numpy_generator(self.seed, "agent/mf/init", self._num_retrains)
        if self._model is None:
            users = gen.normal(0, p.init_scale, (self.ctx.num_users, f))
            w = gen.normal(0, p.init_scale, (dim_features, f))
        else:
            users, w = self._model["P"], self._model["W"]
        return {
            "P": users,
            "W": w,
            "Q": np.zeros((num_items, f)),
            "b": np.zeros(num_items),
        }

    def retrain(self, log: Log) -> None:
        """Fit BPR on the clicks of the log window."""
        clicked = log.clicked_pos >= 0
        if not clicked.any() or log.feature_ids.size < 2:
            return
        users = log.user_ids[clicked]
        pos = np.searchsorted(log.feature_ids, log.clicked_items[clicked])
        n = log.feature_ids.shape[0]
        gen = numpy_generator(self.seed, "agent/mf/negatives", self._num_retrains)
        neg = gen.integers(0, n, size=(self.params.epochs, users.shape[0]))
        params = self._init_params(n, log.features.shape[1])
        self._model = train_bpr(
            users.astype(np.int64),
            pos.astype(np.int64),
            neg.astype(np.int64),
            params,
            log.features,
            epochs=self.params.epochs,
            lr=self.params.lr,
            l2=self.params.l2,
            batch_size=self.params.batch_size,
            seed_key=(self.seed, "agent/mf/batches", self._num_retrains),
        )
        self._item_ids = log.feature_ids.copy()
        self._num_retrains += 1

    # ------------------------------------------------------------------ serving
    def item_vectors(
        self, item_ids: np.ndarray, features: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(n, f)`` vectors and ``(n,)`` biases of items (features-only when unseen)."""
        m = self._model
        v = features @ m["W"]
        bias = np.zeros(item_ids.shape[0], np.float32)
        pos, known = lookup_sorted(self._item_ids, item_ids)
        if known.any():
            v[known] += m["Q"][pos[known]]
            bias[known] = m["b"][pos[known]]
        return v, bias

    def act(self, obs: Observation) -> Slates:
        """Top candidates by ``<p_u, v_i> + b_i``; random before the first retrain."""
        if self._model is None:
            return Slates(obs.user_ids, random_slates(self._random, obs))
        cat = obs.catalog
        if obs.shared_candidates:
            ids = obs.candidates[0]
            inverse = None
        else:
            ids, inverse = np.unique(obs.candidates, return_inverse=True)
        v, bias = self.item_vectors(ids, cat.features[cat.rows(ids)])
        torch = _torch()
        scores = torch.from_numpy(self._model["P"][obs.user_ids]) @ torch.from_numpy(v.T)
        scores += torch.from_numpy(bias)
        if inverse is not None:
            scores = torch.gather(
                scores, 1, torch.from_numpy(inverse.reshape(obs.candidates.shape))
            )
        # torch.topk is several times faster than numpy's argpartition on (B, C) scores
        idx = torch.topk(scores, obs.slate_size, dim=1, sorted=True).indices.numpy()
        return Slates(obs.user_ids, np.take_along_axis(obs.candidates, idx, axis=1))

    def state_dict(self) -> dict[str, Any]:
        """Model arrays, known item ids and the retrain counter."""
        state: dict[str, Any] = {"num_retrains": self._num_retrains, "item_ids": self._item_ids}
        if self._model is not None:
            state.update({f"model.{k}": v for k, v in self._model.items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._num_retrains = int(state["num_retrains"])
        self._item_ids = np.asarray(state["item_ids"], np.int64)
        model = {
            k.split(".", 1)[1]: np.asarray(v) for k, v in state.items() if k.startswith("model.")
        }
        self._model = model or None
