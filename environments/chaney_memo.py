"""Process-wide memos of Chaney's keyed draws, shared by the worlds of one seed.

The trials of one seed (every recommender, both protocols) draw the same item attributes
and the same utilities: a process that runs them one after the other (``simlab.execution``
gives a worker whole seeds) keeps the latest seeds' draws here and hands them to the next
world instead of drawing them again. The values are those the world would draw (keyed
draws); the memos are bounded in keys and in cells. Used by :mod:`.chaney`.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from simlab.batch import lookup_sorted
from simlab.rng import Stream

__all__ = ["ATTRIBUTES", "DRAWS", "AttributeMemo", "DrawMemo"]


def _remember(table: OrderedDict, key: tuple, value, size: int) -> None:
    """Hold ``value`` under ``key`` as the most recent entry; drop the oldest past ``size``."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > size:
        table.popitem(last=False)


class AttributeMemo:
    """The item attributes of recent worlds in this process, shared by worlds of one seed.

    ``beta_i`` is a keyed draw of item ``i`` (ids count up from 0): for one seed and item
    settings it is the same in every world whatever its agent, so a process running the
    trials of one seed one after the other draws each item once. At most ``size`` keys, each
    of at most ``max_cells`` values (items past that are drawn by each world, as without it).
    """

    def __init__(self, size: int = 4, max_cells: int = 1 << 22) -> None:
        self.size, self.max_cells = size, max_cells
        self._held: OrderedDict[tuple, np.ndarray] = OrderedDict()  # key -> rows of ids 0..

    def take(self, key: tuple, ids: np.ndarray, draw: Stream, mu: np.ndarray) -> np.ndarray:
        """``(n, K)`` attributes of the consecutive ``ids``, drawing those not held yet."""
        if not ids.size:
            return np.zeros((0, mu.shape[0]))
        held = self._held.get(key, np.zeros((0, mu.shape[0])))
        end = int(ids[-1]) + 1
        if ids[0] > held.shape[0] or end * mu.shape[0] > self.max_cells:
            return draw.dirichlet(ids, 0, mu)  # not contiguous with the held rows, or too many
        if end > held.shape[0]:  # extend the held rows 0.. to cover ids
            held = np.concatenate([held, draw.dirichlet(np.arange(held.shape[0], end), 0, mu)])
        _remember(self._held, key, held, self.size)
        return held[ids]


ATTRIBUTES = AttributeMemo()
"""The process's item attributes memo (:class:`ChaneyItems` takes from it)."""


class DrawMemo:
    """The utility draws of recent worlds in this process, shared by worlds of one seed.

    ``V`` and ``eta`` are keyed draws: for one seed, user range and user settings they are
    the same in every world whatever its agent, so a process running the trials of one seed
    one after the other draws them once. Items are matched by id *and* attributes (a world
    with other item settings draws its own). At most ``size`` keys are kept, each of at most
    ``max_cells`` (user, item) pairs: a larger world is not held (each of its worlds draws
    its own, as without the memo), so the memo adds at most ``size * max_cells * 16`` bytes
    (V and eta, float64) to a process, 256 MiB with the defaults.
    """

    def __init__(self, size: int = 4, max_cells: int = 1 << 22) -> None:
        self.size, self.max_cells = size, max_cells
        # key -> (ids (n,) increasing, attributes (n, K), V (users, n), eta (users, n))
        self._tables: OrderedDict[tuple, tuple[np.ndarray, ...]] = OrderedDict()

    def get(self, key: tuple, ids: np.ndarray, attrs: np.ndarray):
        """``(V, eta)`` columns for ``ids`` if every one is held with these attributes."""
        table = self._tables.get(key)
        if table is None:
            return None, None
        self._tables.move_to_end(key)
        held, held_attrs, v, eta = table
        pos, found = lookup_sorted(held, ids)
        if not found.all() or not np.array_equal(held_attrs[pos], attrs):
            return None, None
        return v[:, pos], eta[:, pos]

    def put(self, key: tuple, ids: np.ndarray, attrs, v: np.ndarray, eta: np.ndarray) -> None:
        """Hold the draws of items ``ids`` (replacing those of the same ids)."""
        table = self._tables.get(key)
        if table is not None:
            held, held_attrs, held_v, held_eta = table
            keep = ~lookup_sorted(ids, held)[1]  # ``ids`` increasing (np.unique)
            ids = np.concatenate([held[keep], ids])
            attrs = np.concatenate([held_attrs[keep], attrs])
            v = np.concatenate([held_v[:, keep], v], axis=1)
            eta = np.concatenate([held_eta[:, keep], eta], axis=1)
        if v.size > self.max_cells:  # too large to hold a second copy of
            self._tables.pop(key, None)
            return
        order = np.argsort(ids, kind="stable")
        _remember(
            self._tables, key, (ids[order], attrs[order], v[:, order], eta[:, order]), self.size
        )


DRAWS = DrawMemo()
"""The process's utility memo (:class:`ChaneyUsers` takes from it)."""
