"""Training of the two-tower agent: BPR on the log window, its histories and negatives.

:func:`history_means` (the user-tower input of each training click) and
:class:`_TwoTowerTraining`, the retraining half of
:class:`simlab.agents.two_tower.TwoTowerAgent` (a mixin): initial maps, negatives from the
live catalog or the log, the BPR fit with Zhou et al.'s optional source-debias term. See
the module docstring of :mod:`simlab.agents.two_tower` for the model.
"""

from __future__ import annotations

import numpy as np

from simlab.batch import Log
from simlab.errors import ScenarioError
from simlab.rng import numpy_generator, torch_generator

from .base import require_torch
from .neural_train import check_trained

__all__ = ["history_means"]


def _torch():
    return require_torch("the two-tower agent")


def history_means(
    users: np.ndarray, feats: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean features of each click's up to ``window`` previous clicks by the same user.

    Args:
        users: ``(M,)`` user of each click, grouped by user and in time order within a user.
        feats: ``(M, d)`` features of each clicked item.
        window: how many previous clicks to average.

    Returns:
        ``(M, d)`` means (zero when there is no previous click) and ``(M,)`` counts.

    >>> m, c = history_means(np.array([3, 3, 3, 5]), np.array([[1.0], [3.0], [5.0], [7.0]]), 2)
    >>> m[:, 0].tolist(), c.tolist()
    ([0.0, 1.0, 2.0, 0.0], [0, 1, 2, 0])
    """
    m = users.size
    cs = np.zeros((m + 1, feats.shape[1]))
    np.cumsum(feats, axis=0, out=cs[1:])
    idx = np.arange(m)
    first = np.r_[True, users[1:] != users[:-1]] if m else np.zeros(0, bool)
    start = np.maximum.accumulate(np.where(first, idx, 0)) if m else idx
    lo = np.maximum(start, idx - window)
    count = idx - lo
    means = (cs[idx] - cs[lo]) / np.maximum(count, 1)[:, None]
    return means.astype(np.float32), count


class _TwoTowerTraining:
    """Retraining of :class:`~simlab.agents.two_tower.TwoTowerAgent` (a mixin).

    Expects the agent's ``params``, ``seed``, ``_model``, ``_num_retrains``, ``_catalogs``,
    ``_profile_store``, ``_rewriter`` and its feature store (``_remember``, ``_forget``,
    ``_features_of``).
    """

    def _init_params(self, d: int, p: int) -> dict[str, np.ndarray]:
        if self._model is not None and self.params.warm_start:
            keep = ("A", "w") if self.params.towers == "shared" else ("A", "B", "w")
            return {k: self._model[k] for k in keep}
        gen = numpy_generator(self.seed, "agent/two-tower/init", 0)
        f, s = self.params.factors, self.params.init_scale
        a = gen.normal(0, s, (d + p, f))
        b = gen.normal(0, s, (d, f))
        if self.params.init == "identity":
            a[:d] = b = np.eye(d, f)
        if self.params.towers == "shared":  # the item map is the user map's feature block
            return {"A": np.concatenate([b, a[d:]]), "w": np.zeros(d)}
        return {"A": a, "B": b, "w": np.zeros(d)}

    def _initial_model(self, d: int, p: int) -> dict[str, np.ndarray]:
        """The initial maps as a servable model (``frozen``)."""
        model = {k: np.asarray(v, np.float32) for k, v in self._init_params(d, p).items()}
        if self.params.towers == "shared":
            model["B"] = model["A"][:d].copy()
        return model

    def _negatives(self, log: Log, steps: np.ndarray) -> np.ndarray:
        """``(epochs, M)`` negative item ids for clicks made at ``steps``.

        ``catalog``: uniform over the live catalog served at the click's own step (a
        catalog whose make-up changes over the window is matched click by click); ``log``
        (or a step never served, e.g. after a restore): uniform over the window's shown items.
        """
        gen = numpy_generator(self.seed, "agent/two-tower/negatives", self._num_retrains)
        u = gen.random((self.params.epochs, steps.size))
        pool = log.feature_ids
        out = pool[(u * pool.size).astype(np.int64)]
        if self.params.negatives == "log":
            return out
        window = sorted(k for k in self._catalogs if k >= int(log.step.min()))
        if not window:
            return out
        sizes = np.array([self._catalogs[k].size for k in window])
        offsets = np.r_[0, np.cumsum(sizes)[:-1]]
        flat = np.concatenate([self._catalogs[k] for k in window])
        at = np.searchsorted(window, steps)
        known = (at < len(window)) & (np.asarray(window)[np.minimum(at, len(window) - 1)] == steps)
        at = np.minimum(at, len(window) - 1)
        pick = flat[offsets[at] + (u * sizes[at]).astype(np.int64)]
        return np.where(known, pick, out)

    def retrain(self, log: Log) -> None:
        """Fit BPR on the log window's clicks, each with its in-window history."""
        clicked = log.clicked_pos >= 0
        if self.params.frozen:  # never trained: only keep what histories need
            if log.feature_ids.size:
                self._remember(log.feature_ids, log.features)
                self._forget(log)
            return
        if not clicked.any() or log.feature_ids.size < 2:
            return
        self._remember(log.feature_ids, log.features)
        users = log.user_ids[clicked]
        items = log.clicked_items[clicked]
        steps = log.step[clicked]
        order = np.lexsort((steps, users))
        users, items, steps = users[order], items[order], steps[order]
        pos_feats = log.features[np.searchsorted(log.feature_ids, items)]
        hist, _ = history_means(users, pos_feats, self.params.history_length)
        profile = self._profiles(users)
        neg_ids = self._negatives(log, steps)
        pool_ids = np.unique(neg_ids)
        pool_feats, _ = self._features_of(pool_ids)
        neg = np.searchsorted(pool_ids, neg_ids)
        shift_pos = shift_neg = None
        if self.params.source_debias > 0:
            shift_pos = self._rewritten(items, pos_feats) - pos_feats
            shift_neg = self._rewritten(pool_ids, pool_feats) - pool_feats
        self._forget(log)
        self._model = self._fit(
            np.concatenate([hist, profile], axis=1),
            pos_feats,
            pool_feats,
            neg,
            shift_pos,
            shift_neg,
        )
        check_trained("two-tower", self._model, self.params, self._num_retrains)
        self._num_retrains += 1

    def _profiles(self, users: np.ndarray) -> np.ndarray:
        """Observable profiles of ``users`` as last served (every logged user was served)."""
        return self._profile_store[users]

    def _rewritten(self, ids: np.ndarray, feats: np.ndarray) -> np.ndarray:
        if self._rewriter is None:
            raise ScenarioError(
                "agents: two-tower's source_debias needs the content model's rewrite function "
                "(the `creators` content model has one); set source_debias: 0"
            )
        return np.asarray(self._rewriter(ids, feats), np.float32)

    def _fit(self, x_user, pos_feats, pool_feats, neg, shift_pos, shift_neg):
        torch = _torch()
        p = self.params
        d = pos_feats.shape[1]
        t = {
            k: torch.nn.Parameter(torch.from_numpy(np.array(v, np.float32)))
            for k, v in self._init_params(d, x_user.shape[1] - d).items()
        }
        xu, fp = torch.from_numpy(x_user), torch.from_numpy(np.asarray(pos_feats, np.float32))
        pool = torch.from_numpy(np.asarray(pool_feats, np.float32))
        neg_t = torch.from_numpy(neg)
        sp = None if shift_pos is None else torch.from_numpy(shift_pos)
        sn = None if shift_neg is None else torch.from_numpy(shift_neg)
        shared = p.towers == "shared"
        if shared:  # one map for both sides, no content prior
            t["w"].requires_grad_(False)
        opt = torch.optim.Adam([v for v in t.values() if v.requires_grad], lr=p.lr)
        gen = torch_generator(self.seed, "agent/two-tower/batches", self._num_retrains)
        m = xu.shape[0]
        for epoch in range(p.epochs):
            order = torch.randperm(m, generator=gen)
            for start in range(0, m, p.batch_size):
                idx = order[start : start + p.batch_size]
                j = neg_t[epoch, idx]
                e = xu[idx] @ t["A"]
                item_map = t["A"][:d] if shared else t["B"]
                fi, fj = fp[idx], pool[j]
                vi, vj = fi @ item_map, fj @ item_map
                x = (e * (vi - vj)).sum(1) + (fi - fj) @ t["w"]
                loss = -torch.nn.functional.logsigmoid(x).mean()
                loss = loss + p.l2 * ((e**2).sum() + (vi**2).sum() + (vj**2).sum()) / idx.numel()
                if sp is not None:  # s(u, R(i)) - s(u, i) = <e_u, (R(f)-f) B> + <R(f)-f, w>
                    di, dj = sp[idx], sn[j]
                    gap = torch.cat(
                        [
                            (e * (di @ item_map)).sum(1) + di @ t["w"],
                            (e * (dj @ item_map)).sum(1) + dj @ t["w"],
                        ]
                    )
                    loss = loss + p.source_debias * gap.abs().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        out = {k: v.detach().numpy().copy() for k, v in t.items()}
        if shared:
            out["B"] = out["A"][:d].copy()
        return out
