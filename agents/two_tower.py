"""A content-based two-tower recommender retrained from logs (torch).

Both towers read observable content only; there are no id embeddings. The item tower
maps an item's features ``f_i`` to ``v_i = f_i B``; the user tower maps the mean features
``m_u`` of the user's recent clicks, next to the user's observable profile ``p_u``, to
``e_u = [m_u, p_u] A``. The score is ``<e_u, v_i> + <f_i, w>`` (``w``: a content prior).
A user *is* their history, so whatever the clicked items share -- a topic, or the AIGC
"style" of :mod:`simlab.environments.content` -- is carried into the user vector and
favours items that share it: the channel through which a content-based recommender
can escalate source bias (Zhou et al., "Source Echo Chamber", SIGIR 2025).

``towers: shared`` puts user and item in one space, as Zhou et al.'s recommenders over a
pretrained text encoder do: one map ``W`` reads clicked and candidate features alike,
``e_u = m_u W + p_u P``, ``v_i = f_i W``, and there is no content prior. ``init: identity``
starts ``W`` as the identity, so the untrained model is content similarity ``<m_u, f_i>``
(the encoder's own geometry), and ``warm_start: false`` re-initialises every retrain, as
Zhou et al.'s feedback loop re-initialises its recommender every round.

Every retrain fits BPR on the clicks of the platform's log window. The history of a
training click is the mean features of the same user's up to ``history_length`` previous
clicks *in the window*; serving reads the platform's ``obs.history``. Negatives are drawn
uniformly from the live catalog served at the click's step (``negatives: catalog``; ``log``:
from the items shown in the window). ``source_debias > 0`` adds Zhou et al.'s black-box
invariance term ``|s(u, i) - s(u, R(i))|`` over the batch's items, ``R`` being the content
model's rewrite function. :meth:`TwoTowerAgent.score` scores given items with optionally
edited features, which the ``style-removal`` re-ranker uses to take the shared style
direction out of the scores exactly.

Randomness (initial weights, negatives, batch order) comes from ``simlab.rng`` generators
keyed by ``(seed, stream, retrain index)``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from simlab.batch import PAD, Log, Observation, Slates, lookup_sorted
from simlab.errors import ScenarioError
from simlab.rng import Stream, numpy_generator, torch_generator
from simlab.scenario import ParamsModel

from .base import Agent, RandomUntilTrainedMixin, random_slates, require_torch

__all__ = ["TwoTowerAgent", "history_means"]


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
    m = users.shape[0]
    cs = np.zeros((m + 1, feats.shape[1]))
    np.cumsum(feats, axis=0, out=cs[1:])
    idx = np.arange(m)
    first = np.r_[True, users[1:] != users[:-1]] if m else np.zeros(0, bool)
    start = np.maximum.accumulate(np.where(first, idx, 0)) if m else idx
    lo = np.maximum(start, idx - window)
    count = idx - lo
    means = (cs[idx] - cs[lo]) / np.maximum(count, 1)[:, None]
    return means.astype(np.float32), count


class TwoTowerAgent(RandomUntilTrainedMixin, Agent):
    """Content-based two-tower model retrained with BPR (see module docstring).

    Before its first retrain it serves random slates. It serves from replicas (the model
    and the known item features, published once per retrain); its learner keeps the served
    users' profiles and catalogs from :meth:`record_served`.
    """

    serving = "replica"

    class Params(ParamsModel):
        """Scenario keys of the two-tower agent."""

        factors: int = Field(16, gt=0, le=1024, description="Dimension f of both towers.")
        history_length: int = Field(
            10, gt=0, le=1000, description="Most recent clicks averaged into the user tower."
        )
        negatives: Literal["catalog", "log"] = Field(
            "catalog",
            description="Where BPR negatives come from: the live catalog served at the "
            "click's step, or the items shown in the log window.",
        )
        epochs: int = Field(3, gt=0, description="Passes over the log window per retrain.")
        lr: float = Field(0.02, gt=0, description="Adam learning rate.")
        l2: float = Field(1e-4, ge=0, description="L2 penalty on the batch's tower outputs.")
        batch_size: int = Field(2048, gt=0, description="Clicks per optimisation step.")
        init_scale: float = Field(0.1, gt=0, description="Std of the initial tower weights.")
        towers: Literal["separate", "shared"] = Field(
            "separate",
            description="separate: a user tower A and an item tower B plus a content prior "
            "w; shared: one map W reads clicked and candidate features alike (e_u = m_u W + "
            "p_u P, v_i = f_i W, no prior), user and item in one space as in Zhou et al.'s "
            "recommenders over a pretrained text encoder.",
        )
        warm_start: bool = Field(
            True,
            description="Start each retrain from the last model (false: from the initial "
            "maps, as Zhou et al.'s loop re-initialises the recommender every round).",
        )
        init: Literal["random", "identity"] = Field(
            "random",
            description="Initial feature maps: random (std init_scale), or the identity on "
            "the first min(dim, factors) coordinates -- the model starts as content "
            "similarity <m_u, f_i> (a pretrained encoder's geometry) and is fine-tuned.",
        )
        source_debias: float = Field(
            0.0,
            ge=0,
            description="Weight of Zhou et al.'s black-box invariance term |s(u,i) - "
            "s(u,R(i))|, R the content's rewrite function (0 = off).",
        )
        frozen: bool = Field(
            False,
            description="Never retrained: serves its initial maps from the first step (with "
            "init: identity, content similarity <m_u, f_i>) -- a control that separates "
            "what retraining adds from what the users' histories do.",
        )
        history_frozen_at: int | None = Field(
            None,
            ge=0,
            description="Score users with their click history as of this step (the last one "
            "served at or before it), not their live history: a control that cuts the loop "
            "through users' histories (None = live histories).",
        )

    _rewriter: Any = None

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._random = Stream(self.seed, "agent/two-tower/random")
        self._num_retrains = 0
        self._model: dict[str, np.ndarray] | None = None
        # features of items seen (log windows and served catalogs), to read histories
        self._known_ids = np.zeros(0, np.int64)
        self._known_feats = np.zeros((0, ctx.dim), np.float32)
        # the live catalog's ids at each recent served step, for per-step negatives
        self._catalogs: dict[int, np.ndarray] = {}
        self._profile_store = np.zeros((ctx.num_users, 0), np.float32)
        # with history_frozen_at: each user's history as last served by that step
        self._frozen_history: np.ndarray | None = None

    def bind_rewriter(self, rewriter: Any) -> None:
        """Receive the content model's black-box rewrite function (used by source_debias)."""
        self._rewriter = rewriter

    def serving_blocker(self) -> str | None:
        """Histories frozen at a step are kept by ``act`` per user: central serving."""
        return "history_frozen_at keeps histories in act" if self.params.history_frozen_at else None

    def serving_state(self) -> dict[str, Any]:
        """The model arrays and the known items' ids ``(n,)`` and features ``(n, d)``."""
        state = {"known_ids": self._known_ids, "known_feats": self._known_feats}
        if self._model is not None:
            state.update({f"model.{k}": v for k, v in self._model.items()})
        return state

    def load_serving_state(self, state: dict[str, Any]) -> None:
        """Serve the published model (what the replica kept for learning is dropped)."""
        self._known_ids = np.asarray(state["known_ids"])
        self._known_feats = np.asarray(state["known_feats"])
        model = {k[6:]: np.asarray(v) for k, v in state.items() if k.startswith("model.")}
        self._model = model or self._model  # a frozen replica keeps its initial maps
        self._catalogs = {}

    def serving_record(self, obs: Observation) -> dict[str, np.ndarray]:
        """The served users' ids ``(B,)`` and profiles ``(B, p)`` (retraining reads them)."""
        return {"user_ids": obs.user_ids, "features": obs.user_features}

    def record_served(self, obs_step: int, record: dict[str, np.ndarray], catalog: Any) -> None:
        """Keep the catalog, its features and the served profiles as :meth:`act` would."""
        self._catalogs[int(obs_step)] = catalog.item_ids
        self._remember(catalog.item_ids, catalog.features)
        feats = record["features"]
        if self._profile_store.shape[1] != feats.shape[1]:
            self._profile_store = np.zeros((self.ctx.num_users, feats.shape[1]), np.float32)
        self._profile_store[record["user_ids"]] = feats
        if self._model is None and self.params.frozen:
            self._model = self._initial_model(catalog.features.shape[1], feats.shape[1])

    # ------------------------------------------------------------------ features
    def _remember(self, ids: np.ndarray, feats: np.ndarray) -> None:
        ids_all = np.concatenate([ids, self._known_ids])  # newest first wins in unique
        feats_all = np.concatenate([feats.astype(np.float32), self._known_feats])
        keep, first = np.unique(ids_all, return_index=True)
        self._known_ids, self._known_feats = keep, feats_all[first]

    def _forget(self, log: Log) -> None:
        """Drop catalogs older than the log window and features of items no longer needed."""
        first = int(log.step.min())
        self._catalogs = {k: v for k, v in self._catalogs.items() if k >= first}
        held = [] if self._frozen_history is None else [self._frozen_history.ravel()]
        keep = np.unique(np.concatenate([log.feature_ids, *self._catalogs.values(), *held]))
        keep = keep[keep != PAD]
        pos, found = lookup_sorted(self._known_ids, keep)
        self._known_ids, self._known_feats = keep[found], self._known_feats[pos[found]]

    def _features_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features ``(*ids.shape, d)`` of known items and which ids were known."""
        pos, found = lookup_sorted(self._known_ids, ids)
        found &= ids != PAD
        out = np.zeros(ids.shape + (self._known_feats.shape[1],), np.float32)
        out[found] = self._known_feats[pos[found]]
        return out, found

    def _history(self, obs: Observation) -> np.ndarray:
        """``(B, H')`` the click histories the user tower reads (live, or frozen at a step)."""
        hist = obs.history[:, : self.params.history_length]
        at = self.params.history_frozen_at
        if at is None:
            return hist
        if self._frozen_history is None:
            self._frozen_history = np.full((self.ctx.num_users, hist.shape[1]), PAD, np.int64)
        if obs.step <= at:
            self._frozen_history[obs.user_ids] = hist
        return self._frozen_history[obs.user_ids]

    def user_inputs(self, obs: Observation, transform: Any = None) -> np.ndarray:
        """``(B, d + p)`` user-tower inputs: mean recent-click features and the profile.

        ``transform`` maps feature vectors (``(..., d)`` -> ``(..., d)``) before they are
        averaged, as a re-ranker that edits features (``isotropy``) needs on both towers.
        """
        feats, found = self._features_of(self._history(obs))
        if transform is not None:
            feats = np.where(found[..., None], transform(feats), 0.0)
        count = found.sum(axis=1, keepdims=True)
        mean = feats.sum(axis=1) / np.maximum(count, 1)
        return np.concatenate([mean, obs.user_features], axis=1).astype(np.float32)

    # ------------------------------------------------------------------ serving
    def score(
        self,
        obs: Observation,
        item_ids: np.ndarray,
        features: np.ndarray | None = None,
        transform: Any = None,
    ) -> np.ndarray:
        """``(B, L)`` scores of items ``item_ids`` (B, L) for the served users.

        ``features`` (B, L, d) replaces the items' catalog features (e.g. with a direction
        removed); ``transform`` (a map of feature vectors) is applied to every feature the
        model reads, the clicked items' in the user tower and the listed items'. Before the
        first retrain every score is 0.
        """
        if self._model is None:
            return np.zeros(item_ids.shape, np.float32)
        m = self._model
        if features is None:
            features = obs.catalog.features[obs.catalog.rows(item_ids)]
        if transform is not None:
            features = transform(features)
        users = self.user_inputs(obs, transform) @ m["A"]
        v = features @ m["B"]
        return (np.einsum("bf,blf->bl", users, v) + features @ m["w"]).astype(np.float32)

    def act(self, obs: Observation) -> Slates:
        """Top candidates by ``<e_u, v_i> + <f_i, w>``; random before the first retrain."""
        cat = obs.catalog
        self._catalogs[int(obs.step)] = cat.item_ids
        self._remember(cat.item_ids, cat.features)
        if self._profile_store.shape[1] != obs.user_features.shape[1]:
            self._profile_store = np.zeros(
                (self.ctx.num_users, obs.user_features.shape[1]), np.float32
            )
        self._profile_store[obs.user_ids] = obs.user_features
        if self._model is None and self.params.frozen:  # the initial maps, for good
            self._model = self._initial_model(cat.features.shape[1], obs.user_features.shape[1])
        if self._model is None:
            return Slates(obs.user_ids, random_slates(self._random, obs))
        torch = _torch()
        m = self._model
        users = torch.from_numpy(self.user_inputs(obs) @ m["A"])
        if obs.shared_candidates:
            feats = cat.features[cat.rows(obs.candidates[0])]
            scores = users @ torch.from_numpy((feats @ m["B"]).T.copy())
            scores += torch.from_numpy(feats @ m["w"])
        else:
            feats = cat.features[cat.rows(obs.candidates)]
            v = torch.from_numpy(feats @ m["B"])
            scores = torch.einsum("bf,bcf->bc", users, v) + torch.from_numpy(feats @ m["w"])
        idx = torch.topk(scores, obs.slate_size, dim=1, sorted=True).indices.numpy()
        return Slates(obs.user_ids, np.take_along_axis(obs.candidates, idx, axis=1))

    # ------------------------------------------------------------------ training
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
        u = gen.random((self.params.epochs, steps.shape[0]))
        pool = log.feature_ids
        out = pool[(u * pool.shape[0]).astype(np.int64)]
        if self.params.negatives == "log":
            return out
        window = sorted(k for k in self._catalogs if k >= int(log.step.min()))
        if not window:
            return out
        sizes = np.array([self._catalogs[k].shape[0] for k in window])
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
                loss = loss + p.l2 * ((e**2).sum() + (vi**2).sum() + (vj**2).sum()) / idx.shape[0]
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

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Model arrays, remembered item features, recent catalogs and the retrain counter."""
        state: dict[str, Any] = {
            "num_retrains": self._num_retrains,
            "known_ids": self._known_ids,
            "known_feats": self._known_feats,
            "catalog_steps": np.array(sorted(self._catalogs), np.int64),
            "catalogs": [self._catalogs[k] for k in sorted(self._catalogs)],
            "profile_store": self._profile_store.copy(),
            "frozen_history": None if self._frozen_history is None else self._frozen_history.copy(),
        }
        if self._model is not None:
            state.update({f"model.{k}": v for k, v in self._model.items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._num_retrains = int(state["num_retrains"])
        for key in ("known_ids", "known_feats", "profile_store"):
            setattr(self, f"_{key}", np.asarray(state[key]))
        self._catalogs = {
            int(k): np.asarray(v, np.int64)
            for k, v in zip(state["catalog_steps"], state["catalogs"], strict=True)
        }
        model = {
            k.split(".", 1)[1]: np.asarray(v) for k, v in state.items() if k.startswith("model.")
        }
        self._model = model or None
        frozen = state.get("frozen_history")
        self._frozen_history = None if frozen is None else np.asarray(frozen, np.int64).copy()
