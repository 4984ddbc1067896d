"""The latent item table (what users and metrics see) and its observable catalog (agents).

:class:`ItemTable` is the latent truth about the live items, one struct of arrays shared by
every content model; :func:`observable_catalog` is what agents see of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simlab.batch import Catalog, lookup_sorted

__all__ = ["ItemTable", "observable_catalog"]


@dataclass
class ItemTable:
    """Latent truth about the live items, sorted by id (struct of arrays, ``N`` rows).

    Attributes:
        item_ids: ``(N,)`` int64.
        creator: ``(N,)`` int64.
        source: ``(N,)`` int8, 0 = human, 1 = AIGC.
        topic: ``(N,)`` int64 the creator's topic.
        latent: ``(N, d)`` float32 unit-norm latent embeddings (what users' utility uses).
        features: ``(N, d)`` float32 observable embeddings.
        quality: ``(N,)`` float32 latent quality.
        published: ``(N,)`` int64 publication step (negative for the initial catalog).
        original: ``(N,)`` int64 id of the human item an AIGC rewrite copies, else -1.
    """

    item_ids: np.ndarray
    creator: np.ndarray
    source: np.ndarray
    topic: np.ndarray
    latent: np.ndarray
    features: np.ndarray
    quality: np.ndarray
    published: np.ndarray
    original: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.original is None:
            self.original = np.full(self.item_ids.shape[0], -1, np.int64)

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Row index of each (live) item id, any shape."""
        return lookup_sorted(self.item_ids, item_ids)[0]

    def select(self, mask: np.ndarray) -> ItemTable:
        """The rows where ``mask`` is true."""
        return type(self)(**{k: v[mask] for k, v in self.__dict__.items()})

    @staticmethod
    def concat(a: ItemTable, b: ItemTable) -> ItemTable:
        """Rows of ``a`` then rows of ``b`` (ids of ``b`` must all be larger)."""
        return type(a)(**{k: np.concatenate([v, b.__dict__[k]]) for k, v in a.__dict__.items()})


def observable_catalog(items: ItemTable, t: int, knows_source: bool) -> Catalog:
    """What agents see of ``items`` at step ``t``: ids, features, creators, ages (and sources)."""
    return Catalog(
        item_ids=items.item_ids,
        features=items.features,
        creator=items.creator,
        age=t - items.published,
        source=items.source if knows_source else None,
    )
