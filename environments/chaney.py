"""Chaney, Stewart & Engelhardt's world (RecSys 2018), as replicated by T-RECS.

Two components, chosen from YAML and usable with simlab's other mechanisms:

- :class:`ChaneyItems` (content ``chaney-items``): each step publishes ``items_per_step``
  items whose attributes are ``beta_i ~ Dirichlet(mu_alpha)``, with the per-seed hyper-prior
  ``mu_alpha = attribute_scale * Dirichlet(attribute_concentration * 1_K)`` (0.1 and 100 in
  the paper, ``K = world.dim`` attributes). Items never retire by default. The observable
  features are the attributes themselves (the paper's content filtering knows them).
- :class:`ChaneyUsers` (users ``chaney``): preferences ``theta_u ~ Dirichlet(mu_rho)``,
  ``mu_rho = preference_scale * Dirichlet(1_K)`` (10 in the paper). The true utility of an
  item is ``V_ui ~ Beta'(theta_u . beta_i, sigma)`` and the utility a user knows is
  ``P_ui = V_ui * eta_ui`` with ``eta_ui ~ Beta'(known_utility, sigma)`` (0.98, sigma = 1e-5),
  where ``Beta'(mu, s)`` is the Beta distribution with mean ``mu`` and standard deviation
  ``s`` (:func:`simlab.rng.beta_prime_params`). Every step every user consumes exactly one
  item of the ranked list shown: ``argmax_r r**attention_exp * P_u(item at rank r)`` with
  ``attention_exp = -0.8`` (no no-click option). Preferences are static. The engagement
  of a consumption is its true utility ``V``, so ``engagement/mean`` is the mean utility of
  the consumed items, Chaney's utility measure.

Repeat consumption is ruled out by the platform (``platform.exclude_consumed: true``:
consumed items leave the candidates; with ``platform.consumed_ranked: true`` they stay ranked,
taking rank positions, and the users pass over them, as T-RECS's replication does), and
the paper's protocol (whole ranked catalog, start-up steps showing the new items, new items
interleaved at random positions) by ``platform.slate_size: 0``,
``platform.startup_steps``/``startup_candidates: new`` and the ``interleave-new`` re-ranker:
see ``scenarios/experiments/chaney.yaml``.

Every draw is keyed: ``theta`` by user id, ``beta`` by item id, ``V`` and ``eta`` by the
``(user, item)`` pair, so a user's utilities do not depend on sharding or on which other
users or items exist. ``V`` and ``P`` are computed once per pair, when an item is first
shown to a shard's users, and kept (``num_users x items_published x 16`` bytes per world).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from simlab.batch import Catalog, Feedback, lookup_sorted
from simlab.errors import ScenarioError
from simlab.params import FEATURE_SCALE_MAX
from simlab.rng import Stream, beta_prime_params
from simlab.scenario import ParamsModel
from simlab.world import WorldContext

from .chaney_memo import ATTRIBUTES, DRAWS
from .common import normalize_rows
from .content import ItemTable, observable_catalog
from .social_graph import SocialGraphParams, social_graph

__all__ = ["ChaneyItems", "ChaneyUsers", "ChaneyItemTable"]

_PAIR_SHIFT = np.int64(32)
_MIN_SHAPE = 1e-300
"""Smallest Dirichlet concentration drawn from: a hyper-prior of tiny concentration puts
exact zeros on the simplex (its other entries underflow), and a tiny scale can underflow
too; at 1e-300 a draw's ``log(U) / a`` is still finite, so the vector is a valid (nearly
one-hot) point. Chaney's settings (entries near 1/K) are far above it: unchanged."""
_BETA_PRIME_MIN = 1e-100
"""Smallest ``sigma`` and ``known_utility``: a Beta' draw divides by its variance, which for a
standard deviation below ~1e-154 is 0 in float64 (sigma = 1e-300 divided by zero and
known_utility = 1e-300 left no Beta with its mean)."""


@dataclass
class ChaneyItemTable(ItemTable):
    """An :class:`~simlab.environments.content.ItemTable` with Chaney's item attributes.

    Attributes:
        attributes: ``(N, K)`` float64 ``beta_i`` on the simplex (``latent`` is their unit
            vector, for simlab's generic measures).
    """

    attributes: np.ndarray | None = None


class ChaneyItems:
    """Items with Dirichlet attributes published at a fixed rate (see module docstring).

    Args:
        params: :class:`ChaneyItems.Params`.
        ctx: the world context (``dim`` is the number of attributes ``K``).
    """

    provides: ClassVar[tuple[str, ...]] = ("attributes",)

    class Params(ParamsModel):
        """Scenario keys of the ``chaney-items`` content model."""

        items_per_step: int = Field(10, gt=0, description="New items published per step.")
        initial_items: int = Field(0, ge=0, description="Items live before step 0.")
        attribute_scale: float = Field(
            0.1, gt=0, description="Scale of the attribute hyper-prior mu_alpha (0.1 in Chaney)."
        )
        attribute_concentration: float = Field(
            100.0,
            gt=0,
            description="Concentration of the Dirichlet mu_alpha is drawn from (100 in Chaney).",
        )
        lifetime: int = Field(
            0,
            ge=0,
            le=10_000_000,
            description="Steps an item stays live; 0 = items never retire (Chaney).",
        )

    @classmethod
    def topic_count(cls, params: Any, scenario: Any) -> int:
        """Items' topics are their largest attribute's index: ``0..world.dim - 1``."""
        return int(scenario.world.dim)

    def __init__(self, params: ChaneyItems.Params, ctx: WorldContext) -> None:
        self.params = params
        self.ctx = ctx
        k = ctx.dim
        prior = Stream(ctx.seed, "content/attribute_prior").dirichlet(
            np.zeros(1, np.int64), 0, np.full(k, max(params.attribute_concentration, _MIN_SHAPE))
        )[0]
        self.mu_alpha = np.maximum(params.attribute_scale * prior, _MIN_SHAPE)
        self._draw = Stream(ctx.seed, "content/attributes")
        # worlds of one seed (every agent, every variant) publish the same items
        self._memo_key = (ctx.seed, k, params.attribute_scale, params.attribute_concentration)
        self._next_id = 0
        self.t = -1
        self.items = self._publish(params.initial_items, published=-1)
        self._new_sources = np.zeros(0, np.int8)

    def _publish(self, n: int, published: int) -> ChaneyItemTable:
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        attrs = ATTRIBUTES.take(self._memo_key, ids, self._draw, self.mu_alpha)
        topic = attrs.argmax(axis=1).astype(np.int64)
        return ChaneyItemTable(
            item_ids=ids,
            creator=topic.copy(),
            source=np.zeros(n, np.int8),
            topic=topic,
            latent=normalize_rows(attrs).astype(np.float32),
            features=attrs.astype(np.float32),
            quality=np.zeros(n, np.float32),
            published=np.full(n, published, np.int64),
            attributes=attrs,
        )

    def step(self, t: int, last_exposure: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Retire items past their lifetime (if any), then publish this step's items."""
        self.t = t
        items = self.items
        if self.params.lifetime:
            items = items.select(t - items.published < self.params.lifetime)
        new = self._publish(self.params.items_per_step, published=t)
        self._new_sources = new.source
        self.items = ChaneyItemTable.concat(items, new)

    def catalog(self, knows_source: bool) -> Catalog:
        """The observable catalog (features = attributes)."""
        return observable_catalog(self.items, self.t, knows_source)

    def latent(self) -> ChaneyItemTable:
        """The item table (users and metrics only)."""
        return self.items

    def new_item_sources(self) -> np.ndarray:
        """Sources of this step's items (all human)."""
        return self._new_sources

    def state_dict(self) -> dict:
        """The live items, the id counter and the step."""
        return {"items": dict(self.items.__dict__), "next_id": self._next_id, "t": self.t}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.items = ChaneyItemTable(**state["items"])
        self._next_id = int(state["next_id"])
        self.t = int(state["t"])


class ChaneyUsers:
    """Users with Dirichlet preferences who consume one item per step (module docstring).

    Args:
        params: :class:`ChaneyUsers.Params`.
        ctx: the world context; ``ctx.user_range`` selects a shard of users.
    """

    any_slate_size: ClassVar[bool] = True
    passes_over_consumed: ClassVar[bool] = True  # respond's passed_over (consumed_ranked)
    """Accepts slates of any length (``platform.slate_size: 0``)."""
    content_needs: ClassVar[str] = "attributes"
    """Needs items with attributes on the simplex (content ``chaney-items``)."""

    class Params(ParamsModel):
        """Scenario keys of the ``chaney`` user model."""

        num_users: int = Field(100, gt=0, description="Population size (100 in Chaney).")
        preference_scale: float = Field(
            10.0, gt=0, description="Scale of the preference hyper-prior mu_rho (10 in Chaney)."
        )
        sigma: float = Field(
            1e-5,
            ge=_BETA_PRIME_MIN,
            lt=0.5,
            description="Standard deviation of the Beta' utility draws V and eta (1e-5 in "
            "Chaney); each capped at half the largest a Beta of the draw's mean allows; at "
            "least 1e-100 (its square must not vanish in float64).",
        )
        known_utility: float = Field(
            0.98,
            ge=_BETA_PRIME_MIN,
            lt=1,
            description="Mean share of the true utility users know, eta (0.98 in Chaney); at "
            "least 1e-100.",
        )
        attention_exp: float = Field(
            -0.8,
            le=0,
            description="Users choose argmax rank**attention_exp * known utility (-0.8).",
        )
        feature_noise: float = Field(
            0.5,
            ge=0,
            le=FEATURE_SCALE_MAX,
            description="Noise on the observable user features (preferences + noise).",
        )
        social_graph: SocialGraphParams = Field(
            default_factory=SocialGraphParams,
            description="The users' social network (what `social-filtering` recommends from).",
        )

    @staticmethod
    def memory_bytes(users: int, items: int) -> int:
        """Bytes of the utility caches for ``users`` x ``items`` (for :mod:`simlab.memory`).

        The world's V and P (float64 each), and the process's memo of V and eta for the
        worlds of one seed when it holds them (at most ``max_cells`` pairs per key).
        """
        pairs = users * items
        return 16 * pairs + (16 * pairs if pairs <= DRAWS.max_cells else 0)

    def __init__(self, params: ChaneyUsers.Params, ctx: WorldContext) -> None:
        self.params = p = params
        self.ctx = ctx
        self.num_users = p.num_users
        self.lo, self.hi = ctx.user_range or (0, p.num_users)
        self._uid = np.arange(self.lo, self.hi, dtype=np.int64)
        self.theta = self.preferences(self._uid)
        noise = Stream(ctx.seed, "users/profile").normal(self._uid, 0, size=ctx.dim)
        self._features = (self.theta + p.feature_noise * noise / np.sqrt(ctx.dim)).astype(
            np.float32
        )
        self._utility = Stream(ctx.seed, "users/utility")
        self._known = Stream(ctx.seed, "users/known_fraction")
        k = np.array(p.known_utility)  # eta's sd capped as V's is (any sigma the schema allows)
        self._eta = beta_prime_params(k, np.minimum(p.sigma, 0.5 * np.sqrt(k * (1.0 - k))))
        # worlds of one seed (every agent, every variant) draw the same utilities
        self._memo_key = (ctx.seed, ctx.dim, self.lo, self.hi, p.preference_scale, p.sigma,
                          p.known_utility)  # fmt: skip
        self._ids = np.zeros(0, np.int64)  # item ids with cached utilities, increasing
        self._v = np.zeros((self._uid.size, 0))  # (users, items) true utility V
        self._p = np.zeros((self._uid.size, 0))  # (users, items) known utility P

    def preferences(self, user_ids: np.ndarray) -> np.ndarray:
        """``(B, K)`` preferences ``theta_u`` of any users (keyed draws; for any shard)."""
        ctx, p = self.ctx, self.params
        prior = Stream(ctx.seed, "users/preference_prior").dirichlet(
            np.zeros(1, np.int64), 0, np.ones(ctx.dim)
        )[0]
        return Stream(ctx.seed, "users/preferences").dirichlet(
            user_ids, 0, np.maximum(p.preference_scale * prior, _MIN_SHAPE)
        )

    # ---------------------------------------------------------------- utilities
    def _cache(self, item_ids: np.ndarray, items: ChaneyItemTable) -> np.ndarray:
        """Columns of ``item_ids`` (any shape) in the utility cache, adding new items."""
        pos, found = lookup_sorted(self._ids, item_ids)
        if found.all():
            return pos
        new = np.unique(item_ids[~found])
        if new.size:
            attrs = items.attributes[items.rows(new)]
            v, eta = DRAWS.get(self._memo_key, new, attrs)
            if v is None:
                v, eta = self._draw(new, attrs)
                DRAWS.put(self._memo_key, new, attrs, v, eta)
            ids = np.concatenate([self._ids, new])
            self._v = np.concatenate([self._v, v], axis=1)
            self._p = np.concatenate([self._p, v * eta], axis=1)
            if self._ids.size and new[0] < self._ids[-1]:  # not appended in id order
                order = np.argsort(ids, kind="stable")
                ids, self._v, self._p = ids[order], self._v[:, order], self._p[:, order]
            self._ids = ids
        return lookup_sorted(self._ids, item_ids)[0]

    def _draw(self, new: np.ndarray, attrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(V, eta)`` of the shard's users for items ``new`` (attributes ``attrs``)."""
        mu = np.clip(self.theta @ attrs.T, 1e-9, 1.0 - 1e-9)  # (users, new)
        sd = np.minimum(self.params.sigma, 0.5 * np.sqrt(mu * (1.0 - mu)))
        pairs = (self._uid[:, None] << _PAIR_SHIFT) | new[None, :]
        v = self._utility.beta(pairs, 0, *beta_prime_params(mu, sd))
        return v, self._known.beta(pairs, 0, *self._eta)

    def _rows(self, user_ids: np.ndarray) -> np.ndarray:
        return np.asarray(user_ids) - self.lo

    # ---------------------------------------------------------------- protocol
    def arrivals(self, t: int) -> np.ndarray:
        """Every user, every step."""
        return self._uid

    def observable_features(self, user_ids: np.ndarray) -> np.ndarray:
        """``(B, K)`` preferences plus fixed noise."""
        return self._features[self._rows(user_ids)]

    def respond(
        self,
        t: int,
        user_ids: np.ndarray,
        slates: np.ndarray,
        items: ChaneyItemTable,
        passed_over: np.ndarray | None = None,
    ) -> Feedback:
        """Each user consumes the item maximising ``rank**attention_exp * P``.

        ``passed_over`` (``(B, K)`` bool, with ``platform.consumed_ranked``) marks items the
        user consumed before: they keep their ranks but are never chosen (T-RECS's rule).
        """
        b, k = slates.shape
        cols = self._cache(np.asarray(slates), items)
        rows = self._rows(user_ids)
        weight = np.arange(1, k + 1, dtype=np.float64) ** self.params.attention_exp
        value = self._p[rows[:, None], cols] * weight
        if passed_over is not None:
            if k and passed_over.all(axis=1).any():
                u = int(user_ids[np.flatnonzero(passed_over.all(axis=1))[0]])
                raise ScenarioError(
                    f"platform.consumed_ranked: at step {t} user {u} has consumed every item of "
                    "its list; publish more items (content.items_per_step)"
                )
            value[passed_over] = -np.inf
        choice = np.argmax(value, axis=1)
        engagement = self._v[rows, cols[np.arange(b), choice]]
        return Feedback(t, user_ids, slates, choice.astype(np.int64), engagement.astype(np.float32))

    def expected_utility(
        self, t: int, user_ids: np.ndarray, item_ids: np.ndarray, items: ChaneyItemTable
    ) -> np.ndarray:
        """``(B, C)`` true utility ``V`` (privileged: the ideal recommender ranks by it)."""
        cols = self._cache(np.asarray(item_ids), items)
        return self._v[self._rows(user_ids)[:, None], cols].astype(np.float32)

    def interests(self) -> tuple[np.ndarray, np.ndarray]:
        """``(current, initial)`` preferences of the shard's users (static: the same)."""
        theta = self.theta.view()
        theta.setflags(write=False)
        return theta, theta

    def social_graph(self):
        """The users' social network over every user (see :mod:`.social_graph`)."""
        all_ids = np.arange(self.params.num_users, dtype=np.int64)
        return social_graph(self.params.social_graph, self.preferences(all_ids), self.ctx.seed)

    def state_dict(self) -> dict[str, np.ndarray]:
        """No dynamic state (preferences are static; utilities are keyed draws)."""
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Nothing to restore."""
