"""Constrained beam search of the generative agent over a trie of the candidates' codes.

Part of :mod:`simlab.agents.generative` (see its docstring, part 3): the trie is one sorted
array of prefix ids per level, queried with ``searchsorted``; tokens that no candidate
continues get log-probability ``-inf``.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["constrained_beam_search"]


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
