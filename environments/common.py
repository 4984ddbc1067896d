"""The latent topic space shared by users and content."""

from __future__ import annotations

import numpy as np

from simlab.batch import is_row_broadcast
from simlab.rng import Stream

__all__ = ["topic_centres", "normalize_rows", "slate_rows", "Scratch"]


def topic_centres(seed: int, num_topics: int, dim: int, spread: float) -> np.ndarray:
    """``(num_topics, dim)`` topic centres, each of norm about ``spread``.

    Users and content both call this with the trial seed, so they live in the same space.
    """
    z = Stream(seed, "world/topics").normal(np.arange(num_topics), 0, size=dim)
    return (z * (spread / np.sqrt(dim))).astype(np.float32)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def slate_rows(items, slates: np.ndarray) -> np.ndarray:
    """``(B, K)`` rows of the slates' items in the latent item table ``items``.

    Slates that are one row broadcast to every user (a non-personalised ranking) are looked
    up once and stay a zero-copy broadcast, so per-user work can use their single row.
    """
    if is_row_broadcast(slates):
        return np.broadcast_to(items.rows(slates[:1]), slates.shape)
    return items.rows(slates)


class Scratch:
    """Work arrays kept from step to step for a model's temporaries.

    Touching freshly allocated memory is slow (page faults); a per-step temporary of the
    same shape reuses the same array instead. Nothing returned to a caller may live in
    one. A pickled (or copied) ``Scratch`` comes back empty.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def __reduce__(self):
        return (Scratch, ())

    def get(self, name: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
        """The work array ``name`` of ``shape`` and ``dtype`` (contents undefined)."""
        a = self._arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._arrays[name] = np.empty(shape, dtype)
        return a
