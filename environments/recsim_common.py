"""Building blocks of the RecSim NG-style models, native and bridged.

Shared by :mod:`simlab.environments.interest_evolution` (RecSim NG's interest-evolution
model in numpy) and :mod:`simlab.environments.recsim_ng.population` (the same model run by
RecSim NG itself): the corpus's item table and static-content protocol, the corpus keys,
the protocol pieces of users who all arrive every step, and the dimension rule
``world.dim == world.num_topics``. The model itself is described in
:mod:`simlab.environments.interest_evolution`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import Catalog
from simlab.errors import ScenarioError
from simlab.scenario import ParamsModel
from simlab.world import WorldContext

from .items import ItemTable, observable_catalog

__all__ = [
    "RecSimItems",
    "StaticCorpus",
    "CorpusParams",
    "AllUsersEachStep",
    "check_dims",
    "topic_means",
]


def topic_means(num_topics: int, trashy_share: float, lo: float, hi: float) -> np.ndarray:
    """``(T,)`` mean topic qualities: trashy ``linspace(lo, 0)``, then ``linspace(0, hi)``.

    >>> topic_means(2, 0.7, -1.0, 1.0).tolist(), topic_means(5, 0.7, -1.0, 1.0).tolist()
    ([-1.0, 0.0], [-1.0, -0.5, 0.0, 0.0, 1.0])
    """
    trashy = int(num_topics * trashy_share)
    return np.concatenate(
        [np.linspace(lo, 0.0, trashy), np.linspace(0.0, hi, num_topics - trashy)]
    ).astype(np.float64)


@dataclass
class RecSimItems(ItemTable):
    """The corpus as simlab's latent item table, plus each document's ``length``.

    ``latent`` and ``features`` are both the document features (``(N, T)``), ``topic`` the
    document topic, ``quality`` its quality; ``creator`` is the document id (RecSim NG has no
    creators) and ``source`` is 0 (human) throughout.
    """

    length: np.ndarray | None = None

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Row index of each (live) item id, any shape (the id itself for ids ``0..N-1``)."""
        n = len(self.item_ids)
        if n and self.item_ids[0] == 0 and self.item_ids[-1] == n - 1:  # sorted, unique
            return np.asarray(item_ids)
        return np.searchsorted(self.item_ids, item_ids)

    def select(self, mask: np.ndarray) -> RecSimItems:
        """The rows where ``mask`` is true."""
        return RecSimItems(**{k: v[mask] for k, v in self.__dict__.items()})


def check_dims(ctx: WorldContext, who: str) -> None:
    """RecSim NG's models need ``world.dim == world.num_topics``; a ScenarioError otherwise."""
    if ctx.dim != ctx.num_topics:
        raise ScenarioError(
            f"{who}: document features and interests live in R^num_topics, so world.dim must "
            f"equal world.num_topics; got world.dim={ctx.dim}, world.num_topics="
            f"{ctx.num_topics} (RecSim NG's default is 2 and 2)"
        )


def _dim_errors(scenario: Any, where: str) -> list[str]:
    world = scenario.world
    if world.dim == world.num_topics:
        return []
    return [
        f"{where}: document features and interests live in R^num_topics, so world.dim must "
        f"equal world.num_topics; got world.dim={world.dim}, world.num_topics="
        f"{world.num_topics} (RecSim NG's default is 2 and 2)"
    ]


class StaticCorpus:
    """A content model whose documents never change: the protocol around a fixed table.

    A subclass builds its :class:`RecSimItems` and passes them to :meth:`_freeze`.
    """

    items: RecSimItems

    @classmethod
    def check_scenario(cls, params: Any, scenario: Any) -> list[str]:
        """Validate-time rule: RecSim's documents need ``world.dim == world.num_topics``."""
        return _dim_errors(scenario, "content.model")

    @classmethod
    def new_items_per_step(cls, params: Any) -> int:
        """Documents published at each step: none (the corpus exists before step 0)."""
        return 0

    def _freeze(self, items: RecSimItems) -> None:
        self.items = items
        for arr in items.__dict__.values():
            arr.setflags(write=False)
        self._no_new = np.zeros(0, np.int8)
        self.t = -1

    def step(self, t: int, last_exposure: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Nothing changes: the corpus is static."""
        self.t = t

    def catalog(self, knows_source: bool) -> Catalog:
        """Every document with its features (``source`` all human when the platform knows it)."""
        return observable_catalog(self.items, self.t, knows_source)

    def latent(self) -> RecSimItems:
        """The documents (users and metrics only)."""
        return self.items

    def new_item_sources(self) -> np.ndarray:
        """No document is published after the start: ``(0,)``."""
        return self._no_new

    def state_dict(self) -> dict[str, int]:
        """The step (the documents are a function of the seed)."""
        return {"t": self.t}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.t = int(state["t"])


class CorpusParams(ParamsModel):
    """Scenario keys shared by RecSim NG's corpus models (native and RecSim NG's own)."""

    num_docs: int = Field(100, gt=0, description="Documents in the (static) corpus.")
    topic_min_utility: float = Field(
        -1.0, le=0, description="Mean quality of the worst trashy topic."
    )
    topic_max_utility: float = Field(
        1.0, ge=0, description="Mean quality of the best nutritious topic."
    )
    doc_length: float = Field(
        2.0, gt=0, description="Length of every document (consumed time = share * length)."
    )


class AllUsersEachStep:
    """Population protocol pieces shared by the RecSim NG-style users.

    Every user of the shard arrives every step, the platform observes nothing of them, and
    their interests are ``_interest`` (current) and ``_initial``. Subclasses call
    :meth:`_bind` first and then set ``_interest`` and ``_initial``.
    """

    ctx: WorldContext
    _uid: np.ndarray
    _interest: np.ndarray
    _initial: np.ndarray
    _zeros: np.ndarray | None = None

    @classmethod
    def check_scenario(cls, params: Any, scenario: Any) -> list[str]:
        """Validate-time rules: ``world.dim == world.num_topics``; documents with a length."""
        out = _dim_errors(scenario, "users.model")
        if not issubclass(scenario.content.cls, StaticCorpus):
            out.append(
                f"users.model: '{scenario.users.model}' users consume documents with a `length` "
                f"(RecSim's corpus); content.model '{scenario.content.model}' has none; use "
                "content.model: recsim-corpus (or recsim-ng-corpus)"
            )
        return out

    def _bind(self, params: Any, ctx: WorldContext, model: str) -> None:
        """Check the dimensions and take the shard's users ``lo..hi-1`` (all without a range)."""
        check_dims(ctx, model)
        self.params = params
        self.ctx = ctx
        self.num_users = params.num_users
        self.lo, self.hi = ctx.user_range or (0, params.num_users)
        self._uid = np.arange(self.lo, self.hi, dtype=np.int64)

    def arrivals(self, t: int) -> np.ndarray:
        """Every user of the shard, every step."""
        return self._uid

    def observable_features(self, user_ids: np.ndarray) -> np.ndarray:
        """``(B, d)`` zeros: RecSim NG's interest-evolution user shows the platform nothing."""
        b = len(user_ids)
        if self._zeros is None or self._zeros.shape[0] < b:
            self._zeros = np.zeros((b, self.ctx.dim), np.float32)
            self._zeros.setflags(write=False)
        return self._zeros[:b]

    def interests(self) -> tuple[np.ndarray, np.ndarray]:
        """``(current, initial)`` interests of users ``lo..hi-1``, read-only views."""
        cur = self._interest.view()
        cur.setflags(write=False)
        return cur, self._initial
