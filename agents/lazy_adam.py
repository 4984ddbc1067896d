"""A lazy Adam over the rows of a table: the cost of a step is the batch's, not the table's."""

from __future__ import annotations

from typing import Any

from .base import require_torch

__all__ = ["LazyAdamRows"]


class LazyAdamRows:
    """Adam on the rows of a table that a batch uses only (a "lazy" Adam, as SparseAdam).

    Each row keeps its own first and second moment estimates, updated only at the steps
    whose batch holds the row; the bias corrections use the global step count. A row
    absent from a batch does not move (a dense Adam would move it by its momentum), and a
    step costs O(rows in the batch), not O(rows in the table).

    Args:
        table: ``(U, f)`` float32 tensor, updated in place.
        lr: learning rate (betas 0.9, 0.999 and eps 1e-8, torch's Adam defaults).
    """

    def __init__(self, table: Any, lr: float) -> None:
        torch = require_torch("LazyAdamRows")
        self.table = table
        self.lr = lr
        self.m = torch.zeros_like(table)
        self.v = torch.zeros_like(table)
        self.t = 0
        self._rows: Any = None

    def gather(self, ids: Any) -> tuple[Any, Any]:
        """The distinct rows of ``ids`` as a leaf tensor, and where each id's row is in it.

        Returns:
            ``(leaf, where)``: ``(R, f)`` rows needing a gradient and ``(B,)`` indices.
        """
        torch = require_torch("LazyAdamRows")
        self._rows, where = torch.unique(ids, return_inverse=True)
        leaf = self.table[self._rows].requires_grad_()
        return leaf, where

    def step(self, grad: Any) -> None:
        """One Adam step of the rows of the last :meth:`gather` with their ``grad``."""
        if grad is None:
            return
        b1, b2, eps = 0.9, 0.999, 1e-8
        self.t += 1
        r = self._rows
        m = self.m[r].mul_(b1).add_(grad, alpha=1 - b1)
        v = self.v[r].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        self.m[r], self.v[r] = m, v
        step = self.lr / (1 - b1**self.t)
        denom = (v / (1 - b2**self.t)).sqrt_().add_(eps)
        self.table[r] -= step * m / denom
