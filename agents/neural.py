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

from typing import Any, Literal

import numpy as np
from pydantic import Field

from simlab.batch import PAD, Log, Observation, Slates, lookup_sorted
from simlab.errors import ScenarioError
from simlab.rng import Stream, numpy_generator, torch_generator
from simlab.scenario import ParamsModel

from .base import Agent, RandomUntilTrainedMixin, random_slates, require_torch
from .lazy_adam import LazyAdamRows

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
    Saito et al. 2020 and Schnabel et al. 2016, who use ``power = 0.5``).

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
    ids, counts = np.unique(log.slates, return_counts=True)
    if ids.size == 0:
        return ids.astype(np.int64), np.zeros(0)
    p = (counts / counts.max()) ** power
    return ids.astype(np.int64), np.clip(p, min_propensity, 1.0)


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
    feats = torch.from_numpy(np.asarray(item_features, np.float32))
    shift = None  # R(f_i) - f_i: what a rewrite changes in each item's features
    if rewrite_features is not None and invariance > 0:
        shift = torch.from_numpy(np.asarray(rewrite_features, np.float32)) - feats
    u_t, p_t = torch.from_numpy(users), torch.from_numpy(pos)
    n_t = torch.from_numpy(neg)
    w_t = None if weights is None else torch.from_numpy(np.asarray(weights, np.float32))
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


# ----------------------------------------------------------------------------- shared serving


class _HybridItemAgent(RandomUntilTrainedMixin, Agent):
    """Shared by the torch agents: hybrid item vectors, top-K serving and the state dict.

    A subclass sets ``_model`` (arrays ``W (d, f)``, ``Q (n, f)``, ``b (n,)`` and its own)
    and ``_item_ids`` (the ``n`` sorted ids of the last log window) in ``retrain``.
    """

    _stream_name: str = "agent/torch/random"
    serving = "replica"  # model arrays, published once per retrain

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
        bias = np.zeros(item_ids.shape[0], np.float32)
        pos, known = lookup_sorted(self._item_ids, item_ids)
        if known.any():
            v[known] += m["Q"][pos[known]]
            bias[known] = m["b"][pos[known]]
        return v, bias

    def _top_k(self, obs: Observation, users: np.ndarray) -> Slates:
        """Top candidates by ``<users[b], v_i> + b_i`` for ``(B, f)`` user vectors."""
        cat = obs.catalog
        if obs.shared_candidates:
            ids = obs.candidates[0]
            inverse = None
        else:
            ids, inverse = np.unique(obs.candidates, return_inverse=True)
        v, bias = self.item_vectors(ids, cat.features[cat.rows(ids)])
        torch = _torch()
        scores = torch.from_numpy(np.ascontiguousarray(users)) @ torch.from_numpy(v.T)
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
        epochs: int = Field(3, gt=0, description="Passes over the log window per retrain.")
        lr: float = Field(0.02, gt=0, description="Adam learning rate.")
        l2: float = Field(1e-4, ge=0, description="L2 penalty on user and item vectors.")
        batch_size: int = Field(2048, gt=0, description="Clicks per optimisation step.")
        init_scale: float = Field(0.1, gt=0, description="Std of the initial vectors.")
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
            weights=click_weights(log, items, self.params),
            self_normalize=self.params.debias == "snips",
            rewrite_features=self._rewritten(log),
            invariance=self.params.source_debias,
        )
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


# ----------------------------------------------------------------------------- GRU4Rec

_GRU_KEYS = ("W_ih", "W_hh", "b_ih", "b_hh", "h0")


def click_sequences(log: Log) -> tuple[np.ndarray, np.ndarray]:
    """Each user's clicks in the log window, in time order.

    Log rows are chronological, so sorting the clicks by (user, step) lines up each
    user's clicks; no loop runs over users.

    Args:
        log: the log window.

    Returns:
        ``(user_ids, sequences)``: ``(U,)`` the users who clicked, increasing, and
        ``(U, T)`` their clicked item ids, oldest first and ``PAD``-padded on the right
        (``T`` is the most clicks of one user).

    >>> log = Log(np.array([0, 0, 1, 1, 2]), np.array([7, 8, 7, 8, 7]),
    ...           np.array([[1, 2], [3, 4], [5, 6], [1, 2], [3, 4]]),
    ...           np.array([0, 1, 1, 0, 0]), np.zeros(5, np.float32))
    >>> users, seqs = click_sequences(log)
    >>> users.tolist(), seqs.tolist()
    ([7, 8], [[1, 6, 3], [4, 1, -1]])
    """
    clicked = log.clicked_pos >= 0
    users = log.user_ids[clicked]
    items = log.clicked_items[clicked]
    order = np.lexsort((log.step[clicked], users))  # stable: by user, then time
    users, items = users[order], items[order]
    uniq, start, counts = np.unique(users, return_index=True, return_counts=True)
    row = np.repeat(np.arange(uniq.shape[0]), counts)
    seqs = np.full((uniq.shape[0], int(counts.max(initial=0))), PAD, np.int64)
    seqs[row, np.arange(users.shape[0]) - start[row]] = items
    return uniq, seqs


def _gru_states(t: dict[str, Any], x: Any) -> Any:
    """Every GRU state ``(B, T + 1, f)`` over item vectors ``x`` ``(B, T, f)``, oldest first.

    ``h_0`` is the learned no-history state ``t["h0"]`` and ``h_{s+1} = GRU(x_s, h_s)``
    with torch.nn.GRU's gates: ``r, z = sigmoid(x W_i + b_i + h W_h + b_h)`` (per gate),
    ``n = tanh(x W_in + b_in + r * (h W_hn + b_hn))``, ``h' = (1 - z) * n + z * h``.
    State ``h_s`` has read the first ``s`` items and predicts item ``s``.
    """
    torch = _torch()
    b, length, f = x.shape
    # input projections of every step in one product; unbind (not gi[:, s]) so that
    # backward stacks the step gradients once instead of scattering into zeros per step
    gi = (x @ t["W_ih"] + t["b_ih"]).unbind(1)
    h = t["h0"].expand(b, f)
    states = [h]
    for step in range(length):
        ir, iz, i_n = gi[step].chunk(3, dim=1)
        hr, hz, hn = (h @ t["W_hh"] + t["b_hh"]).chunk(3, dim=1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        h = (1 - z) * torch.tanh(i_n + r * hn) + z * h
        states.append(h)
    return torch.stack(states, dim=1)


def _sampled_softmax_nll(h: Any, tgt: Any, neg: Any, vecs: Any, bias: Any) -> Any:
    """``(N,)`` negative log-likelihood of each target against shared sampled negatives.

    Args:
        h: ``(N, f)`` GRU states.
        tgt: ``(N,)`` target item rows.
        neg: ``(S,)`` negative item rows, shared by all targets.
        vecs: ``(n, f)`` item vectors.
        bias: ``(n,)`` item biases.
    """
    torch = _torch()
    emb, bias = torch.nn.functional.embedding, bias[:, None]
    pos_logit = (h * emb(tgt, vecs)).sum(1) + emb(tgt, bias)[:, 0]
    neg_logit = h @ emb(neg, vecs).T + emb(neg, bias)[:, 0]
    # a negative that is the target itself is not a negative
    neg_logit = neg_logit.masked_fill(neg[None, :] == tgt[:, None], float("-inf"))
    return -torch.log_softmax(torch.cat([pos_logit[:, None], neg_logit], 1), 1)[:, 0]


def train_gru4rec(
    sequences: np.ndarray,
    params: dict[str, np.ndarray],
    item_features: np.ndarray,
    cfg: GRU4RecAgent.Params,
    *,
    weights: np.ndarray | None,
    seed_key: tuple[int, str, int],
) -> dict[str, np.ndarray]:
    """Fit GRU4Rec with session-parallel batches and a sampled softmax; return the params.

    Each batch takes ``cfg.batch_size`` users' click sequences and runs the GRU over them
    once; the state before each click scores that click against ``cfg.num_negatives`` log
    items drawn uniformly for the batch (a negative equal to the target is masked out).
    Scores are ``<h, v_i> + b_i`` with ``v_i = f_i W + q_i``, the vectors the GRU reads.

    Args:
        sequences: ``(U, T)`` rows (into ``item_features``) of each user's clicks, oldest
            first, ``-1``-padded on the right.
        params: initial ``W (d, f)``, ``Q (n, f)``, ``b (n,)`` and GRU arrays ``W_ih``,
            ``W_hh`` ``(f, 3f)``, ``b_ih``, ``b_hh`` ``(3f,)``, ``h0`` ``(f,)``.
        item_features: ``(n, d)`` observable features of the log's items.
        cfg: the agent's params (epochs, lr, l2, batch_size, num_negatives, debias).
        weights: ``(U, T)`` inverse-propensity weight of every click, or ``None``.
        seed_key: ``(seed, stream, step)`` of the generator of batches and negatives.
    """
    torch = _torch()
    t = {
        k: torch.nn.Parameter(torch.from_numpy(np.array(v, np.float32))) for k, v in params.items()
    }
    feats = torch.from_numpy(np.asarray(item_features, np.float32))
    seq_all = torch.from_numpy(sequences)
    w_all = None if weights is None else torch.from_numpy(np.asarray(weights, np.float32))
    lengths = (seq_all >= 0).sum(1)
    n, num_seqs = feats.shape[0], sequences.shape[0]
    opt = torch.optim.Adam(list(t.values()), lr=cfg.lr)
    gen = torch_generator(*seed_key)
    emb = torch.nn.functional.embedding
    for _ in range(cfg.epochs):
        order = torch.randperm(num_seqs, generator=gen)
        for start in range(0, num_seqs, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            seq = seq_all[idx, : int(lengths[idx].max())]
            valid = seq >= 0
            vecs = feats @ t["W"] + t["Q"]
            states = _gru_states(t, emb(seq[:, :-1].clamp(min=0), vecs))
            h, tgt = states[valid], seq[valid]
            neg = torch.randint(0, n, (cfg.num_negatives,), generator=gen)
            nll = _sampled_softmax_nll(h, tgt, neg, vecs, t["b"])
            w = None if w_all is None else w_all[idx, : seq.shape[1]][valid]
            loss = _weighted_mean(nll, w, cfg.debias == "snips")
            loss = loss + cfg.l2 * (emb(tgt, t["Q"]) ** 2).sum() / tgt.shape[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {k: v.detach().numpy().copy() for k, v in t.items()}


class GRU4RecAgent(_HybridItemAgent):
    """GRU4Rec over each user's recent clicks, retrained from the log window.

    Item vectors are hybrid as in mf (``v_i = f_i W + q_i``; features only for items not
    in the last log window) and are shared by the GRU's input and its output scores
    ``<h_u, v_i> + b_i``, so a new item can be both recommended and read from a history.
    There is no user id embedding: a user is their history.

    Training follows GRU4Rec's session-parallel scheme on the log window: the GRU runs
    once over each user's clicks in the window (:func:`click_sequences`), and the state
    before every click is trained to rank that click first (sampled softmax). So the
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
        epochs: int = Field(3, gt=0, description="Passes over the log window per retrain.")
        lr: float = Field(0.03, gt=0, description="Adam learning rate.")
        l2: float = Field(1e-4, ge=0, description="L2 penalty on the id vectors of targets.")
        batch_size: int = Field(
            256, gt=0, description="Users (click sequences) per optimisation step."
        )
        num_negatives: int = Field(
            64, gt=0, description="Log items drawn uniformly per batch as softmax negatives."
        )
        init_scale: float = Field(0.1, gt=0, description="Std of the initial feature map W.")

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
            np.where(valid, np.searchsorted(log.feature_ids, seqs), -1),
            self._init_params(log),
            log.features,
            self.params,
            weights=weights,
            seed_key=(self.seed, "agent/gru4rec/train", self._num_retrains),
        )
        # vectors of the window's items, to read histories whose items have since retired
        model["V"] = (log.features @ model["W"] + model["Q"]).astype(np.float32)
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
        x[in_log & usable] = m["V"][pos[in_log & usable]]
        cold = usable & ~in_log
        if cold.any():
            x[cold] = cat.features[rows[cold]] @ m["W"]
        return x, usable.sum(axis=1)

    def user_states(self, obs: Observation) -> np.ndarray:
        """``(B, f)`` GRU state of each served user after their history (``h0`` if none)."""
        torch = _torch()
        x, lengths = self._history_vectors(obs)
        t = {k: torch.from_numpy(self._model[k]) for k in _GRU_KEYS}
        with torch.no_grad():
            states = _gru_states(t, torch.from_numpy(x[:, : int(lengths.max(initial=0))]))
        return states.numpy()[np.arange(x.shape[0]), lengths]

    def act(self, obs: Observation) -> Slates:
        """Top candidates by ``<h_u, v_i> + b_i``; random before the first retrain."""
        if self._model is None:
            return Slates(obs.user_ids, random_slates(self._random, obs))
        return self._top_k(obs, self.user_states(obs))
