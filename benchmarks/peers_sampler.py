"""Iterated multinomial-logit slate draws (RecSim NG's slate sampler), batched in torch.

Used by ``benchmarks/peers.py``'s ``recsim-cf`` agent: ``K`` draws without replacement per
row, proportional to ``exp(score)`` over the columns not drawn yet, from ``K`` uniforms per
row (as TensorFlow's categorical sampler draws one uniform per slot).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "block_width",
    "draw_from_blocks",
    "iterated_logit_draws",
    "logit_draws_",
    "logit_weights_",
]


def iterated_logit_draws(
    scores: np.ndarray, u: np.ndarray, work: np.ndarray | None = None
) -> np.ndarray:
    """``K`` draws without replacement by multinomial logit, by inverse CDF, per row.

    Draw ``j`` picks column ``i`` with probability ``exp(s_i) / sum exp(s_m)`` over the
    columns not drawn yet (RecSim NG's ``IteratedMultinomialLogitChoiceModel``), from the
    uniform ``u[:, j]``. This is the numpy front end of :func:`logit_draws_`.

    Args:
        scores: ``(B, C)`` logits.
        u: ``(B, K)`` uniforms on (0, 1), ``K <= C``.
        work: unused (kept for callers of the former sampler).

    Returns:
        ``(B, K)`` distinct column indices per row, in draw order.

    >>> s = np.array([[0.0, 50.0, 0.0, 49.0, -9.0]])
    >>> iterated_logit_draws(s, np.array([[0.5, 0.5, 0.99]])).tolist()
    [[1, 3, 2]]
    """
    import torch

    del work
    b, c = scores.shape
    w = torch.zeros((b, block_width(c)), dtype=torch.float32)
    w[:, :c] = torch.from_numpy(np.asarray(scores, dtype=np.float32))
    u_t = torch.from_numpy(np.ascontiguousarray(u, np.float64))
    return logit_draws_(w, c, u_t).numpy()


def block_width(c: int) -> int:
    """Columns of the :func:`logit_draws_` buffer for ``c`` columns (padded to whole blocks).

    About ``sqrt(c)`` blocks of ``ceil(sqrt(c))`` columns each.
    """
    size = max(1, int(np.ceil(np.sqrt(c))))
    return -(-c // size) * size


def logit_draws_(w: Any, c: int, u: Any) -> Any:
    """Iterated multinomial-logit draws from the logits in ``w[:, :c]`` (``w`` overwritten).

    ``w`` is a ``(B, block_width(c))`` float32 tensor whose first ``c`` columns hold the
    logits; it is overwritten by the weights ``exp(s - max)`` (padding: 0). The columns are
    cut into about ``sqrt(C)`` blocks: a draw finds its block from the block masses (float64
    sums, less what was drawn), then its column inside that block from the block's running
    sum, and the column's weight is set to 0 and its block re-summed (not subtracted: no
    cancellation). Float32 weights and in-block sums (TensorFlow's categorical sampler works
    in float32); the block masses and targets in float64. A row costs one pass over its
    ``C`` columns and ``O(K sqrt(C))`` per slate, never ``K`` passes; every step is a
    batched torch call over all rows.

    Args:
        w: ``(B, W)`` float32 buffer, logits in the first ``c`` columns (overwritten).
        c: number of real columns.
        u: ``(B, K)`` float64 uniforms on (0, 1), ``K <= c``.

    Returns:
        ``(B, K)`` int64 tensor of distinct column indices per row, in draw order.
    """
    return draw_from_blocks(w, logit_weights_(w, c), c, u)


def logit_weights_(w: Any, c: int) -> Any:
    """Weights ``exp(s - max)`` in place of the logits in ``w[:, :c]``; the block masses.

    Args:
        w: ``(B, block_width(c))`` float32 logits in the first ``c`` columns (overwritten;
            the padding becomes 0).
        c: number of real columns.

    Returns:
        ``(B, nblocks)`` float64 masses of the blocks of ``ceil(sqrt(c))`` columns (float32
        sums of a block's weights).
    """
    b, width = w.shape
    size = max(1, int(np.ceil(np.sqrt(c))))
    real = w[:, :c]
    real.sub_(real.amax(dim=1, keepdim=True)).exp_()
    w[:, c:] = 0.0  # the padding weighs nothing
    return w.view(b, width // size, size).sum(dim=2).double()


def draw_from_blocks(w: Any, blocks: Any, c: int, u: Any) -> Any:
    """The draws of :func:`logit_draws_` from weights ``w`` and block masses ``blocks``.

    Args:
        w: ``(B, W)`` float32 weights (from :func:`logit_weights_`; drawn columns are set
            to 0).
        blocks: ``(B, nblocks)`` float64 block masses (updated as columns are drawn).
        c: number of real columns.
        u: ``(B, K)`` float64 uniforms on (0, 1).

    Returns:
        ``(B, K)`` int64 tensor of distinct column indices per row, in draw order.
    """
    import torch

    b, width = w.shape
    nblocks = blocks.shape[1]
    size = width // nblocks
    k = u.shape[1]
    # flat views: a row of `rows` per (user, block); indexing them with one flat index per
    # user is several times cheaper than `gather`/`scatter_` with expanded index tensors
    rows = w.view(b * nblocks, size)
    flat_w, flat_blocks = w.view(-1), blocks.view(-1)
    first_block = torch.arange(b) * nblocks  # (B,) each user's first row of `rows`
    chosen = torch.empty((b, k), dtype=torch.int64)
    for j in range(k):
        bcum = blocks.cumsum(dim=1)  # (B, nblocks)
        x = u[:, j] * bcum[:, -1]  # (B,)
        # searchsorted(right=True) on a non-decreasing row: how many entries are <= x
        blk = (bcum <= x[:, None]).sum(dim=1).clamp_(max=nblocks - 1)  # (B,)
        at = first_block + blk  # (B,) the chosen block's row of `rows`
        x -= bcum.view(-1).index_select(0, at) - flat_blocks.index_select(0, at)  # in block
        inner = rows.index_select(0, at)  # (B, size), a copy
        pos = (inner.cumsum(dim=1) <= x.float()[:, None]).sum(dim=1).clamp_(max=size - 1)
        chosen[:, j] = blk * size + pos
        flat_w.index_fill_(0, at * size + pos, 0.0)
        inner.scatter_(1, pos[:, None], 0.0)
        flat_blocks.index_copy_(0, at, inner.sum(dim=1).double())
    if k > 1 or c < width:
        srt = chosen.sort(dim=1).values
        bad = (srt[:, 1:] == srt[:, :-1]).any(dim=1) | (srt[:, -1] >= c)
        if bool(bad.any()):  # float rounding at an edge of vanishing mass: redraw greedily
            for r in bad.nonzero()[:, 0].tolist():  # rare rows only
                chosen[r] = _greedy_row(w[r, :c], chosen[r], c)
    return chosen


def _greedy_row(weights: Any, drawn: Any, c: int) -> Any:
    """A row's draws made distinct: drawn valid columns kept, the rest by highest weight."""
    import torch

    out, seen = [], set()
    for col in drawn.tolist():
        if col < c and col not in seen:
            out.append(col)
            seen.add(col)
    order = torch.argsort(weights, descending=True, stable=True).tolist()
    for col in order:
        if len(out) == drawn.shape[0]:
            break
        if col not in seen:
            out.append(col)
            seen.add(col)
    return torch.tensor(out, dtype=torch.int64)
