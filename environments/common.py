"""The latent topic space shared by users and content."""

from __future__ import annotations

import numpy as np

from simlab.rng import Stream

__all__ = ["topic_centres", "normalize_rows"]


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
