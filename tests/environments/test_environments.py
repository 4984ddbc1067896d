"""Tests of the simulated environment: users, content ecosystem and platform."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import make_small, record_acts

from simlab import registry
from simlab.agents import Agent
from simlab.batch import PAD, Observation, Slates
from simlab.environments import CreatorEcosystem, ItemTable, LogitUserPopulation
from simlab.environments.common import normalize_rows
from simlab.errors import AgentContractError
from simlab.world import World, WorldContext

# ----------------------------------------------------------------------------- helpers


def small_world(*overrides, agent: str = "random", seed: int = 0, **top) -> World:
    """A small World with one agent and ``--set`` overrides."""
    return World(make_small(*overrides, agents=[{"model": agent}], **top), 0, seed)


def make_context(num_topics: int = 4, dim: int = 8, slate_size: int = 5) -> WorldContext:
    """A world context for building components directly."""
    return WorldContext(
        seed=0,
        dim=dim,
        num_topics=num_topics,
        topic_spread=1.0,
        steps=50,
        slate_size=slate_size,
        history_length=5,
    )


def click_counts_by_position(world: World, steps: int) -> np.ndarray:
    """Clicks per slate position over ``steps`` steps."""
    k = world.context.slate_size
    counts = np.zeros(k, np.int64)
    for t in range(steps):
        world.step(t)
        pos = world.last_feedback.clicked_pos
        counts += np.bincount(pos[pos >= 0], minlength=k)
    return counts


# ----------------------------------------------------------------------------- users


def test_zero_drift_rate_keeps_interests_fixed():
    """With drift_rate 0 interests stay exactly at their initial values over many steps."""
    world = small_world(("users.drift_rate", 0.0))
    _, initial = world.users.interests()
    initial = initial.copy()
    clicks = 0
    for t in range(20):
        row = world.step(t)
        clicks += int(world.last_feedback.clicked.sum())
        assert row["echo/interest_drift"] == 0.0
    current, _ = world.users.interests()
    assert clicks > 0
    np.testing.assert_array_equal(current, initial)


def test_drift_moves_clicking_users_toward_consumed_items():
    """With drift_rate > 0 a clicking user's interest moves toward the clicked item; others stay."""
    rate = 0.3
    world = small_world(("users.drift_rate", rate))
    for t in range(4):
        before = world.users.interests()[0].copy()
        world.step(t)
        after = world.users.interests()[0].copy()
        fb = world.last_feedback
        items = world.content.latent()
        who = fb.user_ids[fb.clicked]
        assert who.size > 0
        e = items.latent[items.rows(fb.clicked_items[fb.clicked])]
        want = normalize_rows(before[who] + rate * (e - before[who]))
        np.testing.assert_allclose(after[who], want, rtol=1e-5, atol=1e-6)
        cos_before = (before[who] * e).sum(1) / np.linalg.norm(e, axis=1)
        cos_after = (after[who] * e).sum(1) / np.linalg.norm(e, axis=1)
        assert (cos_after >= cos_before - 1e-6).all()
        assert (cos_after > cos_before).mean() > 0.9
        others = np.setdiff1d(np.arange(world.context.num_users), who)
        np.testing.assert_array_equal(after[others], before[others])
    assert world.step(4)["echo/interest_drift"] > 0


def test_higher_no_click_utility_lowers_ctr():
    """Raising no_click_utility turns clicks into no-clicks (common random numbers)."""
    low = small_world(("users.no_click_utility", 2.0))
    high = small_world(("users.no_click_utility", 4.0))
    ctr_low, ctr_high = [], []
    for t in range(5):
        ctr_low.append(low.step(t)["engagement/ctr"])
        ctr_high.append(high.step(t)["engagement/ctr"])
        fb_low, fb_high = low.last_feedback, high.last_feedback
        np.testing.assert_array_equal(fb_low.user_ids, fb_high.user_ids)
        np.testing.assert_array_equal(fb_low.slates, fb_high.slates)
        # same Gumbel noise, higher outside option: nobody clicks who did not click before
        assert not (fb_high.clicked & ~fb_low.clicked).any()
    assert np.mean(ctr_high) < np.mean(ctr_low) - 0.1


def test_position_bias_favours_top_slots():
    """With position bias top slots get more clicks than bottom slots of random slates."""
    biased = click_counts_by_position(small_world(("users.position_bias", 1.0)), steps=10)
    assert biased[0] > biased[2] > biased[4]
    assert biased[0] > 1.5 * biased[4]
    flat = click_counts_by_position(small_world(("users.position_bias", 0.0)), steps=10)
    assert 0.75 < flat[0] / flat[4] < 1.33


def test_churn_removes_users_for_good():
    """With a high churn threshold active users fall and churned users never return."""
    world = small_world(("users.churn_threshold", 0.3), ("users.churn_patience", 3))
    active, churned_before = [], np.zeros(world.context.num_users, bool)
    for t in range(25):
        active.append(world.step(t)["users/active"])
        churned = world.users.churned.copy()
        assert (churned >= churned_before).all(), "a churned user came back"
        served = world.last_feedback.user_ids
        assert not churned_before[served].any(), "a churned user was served"
        churned_before = churned
    assert churned_before.sum() > 0.2 * world.context.num_users
    assert np.mean(active[-5:]) < 0.8 * np.mean(active[:3])
    # arrivals never include churned users
    for t in range(25, 30):
        assert not world.users.churned[world.users.arrivals(t)].any()


def test_no_churn_with_zero_threshold():
    """With churn_threshold 0 nobody churns."""
    world = small_world(("users.churn_threshold", 0.0))
    for t in range(15):
        world.step(t)
    assert not world.users.churned.any()


def fixed_slate_ctr(fatigue_weight: float, steps: int = 12) -> np.ndarray:
    """CTR per step of users shown the same five same-topic items every step."""
    ctx = make_context()
    params = LogitUserPopulation.Params(
        num_users=3000, fatigue_weight=fatigue_weight, no_click_utility=1.0
    )
    users = LogitUserPopulation(params, ctx)
    n, d = 5, ctx.dim
    latent = normalize_rows(np.random.default_rng(0).normal(size=(n, d))).astype(np.float32)
    items = ItemTable(
        item_ids=np.arange(n, dtype=np.int64),
        creator=np.zeros(n, np.int64),
        source=np.zeros(n, np.int8),
        topic=np.zeros(n, np.int64),
        latent=latent,
        features=latent.copy(),
        quality=np.zeros(n, np.float32),
        published=np.zeros(n, np.int64),
    )
    user_ids = np.arange(params.num_users)
    slates = np.broadcast_to(np.arange(n), (params.num_users, n))
    return np.array(
        [users.respond(t, user_ids, slates, items).clicked.mean() for t in range(steps)]
    )


def test_fatigue_lowers_ctr_of_a_repeated_topic():
    """With fatigue_weight > 0 the CTR of an always-same-topic slate falls over time."""
    no_fatigue = fixed_slate_ctr(0.0)
    fatigue = fixed_slate_ctr(0.2)
    assert fatigue[0] == no_fatigue[0]  # no fatigue yet at the first step
    assert fatigue[-1] < fatigue[0] - 0.2
    assert fatigue[-1] < no_fatigue[-1] - 0.2
    assert abs(no_fatigue[-1] - no_fatigue[0]) < 0.05
    assert (np.diff(fatigue[:6]) < 0).all()


def test_users_respond_deterministically():
    """The same population and slates give the same feedback (same seed)."""
    a, b = small_world(seed=3), small_world(seed=3)
    for t in range(5):
        a.step(t)
        b.step(t)
        np.testing.assert_array_equal(a.last_feedback.clicked_pos, b.last_feedback.clicked_pos)
        np.testing.assert_array_equal(a.last_feedback.engagement, b.last_feedback.engagement)


# ----------------------------------------------------------------------------- content


def make_ecosystem(**params) -> CreatorEcosystem:
    """A creator ecosystem built directly."""
    defaults = dict(
        num_human_creators=20,
        num_aigc_creators=5,
        items_per_step=10,
        initial_items=200,
        lifetime=20,
    )
    defaults.update(params)
    return CreatorEcosystem(CreatorEcosystem.Params(**defaults), make_context())


def test_items_retire_at_lifetime():
    """After step t every live item has age below lifetime, and items reaching it are gone."""
    eco = make_ecosystem(lifetime=7, items_per_step=5, initial_items=35)
    prev = eco.items.item_ids
    for t in range(20):
        eco.step(t, None)
        items = eco.latent()
        age = t - items.published
        assert age.min() == 0 and age.max() == 6
        gone = np.setdiff1d(prev, items.item_ids)
        assert gone.size == 5
        new = items.item_ids[items.published == t]
        np.testing.assert_array_equal(new, np.arange(prev.max() + 1, prev.max() + 6))
        assert (np.diff(items.item_ids) > 0).all()
        prev = items.item_ids


@pytest.mark.parametrize(("lifetime", "per_step"), [(20, 10), (7, 3), (1, 4)])
def test_catalog_size_is_steady(lifetime, per_step):
    """With initial_items = lifetime * items_per_step the catalog size never changes."""
    eco = make_ecosystem(
        lifetime=lifetime, items_per_step=per_step, initial_items=lifetime * per_step
    )
    sizes = []
    for t in range(2 * lifetime + 3):
        eco.step(t, None)
        sizes.append(eco.catalog(False).num_items)
    assert sizes == [lifetime * per_step] * len(sizes)


def test_catalog_ages_match_publication():
    """The observable age is steps since publication, 0 for this step's items."""
    eco = make_ecosystem()
    for t in range(3):
        eco.step(t, None)
    cat = eco.catalog(False)
    np.testing.assert_array_equal(cat.age, 2 - eco.latent().published)
    assert cat.age.min() == 0 and cat.age.max() == 19


def test_aigc_share_follows_phase_schedule():
    """Phases [{until: 10, share: 0}, {share: 1}] give all-human then all-AIGC production."""
    eco = make_ecosystem(phases=[{"until": 10, "aigc_share": 0.0}, {"aigc_share": 1.0}])
    for t in range(16):
        eco.step(t, None)
        new = eco.new_item_sources()
        assert new.shape == (10,)
        assert (new == (1 if t >= 10 else 0)).all(), f"t={t}"
    items = eco.latent()
    np.testing.assert_array_equal(eco.creator_source[items.creator], items.source)


def test_aigc_share_mixed_phase():
    """A phase with aigc_share 0.5 produces about half AIGC items from AIGC creators."""
    eco = make_ecosystem(items_per_step=200, initial_items=0, phases=[{"aigc_share": 0.5}])
    sources = []
    for t in range(10):
        eco.step(t, None)
        sources.append(eco.new_item_sources())
    assert abs(np.concatenate(sources).mean() - 0.5) < 0.04
    items = eco.latent()
    np.testing.assert_array_equal(eco.creator_source[items.creator], items.source)


def test_aigc_share_schedule_lookup():
    """``aigc_share(t)`` picks the first phase whose ``until`` is above t."""
    eco = make_ecosystem(
        phases=[
            {"until": 5, "aigc_share": 0.1},
            {"until": 8, "aigc_share": 0.4},
            {"aigc_share": 0.9},
        ]
    )
    assert [eco.aigc_share(t) for t in (0, 4, 5, 7, 8, 100)] == [0.1, 0.1, 0.4, 0.4, 0.9, 0.9]


@pytest.mark.parametrize("knows_source", [False, True])
def test_catalog_source_only_when_platform_knows_it(knows_source):
    """Agents see item sources only when platform.knows_source is true."""
    world = small_world(
        ("platform.knows_source", knows_source),
        ("content.phases", [{"aigc_share": 0.5}]),
    )
    calls = record_acts(world)
    world.step(0)
    catalog = calls[0][0].catalog
    if knows_source:
        np.testing.assert_array_equal(catalog.source, world.content.latent().source)
        assert 0 < catalog.source.mean() < 1
    else:
        assert catalog.source is None


# ----------------------------------------------------------------------------- platform


def test_history_is_most_recent_first_and_padded():
    """Observed histories list a user's clicks most recent first, cut to H and padded with -1."""
    h = 3
    world = small_world(("platform.history_length", h))
    calls = record_acts(world)
    clicks: dict[int, list[int]] = {u: [] for u in range(world.context.num_users)}
    for t in range(12):
        world.step(t)
        obs = calls[-1][0]
        for u, row in zip(obs.user_ids, obs.history, strict=True):
            want = clicks[int(u)][::-1][:h]
            assert row.tolist() == want + [PAD] * (h - len(want)), f"user {u} at step {t}"
        fb = world.last_feedback
        for u, item in zip(fb.user_ids[fb.clicked], fb.clicked_items[fb.clicked], strict=True):
            clicks[int(u)].append(int(item))
    assert max(len(c) for c in clicks.values()) > h  # the ring buffer wrapped for some users
    assert min(len(c) for c in clicks.values()) < h  # and some histories are padded


def test_per_user_candidates_are_distinct_and_live():
    """With max_candidates, each row holds distinct live items and rows differ between users."""
    world = small_world(("platform.max_candidates", 50))
    calls = record_acts(world)
    for t in range(3):
        world.step(t)
    for obs, _ in calls:
        cands = obs.candidates
        assert not obs.shared_candidates and cands.shape == (obs.num_users, 50)
        s = np.sort(cands, axis=1)
        assert not (s[:, 1:] == s[:, :-1]).any()
        assert np.isin(cands, obs.catalog.item_ids).all()
        assert len({tuple(r) for r in s.tolist()}) > obs.num_users // 2


def test_candidates_of_a_user_do_not_depend_on_the_batch():
    """A user's candidates at a step are the same whoever else is served."""
    world = small_world(("platform.max_candidates", 50))
    world.content.step(0, None)
    cat = world.content.catalog(False)
    full, _ = world.platform.candidates(0, np.array([3, 9, 40]), cat)
    alone, _ = world.platform.candidates(0, np.array([9]), cat)
    np.testing.assert_array_equal(full[1], alone[0])


def test_all_items_are_shared_candidates_by_default():
    """Without max_candidates every user's candidates are all live items (a shared view)."""
    world = small_world()
    calls = record_acts(world)
    world.step(0)
    obs = calls[0][0]
    assert obs.shared_candidates
    np.testing.assert_array_equal(obs.candidates[0], obs.catalog.item_ids)
    assert obs.candidates.strides[0] == 0


class SpyAgent(Agent):
    """Serves the first K candidates and records every act and retrain call."""

    def __init__(self, params, ctx) -> None:
        super().__init__(params, ctx)
        self.version = 0
        self.acts: list[tuple[int, int]] = []
        self.retrains: list[tuple[int, object]] = []

    def act(self, obs: Observation) -> Slates:
        """The first K candidates, recording (step, model version)."""
        self.acts.append((obs.step, self.version))
        return Slates(obs.user_ids, np.ascontiguousarray(obs.candidates[:, : obs.slate_size]))

    def retrain(self, log) -> None:
        """Record the log and the number of acts so far (the step the new model serves)."""
        self.version += 1
        self.retrains.append((len(self.acts), log))


@pytest.fixture
def spy_registered(monkeypatch):
    """Register SpyAgent as ``spy-retrain`` for one test."""
    monkeypatch.setitem(registry._REGISTRY, "agents", dict(registry._REGISTRY["agents"]))
    registry.register("agents", "spy-retrain", SpyAgent)


@pytest.mark.parametrize(("every", "lag", "window"), [(3, 1, 6), (3, 2, 4), (4, 3, 2)])
def test_retrain_schedule_and_deploy_lag(spy_registered, every, lag, window):
    """Retrain gets the log snapshot of step t (R | t+1), and that model serves from step t + D."""
    world = small_world(
        ("platform.retrain_every", every),
        ("platform.deploy_lag", lag),
        ("platform.log_window", window),
        agent="spy-retrain",
    )
    steps = 16
    feedbacks = []
    for t in range(steps):
        world.step(t)
        feedbacks.append(world.last_feedback)
    spy = world.agent
    snapshot_steps = [t for t in range(steps) if (t + 1) % every == 0 and t + lag < steps]
    assert [served_from for served_from, _ in spy.retrains] == [t + lag for t in snapshot_steps]
    for (_, log), t in zip(spy.retrains, snapshot_steps, strict=True):
        logged = list(range(max(0, t - window + 1), t + 1))
        assert np.unique(log.step).tolist() == logged
        np.testing.assert_array_equal(
            log.slates, np.concatenate([feedbacks[s].slates for s in logged])
        )
        np.testing.assert_array_equal(
            log.clicked_pos, np.concatenate([feedbacks[s].clicked_pos for s in logged])
        )
        assert np.isin(log.slates, log.feature_ids).all()
    for step, version in spy.acts:
        assert version == sum(1 for t in snapshot_steps if t + lag <= step)


def test_retrain_via_module_class_path():
    """An agent named by 'module:Class' in a scenario is built and retrained by the loop."""
    world = small_world(agent=f"{__name__}:SpyAgent")
    for t in range(5):
        world.step(t)
    assert isinstance(world.agent, SpyAgent)
    assert [s for s, _ in world.agent.retrains] == [3]


class DuplicateAgent(Agent):
    """Returns the first candidate K times."""

    def act(self, obs: Observation) -> Slates:
        """A slate with one item repeated."""
        first = np.asarray(obs.candidates[:, :1])
        return Slates(obs.user_ids, np.repeat(first, obs.slate_size, axis=1))


class NotLiveAgent(Agent):
    """Returns an item id that is not in the catalog."""

    def act(self, obs: Observation) -> Slates:
        """The first K-1 candidates and a made-up id."""
        items = np.array(obs.candidates[:, : obs.slate_size])
        items[:, -1] = 10**9
        return Slates(obs.user_ids, items)


class NonCandidateAgent(Agent):
    """Returns live items that are not among the user's candidates."""

    def act(self, obs: Observation) -> Slates:
        """The K live items least likely to be candidates of user 0, for everyone."""
        outside = np.setdiff1d(obs.catalog.item_ids, obs.candidates[0])[: obs.slate_size]
        return Slates(obs.user_ids, np.broadcast_to(outside, (obs.num_users, obs.slate_size)))


class ShortSlateAgent(Agent):
    """Returns K-1 items per user."""

    def act(self, obs: Observation) -> Slates:
        """One item too few."""
        return Slates(obs.user_ids, np.array(obs.candidates[:, : obs.slate_size - 1]))


@pytest.mark.parametrize(
    ("agent", "message", "overrides"),
    [
        ("DuplicateAgent", "returned a slate with a duplicate item", ()),
        ("NotLiveAgent", "not in the live catalog: [1000000000]", ()),
        (
            "NonCandidateAgent",
            "not among the user's candidates",
            (("platform.max_candidates", 40),),
        ),
        ("ShortSlateAgent", "slates of shape", ()),
    ],
    ids=["duplicates", "not-live", "non-candidates", "short"],
)
def test_agent_breaking_the_contract_raises(agent, message, overrides):
    """Slates with duplicates, unknown items, non-candidates or a wrong shape raise."""
    world = small_world(*overrides, agent=f"{__name__}:{agent}")
    with pytest.raises(AgentContractError, match=re.escape(message)):
        world.step(0)


def test_shared_slates_respond_like_the_same_slates_per_user():
    """Logit users shown one broadcast slate respond and update as with its copies."""
    sc = make_small(
        "users.drift_rate=0.1",
        "users.fatigue_weight=0.3",
        "users.source_preference=0.5",
        "users.churn_threshold=0.3",
    )
    worlds = [World(sc, 0, seed=2), World(sc, 0, seed=2)]
    rng = np.random.default_rng(0)
    for t in range(4):
        for w in worlds:
            w.content.step(t, None)
        items = worlds[0].content.latent()
        ids = worlds[0].users.arrivals(t)
        slate = rng.choice(items.item_ids, 5, replace=False)
        fa = worlds[0].users.respond(t, ids, np.broadcast_to(slate, (ids.size, 5)), items)
        fb = worlds[1].users.respond(t, ids, np.tile(slate, (ids.size, 1)), items)
        np.testing.assert_array_equal(fa.clicked_pos, fb.clicked_pos)
        np.testing.assert_array_equal(fa.engagement, fb.engagement)
        for k, v in worlds[0].users.state_dict().items():
            np.testing.assert_array_equal(v, worlds[1].users.state_dict()[k])
