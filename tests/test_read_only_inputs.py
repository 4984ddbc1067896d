"""What an agent is handed is read-only: an agent cannot change the world through its inputs.

The arrays of an observation (user ids, features, histories, candidates, the catalog) and
of the feedback its ``update`` gets are the world's own. An agent that normalised them in
place changed what the users, the log and the metrics read next: with the user ids
reordered in ``act``, 19 metric columns came out different from an honest twin's; zeroed
engagement in ``update`` changed ``engagement/mean``; the catalog's ids crashed the step
deep inside. Each is now numpy's "read-only" error at the agent's own line, and an agent
that copies before changing runs as before. The log a retrain gets is built for it, so
it stays writable (torch takes it without a copy) and writing into it changes nothing.
Metrics likewise: a metric that wrote into its snapshot's latent items or creators changed
31 of the other metrics' columns; the snapshot now holds read-only views only.
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter

import numpy as np
import pytest
from conftest import SMALL_MODELS, make_small

from simlab import registry
from simlab.agents import PopularityAgent
from simlab.agents.generative_quantiser import encode_residual, fit_residual_kmeans
from simlab.batch import Log
from simlab.batch_arrays import read_only_view
from simlab.metrics import Metric
from simlab.world import World

OBS = {
    "user_ids": lambda o: o.user_ids,
    "user_features": lambda o: o.user_features,
    "history": lambda o: o.history,
    "candidates": lambda o: o.candidates,
    "catalog.item_ids": lambda o: o.catalog.item_ids,
    "catalog.features": lambda o: o.catalog.features,
    "catalog.creator": lambda o: o.catalog.creator,
    "catalog.age": lambda o: o.catalog.age,
    "catalog.source": lambda o: o.catalog.source,
}
FEEDBACK = ("user_ids", "slates", "clicked_pos", "engagement", "clicked_items")
ITEM_FIELDS = (
    "item_ids",
    "creator",
    "source",
    "topic",
    "latent",
    "features",
    "quality",
    "published",
)
CREATOR_FIELDS = ("source", "active", "entered", "exited")
LOG = ("step", "user_ids", "slates", "clicked_pos", "engagement", "feature_ids", "features")


def _agent(where: str, part: str, copy: bool = False):
    """Popularity that writes into one of its inputs (or into a copy of it)."""

    def touch(a: np.ndarray) -> None:
        a = a.copy() if copy else a
        a[...] = a.ravel()[::-1].reshape(a.shape)  # reversed: a real change

    class Writes(PopularityAgent):
        def act(self, obs):
            if where == "obs":
                touch(OBS[part](obs))
            return super().act(obs)

        def update(self, feedback):
            if where == "feedback":
                touch(getattr(feedback, part))
            super().update(feedback)

        def retrain(self, log):
            super().retrain(log)
            if where == "log":  # after learning from it: the log is the agent's own copy
                touch(getattr(log, part))

    return Writes


SITES = [("obs", p) for p in OBS] + [("feedback", p) for p in FEEDBACK]


def _world(cls, *extra):
    registry.register("agents", "writes-inputs", cls)
    try:
        sc = make_small(
            "platform.max_candidates=30",
            "platform.knows_source=true",
            "platform.retrain_every=2",
            *extra,
            agents=[{"model": "writes-inputs"}, {"model": "popularity"}],
            steps=8,
        )
        return sc, World(sc, 0, 0)
    finally:
        registry._REGISTRY["agents"].pop("writes-inputs")


@pytest.mark.parametrize("where, part", SITES, ids=[f"{w}.{p}" for w, p in SITES])
@pytest.mark.parametrize("events", [False, True])
def test_an_agent_cannot_write_into_its_inputs(where, part, events):
    """Every array of the observation, feedback and log refuses a write, at the agent."""
    _, world = _world(_agent(where, part), *(["output.events=true"] if events else []))
    with pytest.raises(ValueError, match="read-only") as info:
        for t in range(8):
            world.step(t)
    assert info.traceback[-1].name == "touch"  # raised at the agent's write, not later


@pytest.mark.parametrize("where, part", SITES, ids=[f"{w}.{p}" for w, p in SITES])
def test_an_agent_that_copies_first_runs_as_before(where, part):
    """Writing into a copy is allowed and changes nothing: the rows equal popularity's."""
    sc, world = _world(_agent(where, part, copy=True))
    twin = World(sc, 1, 0)
    np.testing.assert_equal([world.step(t) for t in range(8)], [twin.step(t) for t in range(8)])


@pytest.mark.parametrize("part", LOG)
@pytest.mark.parametrize("events", [False, True])
def test_the_log_is_the_agents_own_copy(part, events):
    """A retrain's log is built for it (joined from the window's steps).

    An agent may write into it (numpy and torch take it as it is), and the next retrains,
    the metrics and the event log are as a twin's that does not.
    """
    extra = ["output.events=true"] if events else []
    sc, world = _world(_agent("log", part), *extra)
    twin = World(sc, 1, 0)
    np.testing.assert_equal([world.step(t) for t in range(8)], [twin.step(t) for t in range(8)])
    if events:
        np.testing.assert_equal(world.last_feedback.slates, twin.last_feedback.slates)


def test_the_world_keeps_writing_its_own_arrays():
    """The views are read-only, not the arrays behind them: users drift, histories grow."""
    sc = make_small("users.drift_rate=0.2", agents=[{"model": "popularity"}], steps=6)
    world = World(sc, 0, 0)
    before = world.users.interests()[0].copy()
    for t in range(6):
        world.step(t)
    assert not np.array_equal(world.users.interests()[0], before)
    assert world.population.clicks.num_clicks.sum() > 0


SNAPSHOT = {
    **{f"items.{k}": attrgetter(f"items.{k}") for k in ITEM_FIELDS},
    **{f"creators.{k}": attrgetter(f"creators.{k}") for k in CREATOR_FIELDS},
    "interests": lambda s: s.interests,
    "initial_interests": lambda s: s.initial_interests,
    "exposure": lambda s: s.exposure_counts(),
    "rows": lambda s: s.rows(),
    "new_item_sources": lambda s: s.new_item_sources,
    "feedback.engagement": lambda s: s.feedback.engagement,
    "catalog.features": lambda s: s.catalog.features,
}


def _metric(part: str, copy: bool = False):
    """A metric that writes into one array of its snapshot (or into a copy of it)."""

    class Writes(Metric):
        name = "writes-snapshot"
        on_by_default = False
        columns = ("writes/x",)
        ranges = {"writes/x": (None, None)}

        def measure(self, snap):
            a = SNAPSHOT[part](snap)
            a = a.copy() if copy else a
            if a.size:
                a[...] = a.ravel()[::-1].reshape(a.shape)
            return {"writes/x": 0.0}

    return Writes


def _metric_worlds(cls):
    from simlab.scenario_model import _default_metrics

    registry.register("metrics", "writes-snapshot", cls)
    try:
        world = ("users.drift_rate=0.05", ("content.phases", [{"aigc_share": 0.5}]))
        sc = make_small(*world, agents=[{"model": "mf", "factors": 4}], steps=6)
        with_it = sc.model_copy(update={"metrics": [*_default_metrics(), "writes-snapshot"]})
        return World(with_it, 0, 0), World(sc, 0, 0)
    finally:
        registry._REGISTRY["metrics"].pop("writes-snapshot")


@pytest.mark.parametrize("part", sorted(SNAPSHOT))
def test_a_metric_cannot_write_into_its_snapshot(part):
    """The latent items and creators, interests, exposure, rows: read-only to metrics."""
    world, _ = _metric_worlds(_metric(part))
    with pytest.raises(ValueError, match="read-only"):
        for t in range(6):
            world.step(t)


@pytest.mark.parametrize("part", sorted(SNAPSHOT))
def test_a_metric_that_copies_first_changes_nothing(part):
    """Its copy is its own: every other column equals a run without the metric."""
    world, twin = _metric_worlds(_metric(part, copy=True))
    for t in range(6):
        row, want = world.step(t), twin.step(t)
        assert row.pop("writes/x") == 0.0
        np.testing.assert_equal(row, want)


@pytest.fixture
def torch_inputs(monkeypatch) -> list[str]:
    """Where a read-only array reaches torch (``from_numpy``/``as_tensor``), as it happens.

    torch warns about one ("The given NumPy array is not writable") only once per process,
    so the warning cannot tell the cases apart; this records every call site instead.
    """
    import traceback

    import torch

    seen: list[str] = []

    def guard(fn):
        def call(a, *args, **kwargs):
            if isinstance(a, np.ndarray) and not a.flags.writeable:
                frame = traceback.extract_stack(limit=2)[0]
                seen.append(f"{frame.filename}:{frame.lineno}")
            return fn(a, *args, **kwargs)

        return call

    monkeypatch.setattr(torch, "from_numpy", guard(torch.from_numpy))
    monkeypatch.setattr(torch, "as_tensor", guard(torch.as_tensor))
    return seen


TORCH_AGENTS = ["mf", "gru4rec", "two-tower", "generative", "slate-ts"]


@pytest.mark.parametrize("agent", TORCH_AGENTS)
def test_a_retrain_on_a_read_only_log_hands_torch_no_read_only_array(agent, torch_inputs):
    """A log whose arrays are read-only views (built from a catalog's, say) retrains quietly.

    mf's and gru4rec's training passed the log's item features to torch as they were, and
    torch warned "The given NumPy array is not writable"; they copy a read-only array now.
    """
    world = World(make_small(agents=[{"model": agent, **SMALL_MODELS.get(agent, {})}]), 0, 0)
    retrain = world.agent.retrain

    def read_only_retrain(log):
        fields = dataclasses.fields(Log)
        return retrain(Log(**{f.name: read_only_view(getattr(log, f.name)) for f in fields}))

    world.agent.retrain = read_only_retrain
    for t in range(6):
        world.step(t)
    assert torch_inputs == []


def test_the_quantiser_hands_torch_no_read_only_array(torch_inputs):
    """Residual k-means and encoding take read-only features and codebooks."""
    rng = np.random.default_rng(0)
    feats = read_only_view(rng.normal(size=(40, 4)).astype(np.float32))
    books = read_only_view(fit_residual_kmeans(feats, 2, 4, iterations=3, seed=0, step=0))
    again = fit_residual_kmeans(feats, 2, 4, iterations=3, seed=0, step=1, init=books)
    codes = encode_residual(feats, books)
    assert torch_inputs == []
    assert again.shape == books.shape == (2, 4, 4)
    assert codes.shape == (40, 2) and codes.min() >= 0 and codes.max() < 4
