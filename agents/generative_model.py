"""The generative agent's decoder-only transformer, its training examples and its loss.

Part of :mod:`simlab.agents.generative` (see its docstring, part 2): the click examples of
a log window (:func:`click_sequences`), the transformer over code tokens with a KV-cached
incremental step (:class:`SemanticIDTransformer`), the teacher-forced loss with the
optional APAO prefix term (:func:`sequence_loss`) and the AdamW training loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias
from torch import nn

from simlab.batch import PAD, Log

from .generative_params import PrefixLossParams, TrainingParams, TransformerParams

__all__ = [
    "SemanticIDTransformer",
    "click_sequences",
    "sequence_loss",
    "train_semantic_transformer",
]


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
    order = np.lexsort((steps, users))  # a stable sort: same-step clicks keep the log's order
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
    ``w = normalise(normalise(l) * exp(eta * l))`` (computed in log space, so any ``eta`` and
    ``tau`` give finite weights; all ``l_t = 0`` gives no term).
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
    if prefix.enabled:  # a one-level target has no prefix t = 1 .. L: the term adds 0
        t = torch.arange(1, target.shape[1], device=logp.device)
        ell = -(logp.cumsum(1)[:, :-1] / t).mean(0) / prefix.tau
        # w_t = l_t exp(eta l_t) / sum_s l_s exp(eta l_s), in log space: exp(eta l_t) alone
        # overflows or underflows float32 at |eta l_t| near 90 (a NaN loss, then NaN weights);
        # all l_t = 0 (certain predictions) leaves 0 / 0 = NaN weights: set to 0, no term
        le = ell.detach()
        w = torch.softmax(torch.log(le) + prefix.eta * le, 0).nan_to_num()
        loss = loss + prefix.beta * (w * ell).sum()
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
