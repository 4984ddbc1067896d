"""GRU4Rec's model and training (Hidasi et al., ICLR 2016), in torch.

Click sequences from the log (:func:`click_sequences`), the GRU over hybrid item vectors and
its sampled-softmax loss, and :func:`train_gru4rec`. The agent is
:class:`simlab.agents.neural.GRU4RecAgent`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simlab.batch import PAD, Log
from simlab.rng import torch_generator

from .neural_train import _torch, _weighted_mean

__all__ = ["train_gru4rec", "click_sequences"]

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
    row = np.repeat(np.arange(uniq.size), counts)
    seqs = np.full((uniq.size, int(counts.max(initial=0))), PAD, np.int64)
    seqs[row, np.arange(users.size) - start[row]] = items
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
    cfg: Any,
    *,
    weights: np.ndarray | None,
    seed_key: tuple[int, str, int],
) -> dict[str, np.ndarray]:
    """Fit GRU4Rec on batches of whole sequences and a sampled softmax; return the params.

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
        cfg: the agent's params, a ``GRU4RecAgent.Params`` (epochs, lr, l2, batch_size,
            num_negatives, debias).
        weights: ``(U, T)`` inverse-propensity weight of every click, or ``None``.
        seed_key: ``(seed, stream, step)`` of the generator of batches and negatives.
    """
    torch = _torch()
    t = {
        k: torch.nn.Parameter(torch.from_numpy(np.array(v, np.float32))) for k, v in params.items()
    }
    feats = torch.from_numpy(np.require(item_features, np.float32, "W"))  # copied if read-only
    seq_all = torch.from_numpy(sequences)
    w_all = None if weights is None else torch.from_numpy(np.require(weights, np.float32, "W"))
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
            loss = loss + cfg.l2 * (emb(tgt, t["Q"]) ** 2).sum() / tgt.numel()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {k: v.detach().numpy().copy() for k, v in t.items()}
