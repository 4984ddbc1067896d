"""Generative retrieval over semantic IDs (TIGER / MiniOneRec style), retrained from logs.

:class:`SemanticIDAgent` has three parts:

1. **Semantic IDs.** A residual quantiser (residual k-means, :func:`fit_residual_kmeans`)
   maps each observable item embedding to ``L`` codes, each level quantising the residual
   the previous levels left. Items whose ``L`` codes collide get an extra disambiguation
   token ``d``: their rank by item id among the items sharing those codes (TIGER's 4th
   token), so a full code ``(c_1, ..., c_L, d)`` names one item. Codebooks are refit at
   every retrain on the items of the log window (warm started from the previous codebooks);
   items that appear later are encoded with the existing codebooks and take the next free
   ``d`` of their group, so a new item is reachable at once through its semantic prefix.
2. **A decoder-only transformer** reads ``[CLS, h_1 .. h_H, BOS, c_1 .. c_L]`` with causal
   attention. Each history item ``h`` (most recent last) enters as one token, the sum of the
   embeddings of its code tokens (one vocabulary slice per level), which keeps the sequence
   ``H + L + 2`` long. From BOS on it predicts the next clicked item's tokens one level at a
   time (teacher forcing, cross-entropy; optional APAO prefix-aware loss). The examples are
   the clicks of the log window, each with the same user's earlier clicks in the window as
   its history.
3. **Constrained beam search** (:func:`constrained_beam_search`) generates codes level by
   level for all served users at once. Tokens that no candidate item of the user continues
   get log-probability ``-inf`` (the trie of the candidates' codes is one sorted array of
   prefix ids per level, queried with ``searchsorted``), so only live candidates come out.
   The top ``K`` of the final beam form the slate. A beam of width ``W >= K`` always ends
   with ``min(W, reachable candidates)`` items; when that is less than ``K`` (tiny
   catalogs, or items whose ``d`` is beyond ``dedup_size``) the slate is filled with the
   other candidates ranked by the fallback score: the model's log-probability of the
   item's first code.

Serving caches the keys and values of the history (a KV cache), so each beam step costs
one token per beam. Before the first retrain the agent serves random slates.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from simlab.batch import PAD, Catalog, Log, Observation, Slates, lookup_sorted
from simlab.errors import DependencyNotInstalled, ScenarioError
from simlab.rng import Stream, numpy_generator, torch_generator
from simlab.scenario import ParamsModel

from .base import Agent, RandomUntilTrainedMixin, random_slates

try:
    import torch
    import torch.nn.functional as F  # noqa: N812 - the usual torch alias
    from torch import nn
except ImportError as e:  # pragma: no cover - torch is a declared dependency
    raise DependencyNotInstalled(
        "the generative agent needs torch: pip install torch==2.13.0 (CPU build)"
    ) from e

__all__ = [
    "SemanticIDAgent",
    "SemanticIDTransformer",
    "QuantiserParams",
    "TransformerParams",
    "TrainingParams",
    "PrefixLossParams",
    "sequence_loss",
    "train_semantic_transformer",
    "fit_residual_kmeans",
    "encode_residual",
    "dedup_tokens",
    "click_sequences",
    "constrained_beam_search",
]

_CHUNK = 4096
"""Users served per beam-search batch (bounds memory; not a loop over single users)."""


# ----------------------------------------------------------------------------- quantiser
def _nearest(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """``(n,)`` index of the nearest centroid (squared Euclidean) of each row of ``x``."""
    return ((centroids * centroids).sum(1)[None, :] - 2.0 * x @ centroids.T).argmin(1)


def _kmeans_pp(x: torch.Tensor, k: int, gen: np.random.Generator) -> torch.Tensor:
    """k-means++ seeding: ``(k, d)`` rows of ``x`` drawn with probability ~ squared distance."""
    n = x.shape[0]
    chosen = [int(gen.integers(n))]
    d2 = ((x - x[chosen[0]]) ** 2).sum(1)
    for _ in range(k - 1):  # a loop over centroids, each step vectorised over items
        w = np.cumsum(d2.double().cpu().numpy())
        u = gen.random() * w[-1]
        j = int(np.searchsorted(w, u, side="right")) if w[-1] > 0 else int(gen.integers(n))
        chosen.append(min(j, n - 1))
        d2 = torch.minimum(d2, ((x - x[chosen[-1]]) ** 2).sum(1))
    return x[chosen].clone()


def _lloyd(x: torch.Tensor, centroids: torch.Tensor, iterations: int) -> torch.Tensor:
    """Lloyd iterations; an empty cluster is re-seeded with the worst-fitted points."""
    c = centroids.clone()
    k = c.shape[0]
    for _ in range(iterations):
        a = _nearest(x, c)
        counts = torch.bincount(a, minlength=k)
        sums = torch.zeros_like(c).index_add_(0, a, x)
        c = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], c)
        empty = torch.nonzero(counts == 0).flatten()
        if empty.numel():
            err = ((x - c[a]) ** 2).sum(1)
            m = min(empty.numel(), x.shape[0])
            c[empty[:m]] = x[err.topk(m).indices]
    return c


def fit_residual_kmeans(
    features: np.ndarray,
    levels: int,
    size: int,
    *,
    iterations: int,
    seed: int,
    step: int,
    init: np.ndarray | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Fit ``levels`` codebooks by k-means on the residuals the previous levels leave.

    Args:
        features: ``(n, d)`` item embeddings.
        levels: ``L``, number of codebooks.
        size: ``V``, centroids per codebook.
        iterations: Lloyd iterations per level.
        seed: seed of the k-means++ draws (stream ``agent/generative/kmeans/<level>``).
        step: key of the draws (the retrain counter).
        init: ``(L, V, d)`` initial codebooks (warm start) instead of k-means++.
        device: torch device of the computation.

    Returns:
        ``(L, V, d)`` float32 codebooks. Each level's reconstruction error is at most the
        previous level's (its centroids are cluster means of the residuals).

    >>> x = np.array([[0.0], [0.1], [5.0], [5.1]], np.float32)
    >>> books = fit_residual_kmeans(x, 1, 2, iterations=5, seed=0, step=0)
    >>> sorted(round(float(c), 2) for c in books[0, :, 0])
    [0.05, 5.05]
    """
    resid = torch.as_tensor(np.asarray(features, np.float32), device=device).clone()
    books = []
    for level in range(levels):
        if init is not None:
            c = torch.as_tensor(np.asarray(init[level], np.float32), device=device)
        else:
            gen = numpy_generator(seed, f"agent/generative/kmeans/{level}", step)
            c = _kmeans_pp(resid, size, gen)
        c = _lloyd(resid, c, iterations)
        resid = resid - c[_nearest(resid, c)]
        books.append(c)
    return torch.stack(books).cpu().numpy()


def encode_residual(features: np.ndarray, codebooks: np.ndarray, device: str = "cpu") -> np.ndarray:
    """``(n, L)`` int64 codes of ``features`` ``(n, d)``: nearest centroid of each residual."""
    resid = torch.as_tensor(np.asarray(features, np.float32), device=device).clone()
    codes = []
    for c in torch.as_tensor(np.asarray(codebooks, np.float32), device=device):
        a = _nearest(resid, c)
        resid = resid - c[a]
        codes.append(a)
    return torch.stack(codes, 1).cpu().numpy().astype(np.int64)


def _radix_ids(codes: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Mixed-radix integer id of each row of ``codes`` ``(n, len(sizes))``."""
    ids = np.zeros(codes.shape[0], np.int64)
    for level, r in enumerate(sizes):
        ids = ids * r + codes[:, level]
    return ids


def dedup_tokens(codes: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """``(n,)`` rank by item id of each item among the items with the same ``codes`` row.

    >>> dedup_tokens(np.array([[1, 2], [0, 0], [1, 2]]), np.array([9, 4, 5])).tolist()
    [1, 0, 0]
    """
    _, group = np.unique(codes, axis=0, return_inverse=True)
    group = group.reshape(-1)
    order = np.lexsort((item_ids, group))
    g = group[order]
    idx = np.arange(g.shape[0])
    start = np.maximum.accumulate(np.where(np.r_[True, g[1:] != g[:-1]], idx, 0))
    rank = np.empty_like(idx)
    rank[order] = idx - start
    return rank.astype(np.int64)


# ----------------------------------------------------------------------------- log -> examples
def click_sequences(log: Log, max_history: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Next-click examples of the log window, vectorised over clicks.

    Returns:
        ``(history, target, step)``: ``(M, H)`` the user's earlier clicks in the window,
        most recent last and left-padded with ``PAD``; ``(M,)`` clicked item; ``(M,)`` step.
    """
    clicked = log.clicked_pos >= 0
    users, steps, items = log.user_ids[clicked], log.step[clicked], log.clicked_items[clicked]
    m = users.shape[0]
    order = np.lexsort((np.arange(m), steps, users))
    users, steps, items = users[order], steps[order], items[order]
    idx = np.arange(m)
    start = np.maximum.accumulate(np.where(np.r_[True, users[1:] != users[:-1]], idx, 0))
    lag = np.arange(max_history, 0, -1)  # the last slot holds the click just before
    src = np.maximum(idx[:, None] - lag, 0)
    hist = np.where(lag <= (idx - start)[:, None], items[src] if m else src, PAD)
    return hist.astype(np.int64), items, steps


# ----------------------------------------------------------------------------- transformer
class _Block(nn.Module):
    """Pre-norm causal self-attention block with an incremental (KV-cached) step."""

    def __init__(self, dim: int, heads: int, ff_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff1, self.ff2 = nn.Linear(dim, ff_dim), nn.Linear(ff_dim, dim)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        *lead, e = x.shape
        return self.qkv(self.norm1(x)).view(*lead, 3, self.heads, e // self.heads).unbind(-3)

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ff2(F.gelu(self.ff1(self.norm2(x))))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Full pass over ``x`` ``(B, T, E)``; ``mask`` ``(B, 1, T, T)`` True = attend."""
        q, k, v = (t.transpose(1, 2) for t in self._qkv(x))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(a.transpose(1, 2).reshape(x.shape))
        return self._ff(x), k, v

    def step(self, x, k_ctx, v_ctx, pad, beam_kv) -> tuple[torch.Tensor, ...]:
        """One new token per beam: ``x`` ``(B, W, E)`` attends to the context and its beam.

        ``k_ctx``/``v_ctx`` are ``(B, heads, T0, dh)``; ``beam_kv`` holds the beam's earlier
        keys and values ``(B, heads, W, l, dh)`` (or ``None``), returned with this token's.
        """
        b, w, e = x.shape
        q, k, v = (t.transpose(1, 2) for t in self._qkv(x))  # (B, heads, W, dh)
        k, v = k[..., None, :], v[..., None, :]
        if beam_kv is not None:
            k, v = torch.cat([beam_kv[0], k], 3), torch.cat([beam_kv[1], v], 3)
        scale = q.shape[-1] ** -0.5
        s_ctx = (q @ k_ctx.transpose(-1, -2)).masked_fill(pad[:, None, None, :], float("-inf"))
        s_own = (q[..., None, :] * k).sum(-1)
        p = torch.softmax(torch.cat([s_ctx, s_own], -1) * scale, -1)
        t0 = k_ctx.shape[2]
        a = p[..., :t0] @ v_ctx + (p[..., t0:, None] * v).sum(-2)
        x = x + self.proj(a.transpose(1, 2).reshape(b, w, e))
        return self._ff(x), k, v


class SemanticIDTransformer(nn.Module):
    """Decoder-only transformer over code tokens (see the module docstring).

    Args:
        sizes: vocabulary of each code level, ``[V] * L + [D]``.
        params: the agent's ``transformer`` section.
    """

    def __init__(self, sizes: list[int], params: TransformerParams) -> None:
        super().__init__()
        self.sizes = list(sizes)
        self.offsets = [0, *np.cumsum(sizes).tolist()]
        n = self.offsets[-1]
        self.cls, self.bos, self.pad = n, n + 1, n + 2
        self.max_history = params.max_history
        self.embed = nn.Embedding(n + 3, params.dim)
        self.pos = nn.Embedding(params.max_history + 1 + len(sizes), params.dim)
        blocks = (_Block(params.dim, params.heads, params.ff_dim) for _ in range(params.layers))
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(params.dim)
        self.head = nn.Linear(params.dim, n)

    def _inputs(self, hist: torch.Tensor, prefix: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Embedded ``[CLS, history, BOS, prefix]`` ``(B, T, E)`` and its pad mask ``(B, T)``."""
        b, p, dev = hist.shape[0], prefix.shape[1], hist.device
        # drop the leading history slots that are padding in every row: the result is the
        # same (pads are masked) and short histories train and serve several times faster
        real = (hist[..., 0] >= 0).any(0)
        n = hist.shape[1] - int(real.int().argmax()) if bool(real.any()) else 0
        hist = hist[:, hist.shape[1] - n :]
        off = torch.tensor(self.offsets[:-1], device=dev)
        hist = torch.minimum(hist, torch.tensor(self.sizes, device=dev) - 1)
        tok = torch.where(hist >= 0, hist + off, self.pad)
        special = self.embed(torch.tensor([self.cls, self.bos], device=dev))
        parts = [special[:1].expand(b, 1, -1), self.embed(tok).sum(2)]
        parts += [special[1:].expand(b, 1, -1), self.embed(prefix + off[:p])]
        x = torch.cat(parts, 1)
        h = self.max_history  # absolute positions: CLS 0, history slots up to h, BOS h + 1
        pos = torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(h + 1 - n, h + 2 + p)])
        x = x + self.pos(pos.to(dev))
        no = torch.zeros(b, 1, dtype=torch.bool, device=dev)
        pad = torch.cat([no, hist[..., 0] < 0, no.expand(b, 1 + p)], 1)
        return x, pad

    def _run(self, x: torch.Tensor, pad: torch.Tensor) -> tuple[torch.Tensor, list]:
        t = x.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        mask = (causal[None] & ~pad[:, None, :])[:, None]  # CLS is never masked: no NaN rows
        kv = []
        for block in self.blocks:
            x, k, v = block(x, mask)
            kv.append((k, v))
        return x, kv

    def forward(self, hist: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Hidden ``(B, P + 1, E)`` at BOS and prefix; position ``l`` predicts level ``l``.

        Args:
            hist: ``(B, H, L + 1)`` codes of the history items, most recent last, ``-1`` = pad.
            prefix: ``(B, P)`` target tokens of levels ``0 .. P - 1`` (teacher forcing).
        """
        h, _ = self._run(*self._inputs(hist, prefix))
        return self.norm(h[:, -prefix.shape[1] - 1 :])

    def logits(self, h: torch.Tensor, level: int) -> torch.Tensor:
        """Logits ``(..., sizes[level])`` of the tokens of ``level``."""
        o, s = self.offsets[level], self.sizes[level]
        return F.linear(h, self.head.weight[o : o + s], self.head.bias[o : o + s])

    def start(self, hist: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """Encode the history; return the BOS hidden state ``(B, E)`` and the decoding cache."""
        x, pad = self._inputs(hist, hist.new_zeros(hist.shape[0], 0))
        h, kv = self._run(x, pad)
        return self.norm(h[:, -1]), {"kv": kv, "pad": pad, "beam": None}

    def step(self, cache: dict, tokens: torch.Tensor, parent: torch.Tensor, level: int):
        """Feed each beam's ``level - 1`` token ``(B, W)``, after reordering by ``parent``.

        Returns:
            ``(B, W, E)`` hidden states that predict ``level``.
        """
        x = (
            self.embed(tokens + self.offsets[level - 1])
            + self.pos.weight[self.max_history + 1 + level]
        )
        beam = cache["beam"] or [None] * len(self.blocks)
        new = []
        for block, (k_ctx, v_ctx), bkv in zip(self.blocks, cache["kv"], beam, strict=True):
            if bkv is not None:  # keep the keys and values of the beams that survived
                idx = parent[:, None, :, None, None].expand(
                    -1, bkv[0].shape[1], -1, *bkv[0].shape[3:]
                )
                bkv = (bkv[0].gather(2, idx), bkv[1].gather(2, idx))
            x, k, v = block.step(x, k_ctx, v_ctx, cache["pad"], bkv)
            new.append((k, v))
        cache["beam"] = new
        return self.norm(x)


def _init_weights(model: nn.Module, gen: torch.Generator, std: float = 0.02) -> None:
    """Initialise every parameter from ``gen`` (normal matrices, unit norms, zero biases)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
            else:
                p.fill_(1.0 if name.endswith("weight") else 0.0)


def sequence_loss(
    model: SemanticIDTransformer, hist: torch.Tensor, target: torch.Tensor, prefix: PrefixLossParams
) -> torch.Tensor:
    """Teacher-forced cross-entropy of the ``(B, L + 1)`` target codes, plus APAO when on.

    The APAO term is ``beta * sum_t w_t l_t`` with ``l_t = -mean_batch[(1/t) sum_{j<=t}
    log p(c_j | c_<j, h)] / tau`` over the prefixes ``t = 1 .. L`` and detached weights
    ``w = normalise(normalise(l) * exp(eta * l))``.
    """
    h = model(hist, target[:, :-1])
    levels = range(target.shape[1])
    logp = torch.stack(
        [
            torch.log_softmax(model.logits(h[:, lv], lv), -1).gather(1, target[:, lv, None])[:, 0]
            for lv in levels
        ],
        1,
    )
    loss = -logp.sum(1).mean()
    if prefix.enabled and target.shape[1] > 1:
        t = torch.arange(1, target.shape[1], device=logp.device)
        ell = -(logp.cumsum(1)[:, :-1] / t).mean(0) / prefix.tau
        w = ell / ell.sum()
        w = w * torch.exp(prefix.eta * ell)
        loss = loss + prefix.beta * ((w / w.sum()).detach() * ell).sum()
    return loss


def train_semantic_transformer(
    model: SemanticIDTransformer,
    hist: np.ndarray,
    target: np.ndarray,
    training: TrainingParams,
    prefix: PrefixLossParams,
    gen: torch.Generator,
) -> list[float]:
    """Fit ``model`` with AdamW on next-click examples; return the mean loss of each epoch.

    Args:
        model: the transformer (its device is used).
        hist: ``(M, H, L + 1)`` history codes, ``-1`` = pad.
        target: ``(M, L + 1)`` codes of the clicked items.
        training: the agent's ``training`` section.
        prefix: the agent's ``prefix_loss`` section.
        gen: CPU generator that shuffles the batches.
    """
    dev = model.head.weight.device
    hist_t, tgt = torch.as_tensor(hist, device=dev), torch.as_tensor(target, device=dev)
    opt = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=training.weight_decay)
    m, bs = tgt.shape[0], training.batch_size
    model.train()
    losses = []
    for _ in range(training.epochs):
        order = torch.randperm(m, generator=gen).to(dev)
        total = torch.zeros((), device=dev)
        for s in range(0, m, bs):
            idx = order[s : s + bs]
            loss = sequence_loss(model, hist_t[idx], tgt[idx], prefix)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach() * idx.shape[0]
        losses.append(float(total) / m)
    model.eval()
    return losses


# ----------------------------------------------------------------------------- decoding
def _member(table: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Whether each id of ``q`` ``(B, ...)`` is in row ``b`` of sorted ``table`` ``(B | 1, C)``."""
    return _search(table, q)[1]


def _search(table: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of ``q`` in the sorted rows of ``table`` and whether they were found."""
    if table.shape[0] == 1:
        pos = torch.searchsorted(table[0], q).clamp(max=table.shape[1] - 1)
        return pos, table[0][pos] == q
    flat = q.reshape(q.shape[0], -1)
    pos = torch.searchsorted(table, flat).clamp(max=table.shape[1] - 1)
    return pos.reshape(q.shape), (table.gather(1, pos) == flat).reshape(q.shape)


def constrained_beam_search(
    step: Any, codes: torch.Tensor, sizes: list[int], beam_width: int, num_rows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Beam search over code levels, constrained to the codes of each row's candidates.

    Args:
        step: ``step(level, tokens, parent) -> (B, w, sizes[level])`` log-probabilities of the
            next token, given the beams' tokens so far ``(B, w, level)`` and, from level 1,
            the index ``(B, w)`` of the beam each one extends.
        codes: ``(B, C, T)`` codes of each row's candidates, or ``(C, T)`` shared by all rows;
            a candidate with a code outside ``[0, sizes[l])`` can never come out.
        sizes: vocabulary of each of the ``T`` levels.
        beam_width: ``W``, beams kept per row.
        num_rows: ``B``.

    Returns:
        ``(cols, scores)``, both ``(B, W')`` with ``W' = min(W, ...)``, best first: the
        candidate index of each final beam (``-1`` where fewer candidates exist) and its
        summed log-probability.
    """
    dev = codes.device
    codes = codes if codes.dim() == 3 else codes[None]
    ok = ((codes >= 0) & (codes < torch.tensor(sizes, device=dev))).all(-1)
    tables, pref = [], torch.zeros(codes.shape[:2], dtype=torch.long, device=dev)
    for level, r in enumerate(sizes):  # the trie: sorted prefix ids of each level
        pref = pref * r + codes[..., level].clamp(min=0)
        table, order = torch.where(ok, pref, -1).sort(-1)
        tables.append(table)
    tokens = torch.zeros(num_rows, 1, 0, dtype=torch.long, device=dev)
    prefix = torch.zeros(num_rows, 1, dtype=torch.long, device=dev)
    score = torch.zeros(num_rows, 1, device=dev)
    parent = None
    for level, r in enumerate(sizes):
        logp = step(level, tokens, parent)
        q = prefix[..., None] * r + torch.arange(r, device=dev)
        cand = torch.where(_member(tables[level], q), score[..., None] + logp, float("-inf"))
        score, idx = cand.flatten(1).topk(min(beam_width, cand[0].numel()), dim=1)
        parent = torch.div(idx, r, rounding_mode="floor")
        kept = tokens.gather(1, parent[..., None].expand(-1, -1, level))
        tokens = torch.cat([kept, (idx % r)[..., None]], 2)
        prefix = q.flatten(1).gather(1, idx)
    pos, found = _search(tables[-1], prefix)
    cols = order[0][pos] if order.shape[0] == 1 else order.gather(1, pos)
    return torch.where(torch.isfinite(score) & found, cols, -1), score


# ----------------------------------------------------------------------------- params
class QuantiserParams(ParamsModel):
    """Residual k-means semantic IDs."""

    levels: int = Field(3, gt=0, le=8, description="L, code levels (codebooks).")
    codebook_size: int = Field(16, ge=2, le=4096, description="V, centroids per codebook.")
    dedup_size: int = Field(
        8,
        gt=0,
        le=4096,
        description="D, vocabulary of the disambiguation token: items beyond the D-th with the "
        "same L codes cannot be generated (only the fallback can show them).",
    )
    iterations: int = Field(15, gt=0, le=1000, description="Lloyd iterations per level.")

    @model_validator(mode="after")
    def _check_code_space(self) -> QuantiserParams:
        # beam search names every code prefix by one int64
        if self.codebook_size**self.levels * self.dedup_size >= 2**62:
            raise ValueError(
                "Expects codebook_size**levels * dedup_size below 2**62, actual values: "
                f"codebook_size={self.codebook_size}, levels={self.levels}, "
                f"dedup_size={self.dedup_size}"
            )
        return self


class TransformerParams(ParamsModel):
    """Sizes of the decoder-only transformer."""

    dim: int = Field(32, gt=0, le=2048, description="Model width (embedding size).")
    layers: int = Field(1, gt=0, le=24, description="Transformer blocks.")
    heads: int = Field(2, gt=0, le=64, description="Attention heads; must divide `dim`.")
    ff_dim: int = Field(64, gt=0, le=8192, description="Hidden size of the feed-forward layer.")
    max_history: int = Field(20, gt=0, le=512, description="H, most recent history items read.")

    @model_validator(mode="after")
    def _check_heads(self) -> TransformerParams:
        if self.dim % self.heads:
            raise ValueError(
                f"Expects `dim` to be a multiple of `heads`, actual values: dim={self.dim}, "
                f"heads={self.heads}"
            )
        return self


class TrainingParams(ParamsModel):
    """How each retrain fits the transformer on the log window."""

    epochs: int = Field(5, gt=0, le=10_000, description="Passes over the window's clicks.")
    lr: float = Field(3e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    batch_size: int = Field(256, gt=0, description="Clicks per optimisation step.")
    max_examples: int = Field(
        50_000, gt=0, description="Train on at most this many of the window's most recent clicks."
    )
    warm_start: bool = Field(
        True, description="Start codebooks and transformer from the previous retrain's."
    )


class PrefixLossParams(ParamsModel):
    """APAO prefix-aware loss (Yu et al.), added to the cross-entropy when enabled."""

    enabled: bool = Field(False, description="Add the prefix-aware loss.")
    beta: float = Field(0.1, ge=0, description="Weight of the prefix loss.")
    tau: float = Field(1.0, gt=0, description="Temperature tau_p dividing the prefix losses.")
    eta: float = Field(0.0, description="Focus on hard prefixes: weights ~ l_t * exp(eta * l_t).")


# ----------------------------------------------------------------------------- agent
def _resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` must be available."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ScenarioError(
            "Expects `device` 'cuda' to find a CUDA device, but torch.cuda.is_available() is "
            "False; use 'auto' or 'cpu'"
        )
    return name


def _codes_of(items: np.ndarray, tables: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Codes ``items.shape + (T,)`` from the first ``(ids, codes)`` table with the id (else -1)."""
    out = np.full((*items.shape, tables[0][1].shape[1]), -1, np.int64)
    todo = items != PAD
    for ids, codes in tables:
        pos, found = lookup_sorted(ids, items)
        found &= todo
        out[found] = codes[pos[found]]
        todo &= ~found
    return out


class SemanticIDAgent(RandomUntilTrainedMixin, Agent):
    """Semantic-ID generative retrieval: residual k-means codes, transformer, trie beam search.

    See the module docstring. Before its first retrain it serves random slates. On CPU it
    serves from replicas (the weights and codes, published once per retrain); on a GPU it
    serves in the trial actor, which holds the GPU.
    """

    serving = "replica"

    def serving_blocker(self) -> str | None:
        """A model on a GPU serves where the GPU is (replicas on CPU would round otherwise)."""
        return None if self._device == "cpu" else f"serves on {self._device} in the trial actor"

    class Params(ParamsModel):
        """Scenario keys of the generative agent."""

        quantiser: QuantiserParams = Field(
            default_factory=QuantiserParams, description="Semantic IDs (residual k-means)."
        )
        transformer: TransformerParams = Field(
            default_factory=TransformerParams, description="Decoder-only transformer sizes."
        )
        training: TrainingParams = Field(
            default_factory=TrainingParams, description="Fitting at each retrain."
        )
        prefix_loss: PrefixLossParams = Field(
            default_factory=PrefixLossParams, description="Optional APAO prefix-aware loss."
        )
        beam_width: int = Field(
            16, gt=0, le=4096, description="Beams kept per user; raised to the slate size."
        )
        device: Literal["auto", "cpu", "cuda"] = Field(
            "auto", description="Torch device; auto uses CUDA when torch.cuda.is_available()."
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        q = params.quantiser
        self._device = _resolve_device(params.device)
        self._sizes = [q.codebook_size] * q.levels + [q.dedup_size]
        self._random = Stream(self.seed, "agent/generative/random")
        self._num_retrains = 0
        self._model: SemanticIDTransformer | None = None
        self._codebooks: np.ndarray | None = None
        self._item_ids = np.zeros(0, np.int64)
        self._codes = np.zeros((0, q.levels + 1), np.int64)
        self._cache: tuple[Catalog, np.ndarray] | None = None

    # ------------------------------------------------------------------ learning
    def _new_model(self, state: dict[str, np.ndarray] | None) -> SemanticIDTransformer:
        """A model on the agent's device, from ``state`` or freshly initialised."""
        # the default initialisers draw from torch's global generator: restore it afterwards
        # (every weight is then drawn again from the agent's own generator, or loaded)
        with torch.random.fork_rng(devices=[]):
            model = SemanticIDTransformer(self._sizes, self.params.transformer)
        model = model.to(self._device)
        if state is None:
            _init_weights(model, torch_generator(self.seed, "agent/generative/init", 0))
        else:
            model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
        return model.eval()

    def _model_state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self._model.state_dict().items()}

    def retrain(self, log: Log) -> None:
        """Refit the codebooks on the window's items, then the transformer on its clicks."""
        p = self.params
        hist, target, steps = click_sequences(log, p.transformer.max_history)
        if target.size == 0 or log.feature_ids.size == 0:
            return
        if target.size > p.training.max_examples:
            keep = np.sort(np.argsort(-steps, kind="stable")[: p.training.max_examples])
            hist, target = hist[keep], target[keep]
        warm = p.training.warm_start and self._model is not None
        q = p.quantiser
        books = fit_residual_kmeans(
            log.features,
            q.levels,
            q.codebook_size,
            iterations=q.iterations,
            seed=self.seed,
            step=self._num_retrains,
            init=self._codebooks if warm else None,
            device=self._device,
        )
        sem = encode_residual(log.features, books, self._device)
        codes = np.concatenate([sem, dedup_tokens(sem, log.feature_ids)[:, None]], 1)
        table = [(log.feature_ids, codes)]
        target_codes = _codes_of(target, table)
        ok = target_codes[:, -1] < q.dedup_size  # a d beyond the vocabulary cannot be a target
        model = self._new_model(self._model_state() if warm else None)
        gen = torch_generator(self.seed, "agent/generative/batches", self._num_retrains)
        train_semantic_transformer(
            model, _codes_of(hist[ok], table), target_codes[ok], p.training, p.prefix_loss, gen
        )
        self._model, self._codebooks = model, books
        self._item_ids, self._codes = log.feature_ids.copy(), codes
        self._cache = None
        self._num_retrains += 1

    # ------------------------------------------------------------------ serving
    def _live_codes(self, catalog: Catalog) -> np.ndarray:
        """``(N, L + 1)`` codes of the live items; new items are encoded and take a free ``d``."""
        if self._cache is not None and self._cache[0] is catalog:
            return self._cache[1]
        codes = _codes_of(catalog.item_ids, [(self._item_ids, self._codes)])
        new = codes[:, 0] < 0
        if new.any():
            sem = encode_residual(catalog.features[new], self._codebooks, self._device)
            radix = self._sizes[:-1]
            uniq, counts = np.unique(_radix_ids(self._codes[:, :-1], radix), return_counts=True)
            pos, found = lookup_sorted(uniq, _radix_ids(sem, radix))
            d = np.where(found, counts[pos], 0) + dedup_tokens(sem, catalog.item_ids[new])
            codes[new] = np.concatenate([sem, d[:, None]], 1)
        self._cache = (catalog, codes)
        return codes

    def _history_codes(self, obs: Observation, live: np.ndarray) -> np.ndarray:
        """``(B, H, L + 1)`` codes of the users' recent clicks, most recent last, -1 = pad."""
        hm = self.params.transformer.max_history
        h = min(obs.history.shape[1], hm)
        items = np.full((obs.num_users, hm), PAD, np.int64)
        items[:, hm - h :] = obs.history[:, :h][:, ::-1]
        tables = [(obs.catalog.item_ids, live), (self._item_ids, self._codes)]
        return _codes_of(items, tables)

    def _serve(self, hist: np.ndarray, codes: torch.Tensor, k: int) -> np.ndarray:
        """``(b, k)`` candidate column of each slate position, for one chunk of users."""
        model, state = self._model, {}
        hist_t = torch.as_tensor(hist, device=self._device)

        def step(level: int, tokens: torch.Tensor, parent: torch.Tensor | None) -> torch.Tensor:
            if level == 0:
                h, state["cache"] = model.start(hist_t)
                h = h[:, None]
            else:
                h = model.step(state["cache"], tokens[..., -1], parent, level)
            logp = torch.log_softmax(model.logits(h, level), -1)
            state.setdefault("logp0", logp[:, 0])
            return logp

        b, w = hist.shape[0], max(self.params.beam_width, k)
        cols, _ = constrained_beam_search(step, codes, self._sizes, w, b)
        if cols.shape[1] < k:
            cols = torch.cat([cols, cols.new_full((b, k - cols.shape[1]), -1)], 1)
        out = cols[:, :k].clone()
        short = (out < 0).any(1)
        if short.any():
            sub = codes if codes.dim() == 2 else codes[short]
            out[short] = self._fill(cols[short], state["logp0"][short], sub, k)
        return out.cpu().numpy()

    @staticmethod
    def _fill(cols: torch.Tensor, logp0: torch.Tensor, codes: torch.Tensor, k: int) -> torch.Tensor:
        """Beam items first (in beam order), then other candidates by the fallback score."""
        code0 = codes[..., 0].expand(cols.shape[0], -1)
        score = logp0.gather(1, code0).double()
        r, j = torch.nonzero(cols >= 0, as_tuple=True)
        score[r, cols[r, j]] = 1e9 - j.double()
        return score.topk(k, dim=1).indices

    def act(self, obs: Observation) -> Slates:
        """Slates from constrained beam search; random before the first retrain."""
        if self._model is None or obs.num_users == 0:
            return Slates(obs.user_ids, random_slates(self._random, obs))
        cat, k = obs.catalog, obs.slate_size
        live = self._live_codes(cat)
        hist = self._history_codes(obs, live)
        if obs.shared_candidates:
            shared = torch.as_tensor(live[cat.rows(obs.candidates[0])], device=self._device)
        cols = np.empty((obs.num_users, k), np.int64)
        with torch.no_grad():
            for s in range(0, obs.num_users, _CHUNK):  # batches of users, bounded memory
                if obs.shared_candidates:
                    codes = shared
                else:
                    rows = cat.rows(obs.candidates[s : s + _CHUNK])
                    codes = torch.as_tensor(live[rows], device=self._device)
                cols[s : s + _CHUNK] = self._serve(hist[s : s + _CHUNK], codes, k)
        return Slates(obs.user_ids, np.take_along_axis(obs.candidates, cols, axis=1))

    def state_dict(self) -> dict[str, Any]:
        """Codebooks, item code table, transformer weights (numpy) and the retrain counter."""
        state: dict[str, Any] = {
            "num_retrains": self._num_retrains,
            "item_ids": self._item_ids.copy(),
            "codes": self._codes.copy(),
        }
        if self._model is not None:
            state["codebooks"] = self._codebooks.copy()
            state.update({f"model.{k}": v for k, v in self._model_state().items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._num_retrains = int(state["num_retrains"])
        self._item_ids = np.asarray(state["item_ids"], np.int64)
        self._codes = np.asarray(state["codes"], np.int64)
        model = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("model.")}
        self._model = self._new_model(model) if model else None
        self._codebooks = np.asarray(state["codebooks"], np.float32) if model else None
        self._cache = None
