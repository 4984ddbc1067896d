"""Semantic IDs of the generative agent: residual k-means codebooks and disambiguation tokens.

Part of :mod:`simlab.agents.generative` (see its docstring, part 1): a residual quantiser
maps each item embedding to ``L`` codes, and items whose codes collide get an extra token,
their rank by item id within the group.
"""

from __future__ import annotations

import numpy as np
import torch

from simlab.rng import numpy_generator

__all__ = ["fit_residual_kmeans", "encode_residual", "dedup_tokens"]


def _nearest(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """``(n,)`` index of the nearest centroid (squared Euclidean) of each row of ``x``."""
    return ((centroids * centroids).sum(1)[None, :] - 2.0 * x @ centroids.T).argmin(1)


def _kmeans_pp(x: torch.Tensor, k: int, gen: np.random.Generator) -> torch.Tensor:
    """k-means++ seeding: ``(k, d)`` rows of ``x`` drawn with probability ~ squared distance."""
    n = x.shape[0]
    j = int(gen.integers(n))
    chosen = [j]
    d2 = ((x - x[j]) ** 2).sum(1)
    for _ in range(k - 1):  # a loop over centroids, each step vectorised over items
        w = np.cumsum(d2.double().cpu().numpy())
        # random() < 1 and r * w < w for r < 1 (rounded to nearest): j < n on either branch
        u = gen.random() * w[-1]
        j = int(np.searchsorted(w, u, side="right")) if w[-1] > 0 else int(gen.integers(n))
        chosen.append(j)
        d2 = torch.minimum(d2, ((x - x[j]) ** 2).sum(1))
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
    resid = torch.as_tensor(np.require(features, np.float32, "W"), device=device).clone()
    books = []
    for level in range(levels):
        if init is not None:
            c = torch.as_tensor(np.require(init[level], np.float32, "W"), device=device)
        else:
            gen = numpy_generator(seed, f"agent/generative/kmeans/{level}", step)
            c = _kmeans_pp(resid, size, gen)
        c = _lloyd(resid, c, iterations)
        resid = resid - c[_nearest(resid, c)]
        books.append(c)
    return torch.stack(books).cpu().numpy()


def encode_residual(features: np.ndarray, codebooks: np.ndarray, device: str = "cpu") -> np.ndarray:
    """``(n, L)`` int64 codes of ``features`` ``(n, d)``: nearest centroid of each residual."""
    resid = torch.as_tensor(np.require(features, np.float32, "W"), device=device).clone()
    codes = []
    for c in torch.as_tensor(np.require(codebooks, np.float32, "W"), device=device):
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
    group = group.ravel()
    order = np.lexsort((item_ids, group))
    g = group[order]
    idx = np.arange(g.size)
    start = np.maximum.accumulate(np.where(np.r_[True, g[1:] != g[:-1]], idx, 0))
    rank = np.empty_like(idx)
    rank[order] = idx - start
    return rank.astype(np.int64)
