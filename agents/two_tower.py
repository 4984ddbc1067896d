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
(the encoder's own geometry) plus ``p_u P`` with the random profile map ``P`` (std
``init_scale``; a tiny one leaves the similarity alone), and ``warm_start: false``
re-initialises every retrain, as Zhou et al.'s feedback loop re-initialises its recommender
every round.

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

from simlab.batch import PAD, Log, Observation, Slates, lookup_sorted, row_blocks
from simlab.params import INIT_SCALE_MAX, LEARNING_RATE_MAX
from simlab.rng import Stream
from simlab.scenario import ParamsModel

from .base import Agent, RandomUntilTrainedMixin, random_slates
from .two_tower_train import _torch, _TwoTowerTraining, history_means

__all__ = ["TwoTowerAgent", "history_means"]


class TwoTowerAgent(_TwoTowerTraining, RandomUntilTrainedMixin, Agent):
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
        epochs: int = Field(
            3, gt=0, le=10_000, description="Passes over the log window per retrain."
        )
        lr: float = Field(0.02, gt=0, le=LEARNING_RATE_MAX, description="Adam learning rate.")
        l2: float = Field(1e-4, ge=0, description="L2 penalty on the batch's tower outputs.")
        batch_size: int = Field(2048, gt=0, description="Clicks per optimisation step.")
        init_scale: float = Field(
            0.1, gt=0, le=INIT_SCALE_MAX, description="Std of the initial tower weights."
        )
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
            "similarity <m_u, f_i> (a pretrained encoder's geometry) and is fine-tuned; with "
            "towers: shared the profile map P stays random (std init_scale).",
        )
        source_debias: float = Field(
            0.0,
            ge=0,
            description="Weight of Zhou et al.'s black-box invariance term |s(u,i) - "
            "s(u,R(i))|, R the content's rewrite function (0 = off); the item-side term "
            "only, without the paper's user-side term and entropy regulariser.",
        )
        frozen: bool = Field(
            False,
            description="Never retrained: serves its initial maps from the first step (with "
            "init: identity and towers: shared, <m_u + p_u P, f_i>: content similarity plus "
            "a fixed random projection P of the user's profile; a tiny init_scale leaves the "
            "similarity alone) -- a control that separates what retraining adds from what "
            "the users' histories do.",
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

    def learner_blocker(self) -> str | None:
        """``source_debias`` rewrites items with the content model, in the trial actor."""
        return "source_debias calls the content model" if self.params.source_debias > 0 else None

    def serving_blocker(self) -> str | None:
        """Histories frozen at a step are kept by ``act`` per user: central serving."""
        frozen = self.params.history_frozen_at is not None  # step 0 freezes them too
        return "history_frozen_at keeps histories in act" if frozen else None

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
        model = {
            k.removeprefix("model."): np.asarray(v)
            for k, v in state.items()
            if k.startswith("model.")
        }
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
        if self.params.history_frozen_at is not None:
            self._history(obs)  # freeze histories served before the first model too
        if self._model is None and self.params.frozen:  # the initial maps, for good
            self._model = self._initial_model(cat.features.shape[1], obs.user_features.shape[1])
        if self._model is None:
            return Slates(obs.user_ids, random_slates(self._random, obs))
        torch = _torch()
        m, cands = self._model, obs.candidates
        users = torch.from_numpy(self.user_inputs(obs) @ m["A"])
        if obs.shared_candidates:
            feats = cat.features[cat.rows(obs.candidate_pool)]
            vt, bias = torch.from_numpy((feats @ m["B"]).T.copy()), torch.from_numpy(feats @ m["w"])
        idx = np.empty((cands.shape[0], obs.slate_size), np.int64)
        # blocks of users (row_blocks): a block's scores are ranked while in cache; each
        # user's scores are those of all users at once
        for sub in row_blocks(cands.shape[0], cands.shape[1], _SCORE_BLOCK):
            if obs.shared_candidates:
                scores = users[sub] @ vt
                scores += bias
            else:
                feats = cat.features[cat.rows(cands[sub])]
                v = torch.from_numpy(feats @ m["B"])
                scores = torch.einsum("bf,bcf->bc", users[sub], v)
                scores += torch.from_numpy(feats @ m["w"])
            idx[sub] = torch.topk(scores, obs.slate_size, dim=1, sorted=True).indices.numpy()
        return Slates(obs.user_ids, np.take_along_axis(cands, idx, axis=1))

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
            setattr(self, f"_{key}", np.array(state[key]))  # its own: written in place
        self._catalogs = {
            int(k): np.asarray(v, np.int64)
            for k, v in zip(state["catalog_steps"], state["catalogs"], strict=True)
        }
        model = {
            k.removeprefix("model."): np.asarray(v)
            for k, v in state.items()
            if k.startswith("model.")
        }
        self._model = model or None
        frozen = state.get("frozen_history")
        self._frozen_history = None if frozen is None else np.asarray(frozen, np.int64).copy()


_SCORE_BLOCK = 1 << 16
"""(user, item) scores per block when the two-tower agent ranks its candidates."""
