"""Gamma-family draws of a keyed stream: log-gamma, Dirichlet, Beta, and Chaney's Beta'.

Part of :mod:`simlab.rng` (see its docstring for the keys and the guarantees): these draws
are made of the stream's uniforms, so they inherit its keying by (seed, stream, id, step).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["GammaDraws", "beta_prime_params"]


class GammaDraws:
    """Gamma-family draws (a mixin of :class:`~simlab.rng.Stream`).

    The host provides :meth:`~simlab.rng.Stream.uniform` and :meth:`~simlab.rng.Stream.child`.
    """

    def log_gamma(
        self, ids: np.ndarray | Sequence[int], step: int, shape: np.ndarray | float
    ) -> np.ndarray:
        """Logarithms of Gamma(``shape``, 1) draws, exact and stable for tiny shapes.

        Inverse CDF of one uniform per value (``scipy.special.gammaincinv``). A shape below
        1 uses ``G(a) = G(a + 1) * U**(1/a)`` with a second uniform, in logs, so that
        ``shape = 0.005`` (whose draws underflow float64 most of the time) still gives
        usable values.

        Args:
            ids: entity ids, shape ``(B,)``.
            step: the step of the draw.
            shape: positive shapes broadcasting to ``(B, n)`` or ``(n,)``; one value per
                shape entry and entity.

        Returns:
            ``(B, n)`` (or ``(B,)`` for a scalar shape) float64 logs of the draws.
        """
        from scipy import special

        ids = np.asarray(ids)
        a = np.asarray(shape, np.float64)
        if not (np.isfinite(a).all() and (a > 0).all()):
            raise ValueError(f"Expects positive finite gamma shapes, actual values: {a}")
        n = np.atleast_1d(a).shape[-1]
        u = self.uniform(ids, step, size=(n, 2))
        a = np.broadcast_to(np.atleast_1d(a), ids.shape + (n,))
        small = a < 1.0
        big = special.gammaincinv(np.where(small, a + 1.0, a), u[..., 0])
        out = np.log(big)
        if small.any():
            out = np.where(small, out + np.log(u[..., 1]) / a, out)
        return out if np.ndim(shape) else out[..., 0]

    def dirichlet(
        self, ids: np.ndarray | Sequence[int], step: int, alpha: np.ndarray
    ) -> np.ndarray:
        """Dirichlet(``alpha``) draws, one vector per entity (normalised gamma draws).

        Args:
            ids: entity ids, any shape ``S`` (usually ``(B,)``).
            step: the step of the draw.
            alpha: positive concentrations, ``(n,)`` shared or ``S + (n,)`` per entity.

        Returns:
            ``S + (n,)`` float64 vectors on the simplex.

        >>> from simlab.rng import Stream
        >>> x = Stream(0, "doc").dirichlet([1, 2], 0, np.array([0.01, 1.0, 5.0]))
        >>> x.shape, np.allclose(x.sum(axis=1), 1.0)
        ((2, 3), True)
        """
        logs = self.log_gamma(ids, step, np.asarray(alpha, np.float64))
        logs -= logs.max(axis=-1, keepdims=True)
        out = np.exp(logs)
        out /= out.sum(axis=-1, keepdims=True)
        return out

    def beta(
        self, ids: np.ndarray | Sequence[int], step: int, a: np.ndarray, b: np.ndarray
    ) -> np.ndarray:
        """Beta(``a``, ``b``) draws, ``X / (X + Y)`` with ``X ~ Gamma(a)``, ``Y ~ Gamma(b)``.

        ``a`` and ``b`` broadcast to ``ids.shape`` (one draw per entity); the two gamma
        draws use two sub-streams of this stream.
        """
        ids = np.asarray(ids)
        a = np.broadcast_to(np.asarray(a, np.float64), ids.shape)
        b = np.broadcast_to(np.asarray(b, np.float64), ids.shape)
        flat = ids.ravel()
        # one shape per entity: (E, 1) shapes, (E, 1) draws
        lx = self.child("x").log_gamma(flat, step, a.ravel()[:, None]).ravel()
        ly = self.child("y").log_gamma(flat, step, b.ravel()[:, None]).ravel()
        # X / (X + Y) = 1 / (1 + exp(ly - lx)), stable for either log far larger
        from scipy.special import expit

        return expit(lx - ly).reshape(ids.shape)


def beta_prime_params(mean: np.ndarray, sd: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Beta parameters ``(a, b)`` with the given mean and standard deviation.

    Chaney et al.'s "Beta'" (RecSys 2018, footnote 3): ``a = ((1 - mu)/sd**2 - 1/mu) mu**2``
    and ``b = a (1/mu - 1)``, so that ``Beta(a, b)`` has mean ``mu`` and variance ``sd**2``.

    Raises:
        ValueError: a mean outside (0, 1), or a variance too large for that mean
            (``sd**2 >= mu (1 - mu)``), for which no Beta distribution exists.
    """
    mu = np.asarray(mean, np.float64)
    sd = np.asarray(sd, np.float64)
    if not ((mu > 0).all() and (mu < 1).all()):
        raise ValueError(f"Expects Beta' means in (0, 1), actual range: [{mu.min()}, {mu.max()}]")
    if not (sd > 0).all():
        raise ValueError(f"Expects positive Beta' standard deviations, actual minimum: {sd.min()}")
    a = ((1.0 - mu) / sd**2 - 1.0 / mu) * mu**2
    if not (a > 0).all():
        raise ValueError(
            f"Expects sd**2 < mean (1 - mean) for a Beta' draw, actual sd "
            f"{np.broadcast_to(sd, a.shape)[a <= 0].ravel()[0]} with a mean of "
            f"{np.broadcast_to(mu, a.shape)[a <= 0].ravel()[0]}"
        )
    return a, a * (1.0 / mu - 1.0)
