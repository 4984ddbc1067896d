"""A label-free source debiaser: make the content encoder isotropic before scoring.

Content-based scorers favour AIGC when the encoder's embeddings share a common direction
that AIGC text lies further along (``content.anisotropy`` and ``style_magnitude``): a user
vector averaged from clicked features carries that direction, so every AIGC item gets a
bonus. :class:`IsotropyReranker` removes what the embeddings share without being told what
AIGC is -- no source labels, no rewrite function: on the step's live catalog it estimates
the mean feature vector ``mu`` and the top ``components`` principal directions ``U`` of the
centred features ("all-but-the-top", Mu & Viswanath, ICLR 2018), and re-scores each listed
item through the agent with every feature it reads (the clicked items' in the user tower
and the listed items') mapped to ``(f - mu) - U U^T (f - mu)``.

What it can and cannot remove: centring cancels the common component of users and items
alike, so the bonus AIGC gets *for every user* goes; the style carried by the users who
clicked more AIGC than average remains (it is a deviation, not the mean), unless it is one
of the top principal directions of the catalog -- which it is only when AIGC's style moves
items further than topics do. The label-informed debiasers (``style-removal``, which
estimates the style from source labels, and the invariance term fed the exact rewrite) use
knowledge this one does without; they are not upper bounds (an estimated direction leaves
its error behind: docs/experiments.md, experiment 2).

It needs an agent that scores given features with a transform (``two-tower``:
``score(obs, item_ids, features, transform)``); the world binds it. Over other agents it
keeps the agent's order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import Observation
from simlab.scenario import ParamsModel

from .rerank import Reranker

__all__ = ["IsotropyReranker", "isotropy_map"]


def isotropy_map(features: np.ndarray, components: int):
    """The map ``f -> (f - mu) - U U^T (f - mu)`` estimated on ``features`` (N, d).

    ``U`` holds at most the rank of the centred features' directions (numpy's
    ``matrix_rank`` tolerance): asking for more components than the features span removes
    only those they span, never an arbitrary direction of the null space.
    """
    feats = np.asarray(features, np.float64)
    mu = feats.mean(axis=0)
    centred = feats - mu
    top = np.zeros((feats.shape[1], 0))
    if components > 0 and feats.shape[0] > 1:
        _, sv, vt = np.linalg.svd(centred, full_matrices=False)
        rank = int(np.count_nonzero(sv > sv[0] * max(centred.shape) * np.finfo(float).eps))
        top = vt[: min(components, rank)].T  # (d, D)

    def transform(f: np.ndarray) -> np.ndarray:
        c = np.asarray(f, np.float64) - mu
        return (c - (c @ top) @ top.T).astype(np.float32)

    return transform


class IsotropyReranker(Reranker):
    """Re-score with the catalog's mean and top principal directions removed (module docs)."""

    class Params(ParamsModel):
        """Scenario keys of the isotropy re-ranker."""

        components: int = Field(
            1,
            ge=0,
            le=64,
            description="Top principal directions of the centred catalog removed besides the "
            "mean (0 = centring only).",
        )

    _scorer: Any = None

    def bind_scorer(self, scorer: Any) -> None:
        """Receive the agent's ``score(obs, item_ids, features, transform)``."""
        self._scorer = scorer

    def rerank(self, obs: Observation, ranked: np.ndarray) -> np.ndarray:
        """Sort each list by the agent's scores on isotropic features."""
        if self._scorer is None or obs.catalog.num_items < 2:
            return ranked
        transform = isotropy_map(obs.catalog.features, self.params.components)
        score = np.asarray(self._scorer(obs, ranked, None, transform))
        order = np.argsort(-score, axis=1, kind="stable")
        return np.take_along_axis(ranked, order, axis=1)
