"""The user side of a world: user shards and the population that fans out to them.

A :class:`UserShard` owns a contiguous range of user ids: their user model (latent
interests, fatigue, churn), their click histories and the user-side (sharded) metrics.
The world talks to the users only through a population with four calls per step —
:meth:`LocalPopulation.arrive` and :meth:`LocalPopulation.respond` — so the same
:class:`~simlab.world.World` runs with every user in this process (:class:`LocalPopulation`,
one shard) or with the shards in Ray actors (``simlab.execution.ray.RayPopulation``).

Shards return what the step needs and nothing more: arrivals with their features and
histories, then clicks, engagement and the sharded metrics' partial aggregates. Their
state is a dict of per-user arrays (first axis: the shard's users), so a checkpoint is the
concatenation over shards and can be split again over any number of shards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from simlab.batch import PAD, Catalog, Deferred, Feedback, Slates, is_row_broadcast
from simlab.contract import check_arrivals, check_features, check_feedback, check_rows
from simlab.errors import ScenarioError
from simlab.keysets import PairSet, join_csr, live_items_of
from simlab.metrics.base import StepSnapshot
from simlab.scenario import Scenario

__all__ = [
    "Arrivals",
    "join_csr",
    "live_items_of",
    "StepContent",
    "ShardSpec",
    "UserShard",
    "LocalPopulation",
    "population_size",
    "shard_bounds",
    "split_state",
    "concat_states",
]


@dataclass(frozen=True)
class StepContent:
    """What user shards need of one step's content (put in the object store once on Ray)."""

    catalog: Catalog
    items: Any
    new_item_sources: np.ndarray


_PRUNE_EVERY = 16
"""Steps between forgetting consumed items that are no longer live."""


def population_size(scenario: Scenario) -> int:
    """The number of users of ``scenario`` (its user model's ``num_users``)."""
    n = getattr(scenario.users.params, "num_users", None)
    if not isinstance(n, int) or n <= 0:
        raise ScenarioError(
            f"users.model: {scenario.users.model!r} declares no positive `num_users` in its "
            "Params; simlab needs the population size to split users into shards"
        )
    return n


def shard_bounds(num_users: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous ``(lo, hi)`` id ranges covering ``0..num_users-1`` evenly."""
    edges = np.linspace(0, num_users, max(1, min(shards, num_users)) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def split_state(state: dict[str, np.ndarray], bounds: list[tuple[int, int]]) -> list[dict]:
    """Per-user state of the whole population, cut into the shards' ranges."""
    return [{k: v[lo:hi] for k, v in state.items()} for lo, hi in bounds]


def concat_states(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The shards' per-user states (in id order) joined into the population's.

    Per-user lists stored as ``PAD``-padded integer rows (consumed items) may be padded to
    different widths by different shards: they are padded to the widest.
    """
    out = {}
    for k in parts[0]:
        arrays = [p[k] for p in parts]
        if arrays[0].ndim == 2 and arrays[0].dtype.kind == "i":
            width = max(a.shape[1] for a in arrays)
            arrays = [
                np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=PAD) for a in arrays
            ]
        out[k] = np.concatenate(arrays)
    return out


class Arrivals(NamedTuple):
    """One step's arriving users, as a user shard (or the whole population) returns them.

    Attributes:
        user_ids: ``(B,)`` increasing ids.
        features: ``(B, f)`` observable features.
        history: ``(B, H)`` click histories (or a :class:`~simlab.batch.Deferred` of them).
        consumed: with no repeat consumption, ``(indptr (B + 1,), items)``: each user's
            consumed items that are live, in CSR form; None otherwise.
    """

    user_ids: np.ndarray
    features: np.ndarray
    history: np.ndarray | Deferred
    consumed: tuple[np.ndarray, np.ndarray] | None


@dataclass(frozen=True)
class ShardSpec:
    """What a user shard is built from: the parts of a scenario the user side needs.

    (Shipping only these to shard actors keeps them from importing the agents' modules.)
    """

    users: Any
    ctx: Any
    history_length: int
    metrics: tuple[str, ...]
    exclude_consumed: bool = False
    consumed_ranked: bool = False

    @classmethod
    def of(cls, scenario: Scenario, seed: int) -> ShardSpec:
        """The shard spec of one trial of ``scenario``."""
        from simlab.world_context import WorldContext

        ctx = replace(
            WorldContext.from_scenario(scenario, seed), num_users=population_size(scenario)
        )
        plat = scenario.platform
        metrics = tuple(scenario.metrics)
        no_repeat = (plat.exclude_consumed, plat.exclude_consumed and plat.consumed_ranked)
        return cls(scenario.users, ctx, plat.history_length, metrics, *no_repeat)


class UserShard:
    """Users ``lo..hi-1`` of one world: user model, click histories, sharded metrics.

    Args:
        spec: the trial's :class:`ShardSpec`.
        lo, hi: the id range.
    """

    def __init__(self, spec: ShardSpec, lo: int, hi: int) -> None:
        from simlab import registry
        from simlab.environments.platform import ClickHistory

        self.num_users = spec.ctx.num_users
        self.lo, self.hi = lo, hi
        ctx = replace(spec.ctx, user_range=(lo, hi))
        self.users = spec.users.cls(spec.users.params, ctx)
        self.who = f"users model '{spec.users.model}'"  # for contract errors
        self.clicks = ClickHistory(lo, hi, spec.history_length)
        # with no repeat consumption: every (user, item) the shard's users clicked
        self.consumed = PairSet() if spec.exclude_consumed else None
        self.consumed_ranked = spec.consumed_ranked  # kept in the lists, passed over
        self.metrics = {}
        for name in spec.metrics:
            cls = registry.resolve("metrics", name)
            if cls.sharded():
                self.metrics[name] = cls(ctx)

    def arrive(
        self, t: int, defer_history: bool = False, live: np.ndarray | None = None
    ) -> Arrivals:
        """The shard's users active at ``t``: ids, features, histories, consumed items.

        With ``defer_history`` the histories are a :class:`~simlab.batch.Deferred`, built
        only if something reads them before the next clicks are recorded. With no repeat
        consumption, ``consumed`` lists each arriving user's consumed items among ``live``
        (the sorted live item ids); it is None otherwise.
        """
        ids = check_arrivals(self.users.arrivals(t), self.lo, self.hi, self.who)
        hist = self.clicks.deferred(ids) if defer_history else self.clicks.get(ids)
        consumed = None
        if self.consumed is not None:
            if live is None:
                raise ValueError("no repeat consumption needs the live item ids at arrival")
            if t % _PRUNE_EVERY == 0:  # forget items that retired: they cannot come back
                self.consumed.retain_items(live)
            if not self.consumed_ranked:  # else the candidates keep them
                consumed = live_items_of(self.consumed, ids, live)
        feats = check_features(self.users.observable_features(ids), ids, self.who)
        return Arrivals(ids, feats, hist, consumed)

    def respond(
        self,
        t: int,
        user_ids: np.ndarray,
        slates: np.ndarray,
        content: StepContent,
        candidates: np.ndarray | None = None,
        who: str = "the policy",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Check the shard's slates, then its users respond to them.

        Args:
            t: the step.
            user_ids: ``(B,)`` the shard's served users, increasing.
            slates: ``(B, K)`` their slates.
            content: the step's content.
            candidates: ``(B, C)`` per-user candidates the slates must come from, or None.
            who: who chose the slates, for contract errors.

        Returns:
            ``(clicked_pos, engagement, exposure, partials)``: ``exposure`` counts each live
            item's impressions (``(N,)``, catalog order) and ``partials`` maps each sharded
            metric's name to its partial aggregate over these users.
        """
        rows = check_rows(slates, user_ids, candidates, content.catalog, who)
        history_topics = self.clicks.topics(user_ids)  # before this step's clicks
        if self.consumed_ranked:  # the users pass over what they consumed
            shown = slates != PAD
            seen = np.zeros(slates.shape, bool)
            users = np.broadcast_to(user_ids[:, None], slates.shape)
            seen[shown] = self.consumed.contains(users[shown], slates[shown])
            fb = self.users.respond(t, user_ids, slates, content.items, passed_over=seen)
        else:
            fb = self.users.respond(t, user_ids, slates, content.items)
        fb = check_feedback(fb, user_ids, slates, self.who)
        chose = np.flatnonzero(fb.clicked)
        topics = np.full(user_ids.shape[0], -1, np.int64)
        topics[chose] = content.items.topic[rows[chose, fb.clicked_pos[chose]]]
        self.clicks.record(fb, topics)
        if self.consumed is not None:
            chose = fb.clicked
            self.consumed.add(fb.user_ids[chose], fb.clicked_items[chose])
        current, initial = self.users.interests()
        snap = StepSnapshot(
            step=t,
            num_users=self.num_users,
            feedback=fb,
            catalog=content.catalog,
            items=content.items,
            new_item_sources=content.new_item_sources,
            interests=current,
            initial_interests=initial,
            slate_rows=rows,
            history_topics=history_topics,
        )
        parts = {name: m.partial(snap) for name, m in self.metrics.items() if m.due(t)}
        n = content.catalog.num_items
        if is_row_broadcast(rows):  # one slate shown to every user
            exposure = np.bincount(rows[0], minlength=n) * rows.shape[0]
        else:
            exposure = np.bincount(rows.ravel(), minlength=n)
        return fb.clicked_pos, fb.engagement, exposure, parts

    def expected_utility(
        self, t: int, user_ids: np.ndarray, item_ids: np.ndarray, items: Any
    ) -> np.ndarray:
        """Noise-free utility (the oracle's privileged hook)."""
        return self.users.expected_utility(t, user_ids, item_ids, items)

    def interests(self) -> tuple[np.ndarray, np.ndarray]:
        """``(current, initial)`` interests of the shard's users."""
        return self.users.interests()

    def social_graph(self) -> Any:
        """The users' social network over the whole population (user models that have one)."""
        fn = getattr(self.users, "social_graph", None)
        if fn is None:
            raise ScenarioError(
                f"users.model: {type(self.users).__name__} has no social graph, which an agent "
                "needs (social-filtering); use a user model with one, such as `chaney`"
            )
        return fn()

    def sample_interests(self, user_ids: np.ndarray) -> np.ndarray:
        """Current interests of some of the shard's users (global ids)."""
        return self.users.interests()[0][user_ids - self.lo]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Per-user dynamic state: the user model's and the click histories."""
        state = _require_state(self.users, "users")
        out = {f"users/{k}": v for k, v in state.items()}
        out.update({f"clicks/{k}": v for k, v in self.clicks.state_dict().items()})
        if self.consumed is not None:
            out["consumed/items"] = self.consumed.to_padded(np.arange(self.lo, self.hi))
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned (for this shard's range)."""
        self.users.load_state_dict(
            {k.split("/", 1)[1]: v for k, v in state.items() if k.startswith("users/")}
        )
        self.clicks.load_state_dict(
            {k.split("/", 1)[1]: v for k, v in state.items() if k.startswith("clicks/")}
        )
        if self.consumed is not None:
            padded = state.get("consumed/items")
            if padded is None:
                raise ValueError("the saved state has no consumed items (exclude_consumed)")
            self.consumed = PairSet.from_padded(np.arange(self.lo, self.hi), padded)


def _require_state(component: Any, kind: str) -> dict[str, np.ndarray]:
    fn = getattr(component, "state_dict", None)
    if fn is None or not hasattr(component, "load_state_dict"):
        raise ScenarioError(
            f"{kind}.model: {type(component).__name__} has no state_dict()/load_state_dict(), "
            "so its state cannot be checkpointed; implement them or set "
            "output.checkpoint_every: 0"
        )
    return fn()


def respond_feedback(t: int, slates: Slates, clicked_pos, engagement) -> Feedback:
    """The step's :class:`Feedback` from the served slates and the users' responses."""
    return Feedback(t, slates.user_ids, slates.item_ids, clicked_pos, engagement)


class LocalPopulation:
    """Every user in this process, as one shard."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        n = population_size(scenario)
        self.num_users = n
        self.shard = UserShard(ShardSpec.of(scenario, seed), 0, n)

    @property
    def users(self) -> Any:
        """The user model (all users)."""
        return self.shard.users

    @property
    def clicks(self) -> Any:
        """The click histories (all users)."""
        return self.shard.clicks

    def arrive(self, t: int, content: StepContent, defer_history: bool = False) -> Arrivals:
        """Active users at ``t`` with their features and histories (see ``UserShard.arrive``)."""
        return self.shard.arrive(t, defer_history, content.catalog.item_ids)

    def respond(
        self,
        t: int,
        slates: Slates,
        content: StepContent,
        candidates: np.ndarray | None = None,
        who: str = "the policy",
    ) -> tuple[Feedback, dict[str, list[Any]], np.ndarray]:
        """``(feedback, partials per sharded metric (one per shard), impressions per item)``."""
        cp, eng, counts, parts = self.shard.respond(
            t, slates.user_ids, slates.item_ids, content, candidates, who
        )
        return respond_feedback(t, slates, cp, eng), {k: [v] for k, v in parts.items()}, counts

    def expected_utility(
        self, t: int, user_ids: np.ndarray, item_ids: np.ndarray, items: Any
    ) -> np.ndarray:
        """Noise-free utility (privileged)."""
        return self.shard.expected_utility(t, user_ids, item_ids, items)

    def interests(self) -> tuple[np.ndarray, np.ndarray]:
        """``(current, initial)`` interests of every user."""
        return self.shard.interests()

    def social_graph(self) -> Any:
        """The users' social network (see ``UserShard.social_graph``)."""
        return self.shard.social_graph()

    def sample_interests(self, user_ids: np.ndarray) -> np.ndarray:
        """Current interests of the given users."""
        return self.shard.sample_interests(user_ids)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Per-user state of the population."""
        return self.shard.state_dict()

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore the population's per-user state."""
        self.shard.load_state_dict(state)

    def close(self) -> None:
        """Nothing to release locally."""
