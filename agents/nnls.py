"""Non-negative least squares for many right-hand sides at once (Lawson-Hanson, batched).

Content filtering (Chaney et al.) fits each user's attribute weights as
``x_u = argmin_{x >= 0} ||A x - y_u||^2`` over the same item matrix ``A``. In normal-equation
form every user shares ``G = A^T A`` and differs only in ``b_u = A^T y_u``, so the problem is
``min_{x >= 0} x^T G x / 2 - b_u^T x``: :func:`nnls_gram` runs the Lawson-Hanson active-set
algorithm for every user in lock step (each iteration is one batched ``numpy.linalg.solve``
over the users still moving), with no Python loop over users. It matches
``scipy.optimize.nnls`` on each user's problem (the tests check it on many random cases).
"""

from __future__ import annotations

import numpy as np

__all__ = ["nnls_gram"]


def _solve_on(gram: np.ndarray, b: np.ndarray, passive: np.ndarray) -> np.ndarray:
    """``(R, f)``: per row, the unconstrained minimiser over its passive set (0 elsewhere)."""
    f = gram.shape[0]
    both = passive[:, :, None] & passive[:, None, :]
    mats = np.where(both, gram, 0.0)
    mats[:, np.arange(f), np.arange(f)] += ~passive  # identity on the fixed-at-zero entries
    return np.linalg.solve(mats, (b * passive)[..., None])[..., 0]


def nnls_gram(
    gram: np.ndarray,
    b: np.ndarray,
    max_iter: int | None = None,
    support: np.ndarray | None = None,
) -> np.ndarray:
    """Solve ``min_{x >= 0} x^T G x / 2 - b^T x`` for every row of ``b``.

    Args:
        gram: ``(f, f)`` symmetric positive semi-definite ``G = A^T A``. The problem is
            solved in units where ``G`` has a unit diagonal, with a ridge of ``1e-12``
            there to keep the inner solves well posed when ``A`` is rank deficient.
        b: ``(R, f)`` right-hand sides ``A^T y``.
        max_iter: cap on the outer iterations (default ``3 f``, as ``scipy.optimize.nnls``).
        support: optional ``(R, f)`` bool guess of each solution's positive entries (the
            last solution, when a model is refitted on a little more data). A row whose
            guess gives a positive solution starts there, which saves most iterations; any
            other row starts from zero. The answer does not depend on the guess.

    Returns:
        ``(R, f)`` float64 solutions.
    """
    gram = np.asarray(gram, np.float64)
    b = np.asarray(b, np.float64)
    r, f = b.shape
    if not b.size:  # no rows or no attributes
        return np.zeros((r, f))
    # x = d * z with d = diag(G)^-1/2: the same problem (x >= 0 iff z >= 0) with a unit
    # diagonal, so columns of very different norms (sparse Dirichlet attributes) are
    # compared on one scale; a column that is zero everywhere keeps x = 0 (1 / sqrt(inf))
    diag = np.diag(gram)
    d = 1.0 / np.sqrt(np.where(diag > 0, diag, np.inf))
    unit = gram * d[:, None] * d[None, :] + np.eye(f) * 1e-12
    z = _nnls_unit(unit, b * d, max_iter, support)
    return z * d


def _nnls_unit(
    gram: np.ndarray, b: np.ndarray, max_iter: int | None, support: np.ndarray | None
) -> np.ndarray:
    """:func:`nnls_gram` on a Gram matrix with a unit diagonal (``1e-12`` for zero columns)."""
    r, f = b.shape
    x = np.zeros((r, f))
    tol = 10.0 * f * np.finfo(float).eps * max(float(np.abs(b).max()), 1.0)
    passive = np.zeros((r, f), bool)
    if support is not None:  # start from the guessed support where it is feasible
        guess = np.asarray(support, bool)  # a zero column's entry solves to 0: not feasible
        rows = np.flatnonzero(guess.any(axis=1))
        z = _solve_on(gram, b[rows], guess[rows])
        ok = ~(guess[rows] & (z <= tol)).any(axis=1)
        rows = rows[ok]
        passive[rows] = guess[rows]
        x[rows] = np.where(guess[rows], z[ok], 0.0)
    moving = np.ones(r, bool)
    for _ in range(max_iter or 3 * f):
        w = b - x @ gram  # minus the gradient
        cand = ~passive & (w > tol)
        moving &= cand.any(axis=1)
        rows = np.flatnonzero(moving)
        if not rows.size:  # every row has settled
            return x
        j = np.argmax(np.where(cand[rows], w[rows], -np.inf), axis=1)
        passive[rows, j] = True
        # inner loop: step back toward feasibility until the passive solution is positive
        inner = rows
        for _ in range(f + 1):
            z = _solve_on(gram, b[inner], passive[inner])
            bad = passive[inner] & (z <= tol)
            fine = ~bad.any(axis=1)
            x[inner[fine]] = np.where(passive[inner[fine]], z[fine], 0.0)
            if fine.all():
                break
            inner, z, bad = inner[~fine], z[~fine], bad[~fine]
            xi = x[inner]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(bad, xi / (xi - z), np.inf)
            alpha = ratio.min(axis=1, keepdims=True)
            xi = xi + alpha * (z - xi)
            keep = passive[inner] & (xi > tol)
            passive[inner] = keep
            x[inner] = np.where(keep, xi, 0.0)
    return x
