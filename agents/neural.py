"""Models retrained from logs in torch: hybrid BPR matrix factorisation and GRU4Rec.

:class:`MatrixFactorizationAgent` is a hybrid MF: the vector of item ``i`` is
``v_i = f_i W + q_i`` (observable features ``f_i`` through a learned map ``W``, plus an id
embedding ``q_i`` for items seen in the log window) and the score of user ``u`` is
``<p_u, v_i> + b_i``. New items are scored from their features alone (cold start), so the
recommender keeps serving a changing catalog. Every retrain fits BPR on the clicks in the
platform's log window (one uniformly drawn log item as the negative of each click), warm
starting user vectors and ``W`` from the previous model. The feedback loop is real: the
model only learns from what it showed.

:class:`GRU4RecAgent` (Hidasi et al., "Session-based Recommendations with Recurrent Neural
Networks", ICLR 2016) reads a user's recent clicks instead of a user id: a GRU runs over
the same hybrid item vectors, oldest click first, from a learned no-history state, and its
final hidden state is scored against every candidate by dot product.

Both take ``debias: ips | snips``, which weights every training click by the inverse of
its item's estimated exposure propensity in the log window (Saito et al., "Unbiased
Recommender Learning from Missing-Not-At-Random Implicit Feedback", WSDM 2020; the
propensity model of Schnabel et al. 2016, see :func:`exposure_propensity`). Items the
recommender already shows everywhere count less, rarely shown items that still got
clicked count more, which counteracts the loop's rich-get-richer exposure.

All randomness (initial weights, negatives, batch order) comes from ``simlab.rng``
generators keyed by ``(seed, stream, retrain index)``; torch's global RNG is never touched.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import PAD, Log, Observation, Slates, lookup_sorted, row_blocks
from simlab.errors import ScenarioError
from simlab.params import INIT_SCALE_MAX, LEARNING_RATE_MAX
from simlab.rng import Stream, numpy_generator
from simlab.scenario import ParamsModel

from .base import Agent, RandomUntilTrainedMixin, random_slates
from .gru4rec_model import _GRU_KEYS, _gru_states, click_sequences, train_gru4rec
from .neural_train import (
    DebiasParams,
    _torch,
    check_trained,
    click_weights,
    exposure_propensity,
    train_bpr,
)

__all__ = [
    # agents
    "MatrixFactorizationAgent",
    "GRU4RecAgent",
    # training and debiasing helpers
    "train_bpr",
    "train_gru4rec",
    "click_sequences",
    "exposure_propensity",
    "click_weights",
    "DebiasParams",
]


# ----------------------------------------------------------------------------- shared serving
class _HybridItemAgent(RandomUntilTrainedMixin, Agent):
    """Shared by the torch agents: hybrid item vectors, top-K serving and the state dict.

    A subclass sets ``_model`` (arrays ``W (d, f)``, ``Q (n, f)``, ``b (n,)`` and its own)
    and ``_item_ids`` (the ``n`` sorted ids of the last log window) in ``retrain``.
    """

    _stream_name: str = "agent/torch/random"
    serving = "replica"  # model arrays, published once per retrain
    fixed_params = ("factors",)  # the model arrays' width (a fork cannot change it)

    def __init__(self, params: ParamsModel, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._random = Stream(self.seed, self._stream_name)
        self._num_retrains = 0
        self._model: dict[str, np.ndarray] | None = None
        self._item_ids = np.zeros(0, np.int64)

    def item_vectors(
        self, item_ids: np.ndarray, features: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(n, f)`` vectors and ``(n,)`` biases of items (features-only when unseen)."""
        m = self._model
        v = features @ m["W"]
        bias = np.zeros(item_ids.size, np.float32)
        pos, known = lookup_sorted(self._item_ids, item_ids)
        if known.any():
            v[known] += m["Q"][pos[known]]
            bias[known] = m["b"][pos[known]]
        return v, bias

    def _top_k(self, obs: Observation, users: np.ndarray) -> Slates:
        """Top candidates by ``<users[b], v_i> + b_i`` for ``(B, f)`` user vectors."""
        cat = obs.catalog
        if obs.shared_candidates:
            ids = obs.candidate_pool
            inverse = None
        else:
            ids, inverse = np.unique(obs.candidates, return_inverse=True)
        v, bias = self.item_vectors(ids, cat.features[cat.rows(ids)])
        torch = _torch()
        vt, bias = torch.from_numpy(v.T), torch.from_numpy(bias)
        users = torch.from_numpy(np.ascontiguousarray(users))
        cols = None if inverse is None else torch.from_numpy(inverse.reshape(obs.candidates.shape))
        idx = np.empty((users.shape[0], obs.slate_size), np.int64)
        # blocks of users (row_blocks): a block's scores are ranked while in cache; each
        # user's scores are those of all users at once
        for sub in row_blocks(users.shape[0], ids.shape[0], _SCORE_BLOCK):
            scores = users[sub] @ vt
            scores += bias
            if cols is not None:
                scores = torch.gather(scores, 1, cols[sub])
            # torch.topk is several times faster than numpy's argpartition on (B, C) scores
            idx[sub] = torch.topk(scores, obs.slate_size, dim=1, sorted=True).indices.numpy()
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
            k.removeprefix("model."): np.asarray(v)
            for k, v in state.items()
            if k.startswith("model.")
        }
        self._model = model or None


class MatrixFactorizationAgent(_HybridItemAgent):
    """Hybrid BPR matrix factorisation retrained from the log window (see module docstring).

    With ``debias: ips`` or ``snips`` each click's BPR loss is weighted by ``1 / P_i`` of
    the clicked item (:func:`exposure_propensity`); with an unclicked negative this is the
    unbiased pairwise estimator of Saito (ICTIR 2020, "Unbiased Pairwise Learning from
    Biased Implicit Feedback"). Before its first retrain it serves random slates.
    """

    _stream_name = "agent/mf/random"

    class Params(DebiasParams):
        """Scenario keys of the mf agent."""

        factors: int = Field(16, gt=0, le=1024, description="Latent dimension f.")
        epochs: int = Field(
            3, gt=0, le=10_000, description="Passes over the log window per retrain."
        )
        lr: float = Field(0.02, gt=0, le=LEARNING_RATE_MAX, description="Adam learning rate.")
        l2: float = Field(1e-4, ge=0, description="L2 penalty on user and item vectors.")
        batch_size: int = Field(2048, gt=0, description="Clicks per optimisation step.")
        init_scale: float = Field(
            0.1, gt=0, le=INIT_SCALE_MAX, description="Std of the initial vectors."
        )
        source_debias: float = Field(
            0.0,
            ge=0,
            description="Weight of Zhou et al.'s black-box invariance term |s(u,i) - "
            "s(u,R(i))|, R the content's rewrite function (0 = off).",
        )

    _rewriter: Any = None

    def bind_rewriter(self, rewriter: Any) -> None:
        """Receive the content model's black-box rewrite function (used by source_debias)."""
        self._rewriter = rewriter

    def learner_blocker(self) -> str | None:
        """``source_debias`` rewrites items with the content model, in the trial actor."""
        return "source_debias calls the content model" if self.params.source_debias > 0 else None

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
        """Fit BPR on the clicks of the log window (weighted when debiasing)."""
        clicked = log.clicked_pos >= 0
        if not clicked.any() or log.feature_ids.size < 2:
            return
        users = log.user_ids[clicked]
        items = log.clicked_items[clicked]
        pos = np.searchsorted(log.feature_ids, items)
        n = log.feature_ids.size
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
            weights=click_weights(log, items, self.params),
            self_normalize=self.params.debias == "snips",
            rewrite_features=self._rewritten(log),
            invariance=self.params.source_debias,
        )
        check_trained("mf", self._model, self.params, self._num_retrains)
        self._item_ids = log.feature_ids.copy()
        self._num_retrains += 1

    def _rewritten(self, log: Log) -> np.ndarray | None:
        """Features of the log items' rewrites when source debiasing is on."""
        if self.params.source_debias <= 0:
            return None
        if self._rewriter is None:
            raise ScenarioError(
                "agents: mf's source_debias needs the content model's rewrite function "
                "(the `creators` content model has one); set source_debias: 0"
            )
        return self._rewriter(log.feature_ids, log.features)

    def act(self, obs: Observation) -> Slates:
        """Top candidates by ``<p_u, v_i> + b_i``; random before the first retrain."""
        if self._model is None:
            return Slates(obs.user_ids, random_slates(self._random, obs))
        return self._top_k(obs, self._model["P"][obs.user_ids])


class GRU4RecAgent(_HybridItemAgent):
    """GRU4Rec over each user's recent clicks, retrained from the log window.

    Item vectors are hybrid as in mf (``v_i = f_i W + q_i``; features only for items not
    in the last log window) and are shared by the GRU's input and its output scores
    ``<h_u, v_i> + b_i``, so a new item can be both recommended and read from a history.
    There is no user id embedding: a user is their history.

    Training simplifies GRU4Rec's session-parallel scheme on the log window (mini-batches
    of whole sequences, uniform negatives per batch): the GRU runs once over each user's
    clicks in the window (:func:`click_sequences`), and the state before every click is
    trained to rank that click first (sampled softmax). So the
    history of a training click is the user's preceding clicks *within the window*; the
    log holds nothing older. Serving reads the platform's history ``obs.history`` (its
    ``max_length`` most recent clicks), which may reach back before the window; the same
    recurrence reads it. A user's first click in the window trains the learned
    no-history state ``h0``, which serves users with an empty history. A history item that
    is neither in the last log window nor live (it retired) is skipped. Each retrain warm
    starts from the previous model (id vectors of items still in the window are carried
    over). Before the first retrain it serves random slates.
    """

    _stream_name = "agent/gru4rec/random"

    class Params(DebiasParams):
        """Scenario keys of the gru4rec agent."""

        factors: int = Field(
            32, gt=0, le=1024, description="Dimension f of item vectors and of the GRU state."
        )
        max_length: int = Field(
            10,
            gt=0,
            le=1000,
            description="Most recent clicks read per served user (at most "
            "platform.history_length); training reads each user's clicks in the log window.",
        )
        epochs: int = Field(
            3, gt=0, le=10_000, description="Passes over the log window per retrain."
        )
        lr: float = Field(0.03, gt=0, le=LEARNING_RATE_MAX, description="Adam learning rate.")
        l2: float = Field(1e-4, ge=0, description="L2 penalty on the id vectors of targets.")
        batch_size: int = Field(256, gt=0, description="Users (click sequences) per Adam step.")
        num_negatives: int = Field(
            64,
            gt=0,
            le=1_000_000,
            description="Log items drawn uniformly per batch as softmax negatives.",
        )
        init_scale: float = Field(
            0.1, gt=0, le=INIT_SCALE_MAX, description="Std of the initial feature map W."
        )

    def _init_params(self, log: Log) -> dict[str, np.ndarray]:
        """The previous model's weights (id vectors of items still logged), or fresh ones."""
        n, d = log.features.shape
        f = self.params.factors
        if self._model is not None:
            old = self._model
            out = {k: old[k] for k in ("W", *_GRU_KEYS)}
            pos, known = lookup_sorted(self._item_ids, log.feature_ids)
            out["Q"] = np.where(known[:, None], old["Q"][pos], 0.0)
            out["b"] = np.where(known, old["b"][pos], 0.0)
            return out
        gen = numpy_generator(self.seed, "agent/gru4rec/init", self._num_retrains)
        scale = 1.0 / np.sqrt(f)  # torch.nn.GRU's init scale
        return {
            "W": gen.normal(0, self.params.init_scale, (d, f)),
            "W_ih": gen.normal(0, scale, (f, 3 * f)),
            "W_hh": gen.normal(0, scale, (f, 3 * f)),
            "b_ih": np.zeros(3 * f),
            "b_hh": np.zeros(3 * f),
            "h0": np.zeros(f),
            "Q": np.zeros((n, f)),
            "b": np.zeros(n),
        }

    def retrain(self, log: Log) -> None:
        """Fit the GRU on the users' click sequences of the log window."""
        if not (log.clicked_pos >= 0).any() or log.feature_ids.size < 2:
            return
        _, seqs = click_sequences(log)
        valid = seqs >= 0
        click_w = click_weights(log, seqs[valid], self.params)
        weights = None
        if click_w is not None:
            weights = np.zeros(seqs.shape, np.float32)
            weights[valid] = click_w
        model = train_gru4rec(
            np.where(valid, np.searchsorted(log.feature_ids, seqs), PAD),
            self._init_params(log),
            log.features,
            self.params,
            weights=weights,
            seed_key=(self.seed, "agent/gru4rec/train", self._num_retrains),
        )
        # vectors of the window's items, to read histories whose items have since retired
        model["V"] = (log.features @ model["W"] + model["Q"]).astype(np.float32)
        check_trained("gru4rec", model, self.params, self._num_retrains)
        self._model = model
        self._item_ids = log.feature_ids.copy()
        self._num_retrains += 1

    def _history_vectors(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """History item vectors ``(B, L, f)`` and the number usable per user ``(B,)``.

        Usable items (in the last log window or live) come first, oldest first.
        """
        m, cat = self._model, obs.catalog
        hist = obs.history[:, : self.params.max_length][:, ::-1]  # oldest first
        pos, in_log = lookup_sorted(self._item_ids, hist)
        rows, live = lookup_sorted(cat.item_ids, hist)
        usable = (in_log | live) & (hist != PAD)
        # move usable items to the front, keeping their time order
        order = np.argsort(~usable, axis=1, kind="stable")
        hist, pos, rows, in_log, usable = (
            np.take_along_axis(a, order, axis=1) for a in (hist, pos, rows, in_log, usable)
        )
        x = np.zeros(hist.shape + (self.params.factors,), np.float32)
        x[in_log] = m["V"][pos[in_log]]  # a logged item is usable (PAD is never logged)
        cold = usable & ~in_log
        if cold.any():
            x[cold] = cat.features[rows[cold]] @ m["W"]
        return x, usable.sum(axis=1)

    def user_states(self, obs: Observation) -> np.ndarray:
        """``(B, f)`` GRU state of each served user after their history (``h0`` if none)."""
        torch = _torch()
        x, lengths = self._history_vectors(obs)
        t = {k: torch.from_numpy(self._model[k]) for k in _GRU_KEYS}
        steps = int(lengths.max(initial=0))
        x = torch.from_numpy(x[:, :steps])
        out = np.empty((x.shape[0], self.params.factors), np.float32)
        # blocks of users (row_blocks): a block's gates stay in cache over its steps; every
        # block runs the same steps, and each user's state is the one of all users at once
        with torch.no_grad():
            for sub in row_blocks(x.shape[0], (steps + 1) * 3 * x.shape[2], _STATE_BLOCK):
                states = _gru_states(t, x[sub])
                out[sub] = states.numpy()[np.arange(states.shape[0]), lengths[sub]]
        return out

    def act(self, obs: Observation) -> Slates:
        """Top candidates by ``<h_u, v_i> + b_i``; random before the first retrain."""
        if self._model is None:
            return Slates(obs.user_ids, random_slates(self._random, obs))
        return self._top_k(obs, self.user_states(obs))


_SCORE_BLOCK = 1 << 16
"""(user, item) scores per block when the neural agents rank their candidates."""
_STATE_BLOCK = 1 << 20
"""(user, step, gate value) cells per block of users when gru4rec serves."""
