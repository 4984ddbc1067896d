"""Tests of the native RecSim NG interest-evolution model (users and corpus)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from simlab import registry
from simlab.environments.content import CreatorEcosystem
from simlab.environments.interest_evolution import (
    InterestEvolutionUsers,
    RecSimCorpus,
    RecSimItems,
    squash,
    topic_means,
)
from simlab.errors import ScenarioError
from simlab.scenario import parse_scenario
from simlab.world import World, WorldContext

# ----------------------------------------------------------------------------- helpers


def context(num_topics: int = 2, slate_size: int = 2, user_range=None, seed: int = 0):
    """A world context whose feature dimension is the number of topics."""
    return WorldContext(
        seed=seed,
        dim=num_topics,
        num_topics=num_topics,
        topic_spread=1.0,
        steps=10,
        slate_size=slate_size,
        history_length=5,
        user_range=user_range,
    )


def users(num_users: int = 50, ctx: WorldContext | None = None, **params: Any):
    """An interest-evolution population."""
    p = InterestEvolutionUsers.Params(num_users=num_users, **params)
    return InterestEvolutionUsers(p, ctx or context())


def table(features, quality, length=2.0) -> RecSimItems:
    """A hand-made corpus of ``len(quality)`` documents with ids ``0..N-1``."""
    f = np.asarray(features, np.float32)
    n = f.shape[0]
    ids = np.arange(n, dtype=np.int64)
    return RecSimItems(
        item_ids=ids,
        creator=ids,
        source=np.zeros(n, np.int8),
        topic=np.zeros(n, np.int64),
        latent=f,
        features=f,
        quality=np.asarray(quality, np.float32),
        published=np.full(n, -1, np.int64),
        length=np.full(n, length, np.float32),
    )


def set_interest(pop: InterestEvolutionUsers, x) -> None:
    """Give every user of ``pop`` the interest ``x``."""
    n = pop.hi - pop.lo
    pop.load_state_dict({"interest": np.tile(np.asarray(x, np.float64), (n, 1))})


def scenario(agent: str = "random", seed_users: int = 300, metrics=None, **top: Any):
    """A small interest-evolution world (RecSim NG defaults: 2 topics, slate 2)."""
    data: dict[str, Any] = {
        "name": "ie",
        "steps": 8,
        "world": {"dim": 2, "num_topics": 2},
        "users": {"model": "interest-evolution", "num_users": seed_users},
        "content": {"model": "recsim-corpus", "num_docs": 40},
        "platform": {"slate_size": 2},
        "agents": [{"model": agent}],
        "output": {"flush_seconds": 0.0},
        "execution": {"backend": "local"},
    }
    if metrics is not None:
        data["metrics"] = metrics
    data.update(top)
    return parse_scenario(data)


# ----------------------------------------------------------------------------- registry


def test_registry_names_resolve_to_the_native_model():
    """`interest-evolution` and `recsim-corpus` are the classes of this module."""
    assert registry.resolve("users", "interest-evolution") is InterestEvolutionUsers
    assert registry.resolve("content", "recsim-corpus") is RecSimCorpus


def test_defaults_are_recsim_ng_defaults():
    """Defaults equal InterestEvolutionUser's and CorpusWithTopicAndQuality's."""
    u = InterestEvolutionUsers.Params()
    assert (u.num_users, u.interest_step_size, u.max_user_affinity) == (1000, 0.1, 10.0)
    assert (u.no_click_mass, u.affinity_offset, u.initial_interest_scale) == (0.0, 2.0, 1.0)
    assert (u.interest_update_noise, u.position_bias) == (0.0, 0.0)
    c = RecSimCorpus.Params()
    assert (c.num_docs, c.topic_min_utility, c.topic_max_utility) == (100, -1.0, 1.0)
    assert (c.trashy_share, c.doc_quality_std, c.doc_feature_std, c.doc_length) == (
        0.7,
        0.1,
        0.7,
        2.0,
    )


# ----------------------------------------------------------------------------- corpus


def test_corpus_draws_topics_qualities_and_features_as_recsim_ng():
    """Topic means follow the trashy/nutritious split; qualities and features scatter as set."""
    ctx = context(num_topics=5)
    corpus = RecSimCorpus(RecSimCorpus.Params(num_docs=20000), ctx)
    items = corpus.latent()
    means = topic_means(5, 0.7, -1.0, 1.0)
    assert means.tolist() == [-1.0, -0.5, 0.0, 0.0, 1.0]
    counts = np.bincount(items.topic, minlength=5)
    assert np.all(np.abs(counts / 20000 - 0.2) < 0.015)  # uniform topics
    resid_q = items.quality - means[items.topic]
    assert abs(resid_q.std() - 0.1) < 0.005 and abs(resid_q.mean()) < 0.005
    resid_f = items.latent - np.eye(5)[items.topic]
    assert np.allclose(resid_f.std(axis=0), 0.7, atol=0.02)
    assert np.all(items.length == 2.0)
    # static: stepping changes nothing but the age
    before = items.latent.copy()
    corpus.step(3, None)
    assert np.array_equal(corpus.latent().latent, before)
    assert np.all(corpus.catalog(False).age == 4) and corpus.new_item_sources().size == 0


def test_feature_dimension_must_equal_topics():
    """world.dim != world.num_topics is a clear error naming both values."""
    ctx = WorldContext(seed=0, dim=8, num_topics=2, topic_spread=1.0, steps=1, slate_size=2,
                       history_length=2)  # fmt: skip
    with pytest.raises(ScenarioError, match=re.escape("world.dim=8, world.num_topics=2")):
        RecSimCorpus(RecSimCorpus.Params(), ctx)
    with pytest.raises(ScenarioError, match="world.dim must equal world.num_topics"):
        InterestEvolutionUsers(InterestEvolutionUsers.Params(), ctx)


# ----------------------------------------------------------------------------- choice


def test_choice_probabilities_match_the_logit_formula():
    """Hand case: logits -||x - f|| + 2 per document, 0 for no choice; frequencies agree."""
    n = 40000
    pop = users(n)
    set_interest(pop, [0.0, 0.0])
    items = table([[3.0, 4.0], [0.0, 1.0]], [0.0, 0.0])  # distances 5 and 1
    slates = np.tile(np.array([0, 1]), (n, 1))
    ids = np.arange(n)
    want = np.exp([-3.0, 1.0, 0.0]) / np.exp([-3.0, 1.0, 0.0]).sum()
    assert np.allclose(pop.choice_probs(ids[:3], slates[:3], items), want, atol=1e-12)
    fb = pop.respond(0, ids, slates, items)
    freq = np.bincount(np.where(fb.clicked_pos < 0, 2, fb.clicked_pos), minlength=3) / n
    se = np.sqrt(want * (1 - want) / n)
    assert np.all(np.abs(freq - want) < 4 * se), (freq, want)


def test_no_click_mass_and_position_bias_shift_the_logits():
    """A higher no-choice logit lowers choices; a negative position bias favours slot 0."""
    items = table([[1.0, 0.0], [1.0, 0.0]], [0.0, 0.0])
    pop = users(1, no_click_mass=1.5, position_bias=-0.5)
    set_interest(pop, [1.0, 0.0])  # distance 0: logits 2, 1.5 and no choice 1.5
    probs = pop.choice_probs(np.array([0]), np.array([[0, 1]]), items)[0]
    want = np.exp([2.0, 1.5, 1.5]) / np.exp([2.0, 1.5, 1.5]).sum()
    assert np.allclose(probs, want, atol=1e-12)


# ----------------------------------------------------------------------------- dynamics


def test_consuming_moves_interest_by_quality_then_squashes():
    """Interest becomes squash(x + 0.1 q (f - x)): toward good documents, away from trashy."""
    x0 = np.array([0.5, -0.2])
    f = np.array([[1.5, 0.3], [1.5, 0.3]])
    items = table(f, [0.8, -0.9])
    for doc, q in ((0, 0.8), (1, -0.9)):
        pop = users(3, ctx=context(slate_size=1), no_click_mass=-60.0)  # always chooses
        set_interest(pop, x0)
        fb = pop.respond(0, np.arange(3), np.full((3, 1), doc), items)
        assert np.all(fb.clicked_pos == 0)
        want = squash(x0 + 0.1 * np.float32(q) * (f[doc] - x0), 10.0)
        got = pop.interests()[0]
        assert np.allclose(got, want, rtol=0, atol=1e-7)
        closer = np.linalg.norm(got - f[doc], axis=1) < np.linalg.norm(x0 - f[doc])
        assert np.all(closer == (q > 0))


def test_users_who_choose_nothing_are_only_squashed():
    """Without a choice: reward 0, clicked_pos -1, interest squash(x) (RecSim NG squashes all)."""
    pop = users(4, no_click_mass=60.0)  # never chooses
    x0 = np.array([6.0, -3.0])
    set_interest(pop, x0)
    items = table([[0.0, 0.0], [1.0, 1.0]], [1.0, 1.0])
    fb = pop.respond(0, np.arange(4), np.tile([0, 1], (4, 1)), items)
    assert np.all(fb.clicked_pos == -1) and np.all(fb.engagement == 0)
    assert np.allclose(pop.interests()[0], squash(x0, 10.0), rtol=0, atol=1e-12)
    assert not np.allclose(squash(x0, 10.0), x0)  # the squash does something


def test_squash_is_recsim_ng_formula():
    """squash(y) == 4M(sigmoid(y/M) - 0.5), bounded by 2M."""
    y = np.linspace(-200, 200, 41)
    assert np.allclose(squash(y, 10.0), 40.0 * (1 / (1 + np.exp(-y / 10.0)) - 0.5), atol=1e-12)
    assert np.all(np.abs(squash(y, 10.0)) < 20.0)


def test_reward_is_consumed_time_of_the_chosen_document():
    """Engagement = sigmoid(-quality) * length of the chosen document, 0 without a choice."""
    world = World(scenario(), 0, seed=3)
    items = world.content.latent()
    for t in range(4):
        world.step(t)
        fb = world.last_feedback
        chosen = fb.clicked_items
        want = np.where(
            fb.clicked,
            items.length[np.maximum(chosen, 0)]
            / (1 + np.exp(items.quality[np.maximum(chosen, 0)].astype(np.float64))),
            0.0,
        )
        assert np.allclose(fb.engagement, want, atol=1e-6)
        assert fb.clicked.any() and (~fb.clicked).any()


def test_interest_update_noise_only_for_consuming_users():
    """With update noise, consumers' interests differ from the noiseless rule; others do not."""
    items = table([[1.0, 0.0], [0.0, 1.0]], [0.5, 0.5])
    slates = np.tile([0, 1], (200, 1))
    quiet, noisy = users(200), users(200, interest_update_noise=0.3)
    fb_q = quiet.respond(0, np.arange(200), slates, items)
    fb_n = noisy.respond(0, np.arange(200), slates, items)
    assert np.array_equal(fb_q.clicked_pos, fb_n.clicked_pos)
    moved = np.abs(quiet.interests()[0] - noisy.interests()[0]).max(axis=1) > 1e-9
    assert np.array_equal(moved, fb_q.clicked)


# ----------------------------------------------------------------------------- simlab contracts


def test_every_user_arrives_every_step_and_features_show_nothing():
    """RecSim NG has no return model; its users show no observable features."""
    pop = users(10, ctx=context(user_range=(4, 9)))
    assert pop.arrivals(0).tolist() == [4, 5, 6, 7, 8] == pop.arrivals(7).tolist()
    feats = pop.observable_features(np.array([4, 6]))
    assert feats.shape == (2, 2) and not feats.any()


def test_sharded_users_behave_like_unsharded():
    """Two shards give exactly the feedback and interests of one population."""
    n = 60
    items = RecSimCorpus(RecSimCorpus.Params(num_docs=30), context()).latent()
    whole = users(n)
    shards = [users(n, ctx=context(user_range=r)) for r in ((0, 25), (25, 60))]
    for t in range(6):
        slates = np.stack([(np.arange(2) + 3 * t + u) % 30 for u in range(n)])
        fb = whole.respond(t, np.arange(n), slates, items)
        parts = [s.respond(t, np.arange(s.lo, s.hi), slates[s.lo : s.hi], items) for s in shards]
        assert np.array_equal(fb.clicked_pos, np.concatenate([p.clicked_pos for p in parts]))
        assert np.array_equal(fb.engagement, np.concatenate([p.engagement for p in parts]))
    joined = np.concatenate([s.interests()[0] for s in shards])
    assert np.array_equal(whole.interests()[0], joined)
    assert np.array_equal(whole.interests()[1], np.concatenate([s.interests()[1] for s in shards]))


def test_state_dict_round_trip_continues_identically():
    """A population restored from state_dict responds exactly like the original."""
    items = RecSimCorpus(RecSimCorpus.Params(num_docs=20), context()).latent()
    ids = np.arange(40)
    slates = [np.stack([(np.arange(2) + t + u) % 20 for u in ids]) for t in range(8)]
    a = users(40)
    for t in range(4):
        a.respond(t, ids, slates[t], items)
    b = users(40)
    b.load_state_dict(a.state_dict())
    for t in range(4, 8):
        fa, fb = a.respond(t, ids, slates[t], items), b.respond(t, ids, slates[t], items)
        assert np.array_equal(fa.clicked_pos, fb.clicked_pos)
        assert np.array_equal(fa.engagement, fb.engagement)
    assert np.array_equal(a.interests()[0], b.interests()[0])
    with pytest.raises(ValueError, match=re.escape("`interest` of shape (40, 2)")):
        b.load_state_dict({"interest": np.zeros((39, 2))})


def test_users_need_documents_with_a_length():
    """Content without document lengths is a clear error naming the content model to use."""
    ctx = context()
    creators = CreatorEcosystem(CreatorEcosystem.Params(initial_items=10), ctx)
    pop = users(3)
    with pytest.raises(ScenarioError, match="use content.model: recsim-corpus"):
        pop.respond(0, np.arange(3), np.tile([0, 1], (3, 1)), creators.latent())


def test_expected_utility_is_the_choice_logit_on_both_paths():
    """Shared and per-user candidates give the same utilities, equal to -||x - f|| + 2."""
    corpus = RecSimCorpus(RecSimCorpus.Params(num_docs=25), context())
    items = corpus.latent()
    pop = users(12)
    ids = np.arange(2, 9)
    shared = np.broadcast_to(items.item_ids, (ids.size, 25))
    u_shared = pop.expected_utility(0, ids, shared, items)
    u_rows = pop.expected_utility(0, ids, np.ascontiguousarray(shared), items)
    x = pop.interests()[0][ids]
    want = 2.0 - np.linalg.norm(x[:, None, :] - items.latent[None], axis=-1)
    assert np.allclose(u_shared, want, atol=1e-5) and np.allclose(u_rows, want, atol=1e-5)


def test_world_runs_with_every_metric_and_is_deterministic():
    """Default metrics run on the model; a seed fixes the rows; the oracle beats random."""
    rows = {}
    for agent in ("random", "oracle"):
        for rep in range(2):
            world = World(scenario(agent), 0, seed=11)
            rows[agent, rep] = [row for _, row in world.run()]
    for agent in ("random", "oracle"):
        a, b = rows[agent, 0], rows[agent, 1]
        assert [list(r) for r in a] == [list(r) for r in b]
        va = np.array([list(r.values()) for r in a], np.float64)
        vb = np.array([list(r.values()) for r in b], np.float64)
        assert np.array_equal(va, vb, equal_nan=True)
        assert np.isfinite(va[:, list(a[0]).index("engagement/mean")]).all()
    reward = {a: sum(r["engagement/mean"] for r in rows[a, 0]) for a in ("random", "oracle")}
    assert reward["oracle"] > 1.2 * reward["random"], reward


def test_world_checkpoint_restores_users_and_corpus():
    """A world restored from a checkpoint continues with exactly the original's rows."""
    sc = scenario("oracle", metrics=["engagement", "drift"])
    world = World(sc, 0, seed=5)
    for t in range(3):
        world.step(t)
    state = world.checkpoint()
    rows = [world.step(t) for t in range(3, 7)]
    restored = World(sc, 0, seed=5)
    restored.restore(state)
    assert [restored.step(t) for t in range(3, 7)] == rows
    assert rows[0]["echo/interest_drift"] > 0  # interests did evolve before the checkpoint


# ----------------------------------------------------------------------------- fast paths


@pytest.mark.parametrize("num_topics", [2, 3])
@pytest.mark.parametrize("params", [{}, {"position_bias": -0.3, "no_click_mass": 1.5}])
def test_slot_by_slot_choices_equal_the_general_path(num_topics, params):
    """The (K + 1, B) choice draws equal cumsum(_weights) draws exactly, shared or not."""
    rng = np.random.default_rng(num_topics)
    u = users(300, context(num_topics, slate_size=4), **params)
    docs = table(rng.normal(size=(40, num_topics)), rng.normal(size=40))
    ids = np.arange(300)
    x = u._interest
    per_user = rng.permuted(np.tile(np.arange(40), (300, 1)), axis=1)[:, :4]
    shared = np.broadcast_to(np.array([5, 0, 33, 12]), (300, 4))
    for t, rows in enumerate([per_user, shared, per_user[::2]]):
        who = ids[: rows.shape[0]]
        np.testing.assert_array_equal(
            u._choose(t, who, x[: rows.shape[0]], rows, docs),
            u._choose_general(t, who, x[: rows.shape[0]], rows, docs),
        )


def test_shared_slates_respond_like_the_same_slates_per_user():
    """A slate broadcast to every user gives the responses and state of its copies."""
    rng = np.random.default_rng(3)
    docs = table(rng.normal(size=(30, 2)), rng.normal(size=30))
    a, b = users(200, interest_update_noise=0.2), users(200, interest_update_noise=0.2)
    ids = np.arange(200)
    for t in range(4):
        slate = rng.choice(30, 2, replace=False)
        fa = a.respond(t, ids, np.broadcast_to(slate, (200, 2)), docs)
        fb = b.respond(t, ids, np.tile(slate, (200, 1)), docs)
        np.testing.assert_array_equal(fa.clicked_pos, fb.clicked_pos)
        np.testing.assert_array_equal(fa.engagement, fb.engagement)
        np.testing.assert_array_equal(a.state_dict()["interest"], b.state_dict()["interest"])
