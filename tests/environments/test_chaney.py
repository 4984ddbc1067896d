"""Chaney et al.'s world: items, users, choice by rank-weighted known utility, social graph."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_small

from simlab.batch import Catalog
from simlab.environments import chaney_memo
from simlab.environments.chaney import ChaneyItems, ChaneyUsers
from simlab.environments.social_graph import SocialGraphParams, social_graph
from simlab.errors import ScenarioError
from simlab.world import World, WorldContext

CTX = WorldContext(
    seed=3,
    dim=6,
    num_topics=6,
    topic_spread=1.0,
    steps=20,
    slate_size=0,
    history_length=5,
    num_users=40,
)


def _users(ctx=CTX, **params) -> ChaneyUsers:
    return ChaneyUsers(ChaneyUsers.Params(num_users=ctx.num_users, **params), ctx)


def _items(ctx=CTX, steps: int = 3, **params) -> ChaneyItems:
    items = ChaneyItems(ChaneyItems.Params(**params), ctx)
    for t in range(steps):
        items.step(t, None)
    return items


def test_items_publish_dirichlet_attributes_at_a_fixed_rate_and_never_retire():
    """items_per_step items a step with simplex attributes; none retires without a lifetime."""
    items = _items(steps=7, items_per_step=4)
    table = items.latent()
    assert table.item_ids.tolist() == list(range(28))
    np.testing.assert_allclose(table.attributes.sum(axis=1), 1.0)
    np.testing.assert_array_equal(table.features, table.attributes.astype(np.float32))
    np.testing.assert_allclose(np.linalg.norm(table.latent, axis=1), 1.0, rtol=1e-6)
    assert table.published.tolist() == np.repeat(np.arange(7), 4).tolist()
    cat = items.catalog(False)
    assert isinstance(cat, Catalog) and cat.age.tolist() == (6 - table.published).tolist()
    short = _items(steps=7, items_per_step=4, lifetime=2)
    assert short.latent().published.min() == 5


def test_item_attributes_are_keyed_by_id_and_follow_the_hyper_prior():
    """An item's attributes do not depend on how many items a step publishes; mean = mu_alpha."""
    chaney_memo.ATTRIBUTES._held.clear()
    a = _items(steps=6, items_per_step=5).latent()
    chaney_memo.ATTRIBUTES._held.clear()  # drawn again, not taken from the memo
    b = _items(steps=3, items_per_step=10).latent()
    np.testing.assert_array_equal(a.attributes, b.attributes)
    many = ChaneyItems(ChaneyItems.Params(initial_items=20000), CTX)
    mu = many.mu_alpha
    assert mu.sum() == pytest.approx(0.1)  # attribute_scale * a point of the simplex
    np.testing.assert_allclose(many.latent().attributes.mean(axis=0), mu / mu.sum(), atol=0.02)


def test_preferences_are_keyed_by_user_whatever_the_shard():
    """A shard holding users 10..19 has the same preferences and utilities as the whole."""
    whole = _users()
    part = ChaneyUsers(
        ChaneyUsers.Params(num_users=40), WorldContext(**{**CTX.__dict__, "user_range": (10, 20)})
    )
    np.testing.assert_array_equal(part.theta, whole.theta[10:20])
    items = _items().latent()
    ids = np.broadcast_to(items.item_ids[:8], (10, 8))
    np.testing.assert_array_equal(
        part.expected_utility(0, np.arange(10, 20), ids, items),
        whole.expected_utility(0, np.arange(10, 20), ids, items),
    )


def test_utility_is_a_tight_beta_around_preference_dot_attributes():
    """V ~ Beta'(theta . beta, 1e-5): within a few sigma of the dot product; P = V * eta."""
    users = _users()
    items = _items(steps=5).latent()
    uid = np.arange(40)
    ids = np.broadcast_to(items.item_ids, (40, items.item_ids.shape[0]))
    v = users.expected_utility(0, uid, ids, items).astype(np.float64)
    mu = np.clip(users.theta @ items.attributes.T, 1e-9, 1 - 1e-9)
    sd = np.minimum(1e-5, 0.5 * np.sqrt(mu * (1 - mu)))
    z = (v - mu) / sd
    assert np.abs(z[mu > 1e-3]).max() < 6  # float32 V: only where the mean is not tiny
    cols = users._cache(ids, items)
    eta = users._p[:, cols[0]] / users._v[:, cols[0]]
    assert np.abs(eta - 0.98).max() < 6e-5


def _hand_choice(p_row: np.ndarray, exp: float) -> int:
    return int(np.argmax([p * (r + 1) ** exp for r, p in enumerate(p_row)]))


@pytest.mark.parametrize("exp", [-0.8, 0.0, -3.0])
def test_choice_is_the_argmax_of_rank_weighted_known_utility(exp):
    """Each user consumes exactly one item: argmax_r r^exp * P at rank r; engagement is V."""
    users = _users(attention_exp=exp)
    items = _items(steps=4).latent()
    rng = np.random.default_rng(0)
    slates = np.stack([rng.permutation(items.item_ids)[:9] for _ in range(40)])
    fb = users.respond(5, np.arange(40), slates, items)
    assert (fb.clicked_pos >= 0).all()
    cols = users._cache(slates, items)
    for u in range(40):
        want = _hand_choice(users._p[u, cols[u]], exp)
        assert fb.clicked_pos[u] == want
        assert fb.engagement[u] == np.float32(users._v[u, cols[u, want]])


def test_users_arrive_every_step_and_keep_their_preferences():
    """Every user is served every step; preferences (the interests) never change."""
    users = _users()
    items = _items().latent()
    before = users.interests()[0].copy()
    for t in range(3):
        assert users.arrivals(t).tolist() == list(range(40))
        users.respond(t, np.arange(40), np.broadcast_to(items.item_ids[:5], (40, 5)), items)
    np.testing.assert_array_equal(users.interests()[0], before)
    assert users.state_dict() == {}


# ----------------------------------------------------------------------------- social graph


def _prefs(n=60, seed=0):
    return np.random.default_rng(seed).dirichlet(np.full(6, 0.4), size=n)


@pytest.mark.parametrize("seed", range(5))
def test_covariance_graph_is_the_largest_threshold_leaving_nobody_alone(seed):
    """Edges where covariance >= c*, c* = min_u max_{v != u} cov: nobody alone, c* maximal."""
    prefs = _prefs(seed=seed)
    adj = social_graph(SocialGraphParams(), prefs, 0).toarray()
    cov = np.cov(prefs)
    np.fill_diagonal(cov, -np.inf)
    c_star = cov.max(axis=1).min()
    np.testing.assert_array_equal(adj > 0, cov >= c_star)
    assert (adj.sum(axis=1) >= 1).all() and (np.diag(adj) == 0).all()
    np.testing.assert_array_equal(adj, adj.T)
    above = cov > c_star  # any higher threshold leaves someone without a friend
    assert not above.any(axis=1).all()


@pytest.mark.parametrize("k", [1, 4, 13])
@pytest.mark.parametrize("kind", ["knn", "random"])
def test_knn_and_random_graphs(kind, k):
    """knn: each user links its k most similar; random: k draws; both symmetric, no loops.

    Random draws are with replacement: at least one friend, a repeat counting once.
    """
    prefs = _prefs()
    adj = social_graph(SocialGraphParams(kind=kind, neighbours=k), prefs, 7).toarray()
    assert (adj.sum(axis=1) >= (k if kind == "knn" else 1)).all() and (np.diag(adj) == 0).all()
    np.testing.assert_array_equal(adj, adj.T)
    if kind == "knn":
        cov = np.cov(prefs)
        np.fill_diagonal(cov, -np.inf)
        top = np.argsort(-cov, axis=1)[:, :k]
        assert adj[np.arange(60)[:, None], top].all()
        mask = np.zeros((60, 60), bool)
        mask[np.arange(60)[:, None], top] = True
        np.testing.assert_array_equal(adj > 0, mask | mask.T)  # those links and no other
    else:  # keyed by seed: the same graph again, another graph for another seed
        again = social_graph(SocialGraphParams(kind=kind, neighbours=k), prefs, 7).toarray()
        other = social_graph(SocialGraphParams(kind=kind, neighbours=k), prefs, 8).toarray()
        np.testing.assert_array_equal(adj, again)
        assert (adj != other).any()


@pytest.mark.parametrize(
    ("params", "users", "match"),
    [
        ({"kind": "covariance"}, 20_001, "at most 20000 users"),
        ({"kind": "knn", "neighbours": 5}, 5, "below num_users"),
        ({"kind": "random"}, 1, "at least 2 users"),
    ],
)
def test_impossible_graphs_are_refused(params, users, match):
    """Sizes a graph cannot be drawn for get a clear error naming the limit."""
    with pytest.raises(ValueError, match=match):
        SocialGraphParams(**params).check_size(users)


@pytest.mark.parametrize("kind", ["covariance", "knn", "random"])
def test_smallest_graphs_are_drawn(kind):
    """Two users and one neighbour, the smallest settings, make the two users friends.

    Zero neighbours is refused by the schema.
    """
    params = SocialGraphParams(kind=kind, neighbours=1)
    params.check_size(2)
    adj = social_graph(params, _prefs(n=2), 3).toarray()
    np.testing.assert_array_equal(adj, [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="neighbours"):
        SocialGraphParams(kind=kind, neighbours=0)


def test_chaney_scenario_errors_name_the_field():
    """Mixing chaney users with content lacking attributes, or a too-large graph, is refused."""
    with pytest.raises(
        ScenarioError, match="content.model: users.model 'chaney' needs items with attributes"
    ):
        make_small(("users", {"model": "chaney", "num_users": 50}), "platform.slate_size=0")
    with pytest.raises(ScenarioError, match="users.social_graph: .*at most 20000 users"):
        make_small(
            ("users", {"model": "chaney", "num_users": 30000}),
            ("content", {"model": "chaney-items"}),
            agents=[{"model": "social-filtering"}],
        )
    # without an agent that draws it, the graph's limits do not apply
    make_small(
        ("users", {"model": "chaney", "num_users": 30000}), ("content", {"model": "chaney-items"})
    )
    with pytest.raises(ScenarioError, match="platform.slate_size: 0 .* needs a user model"):
        make_small("platform.slate_size=0")
    with pytest.raises(
        ScenarioError, match="agents\\[0\\].model: 'social-filtering' recommends from"
    ):
        make_small(agents=[{"model": "social-filtering"}])


def test_a_chaney_world_runs_with_simlab_agents():
    """Chaney's users and items mix with simlab's agents and platform (a fixed slate size)."""
    sc = make_small(
        ("users", {"model": "chaney", "num_users": 50}),
        ("content", {"model": "chaney-items", "initial_items": 40}),
        agents=[{"model": "mf", "factors": 4}],
    )
    world = World(sc, 0, 0)
    rows = [world.step(t) for t in range(6)]
    assert all(r["engagement/ctr"] == 1.0 for r in rows)  # Chaney's users always consume
    assert 0 < rows[-1]["engagement/mean"] < 1


def test_worlds_of_one_seed_share_draws_and_other_items_get_their_own():
    """Drawn or taken from the process's memo, the same utilities; other items drawn afresh."""
    from simlab.environments import chaney_memo

    items = _items(steps=4).latent()
    ids = np.broadcast_to(items.item_ids, (40, items.item_ids.shape[0]))
    chaney_memo.DRAWS._tables.clear()
    first = _users().expected_utility(0, np.arange(40), ids, items)
    assert chaney_memo.DRAWS._tables  # held for the next world of the seed
    again = _users().expected_utility(0, np.arange(40), ids, items)
    np.testing.assert_array_equal(first, again)
    chaney_memo.DRAWS._tables.clear()
    fresh = _users().expected_utility(0, np.arange(40), ids, items)
    np.testing.assert_array_equal(first, fresh)
    other = _items(steps=4, attribute_scale=0.5).latent()  # same ids, other attributes
    mu = np.clip(_users().theta @ other.attributes.T, 1e-9, 1)
    got = _users().expected_utility(0, np.arange(40), ids, other).astype(float)
    assert np.abs(got - mu)[mu > 1e-3].max() < 1e-3  # drawn around the new attributes


@pytest.mark.parametrize(("n", "k"), [(1000, 40), (1000, 99), (400, 25)])
def test_knn_graph_of_a_large_population_links_exactly_the_top_k(n, k):
    """On a population large enough for a partial selection to leave the rest unordered.

    The k most similar users of each user are its links (and, by symmetry, those that chose
    it); a selection that found only the first few of them would link others.
    """
    prefs = _prefs(n=n, seed=n + k)
    adj = social_graph(SocialGraphParams(kind="knn", neighbours=k), prefs, 7).toarray() > 0
    cov = np.cov(prefs)
    np.fill_diagonal(cov, -np.inf)
    mask = np.zeros((n, n), bool)
    mask[np.arange(n)[:, None], np.argsort(-cov, axis=1, kind="stable")[:, :k]] = True
    np.testing.assert_array_equal(adj, mask | mask.T)


def test_worlds_of_one_seed_share_item_draws_and_other_settings_draw_their_own():
    """Items taken from the process's memo equal items drawn afresh; the memo stays small."""
    memo = chaney_memo.ATTRIBUTES._held
    memo.clear()
    fresh = _items(steps=6, items_per_step=5).latent().attributes
    assert [v.shape for v in memo.values()] == [(30, CTX.dim)]
    again = _items(steps=4, items_per_step=3).latent().attributes  # within what is held
    np.testing.assert_array_equal(again, fresh[:12])
    longer = _items(steps=8, items_per_step=5).latent().attributes  # held + 10 drawn
    np.testing.assert_array_equal(longer[:30], fresh)
    memo.clear()
    np.testing.assert_array_equal(_items(steps=8, items_per_step=5).latent().attributes, longer)
    longer[:] = 0.0  # a world's table is its own copy
    np.testing.assert_array_equal(_items(steps=8, items_per_step=5).latent().attributes[:30], fresh)
    # other settings or seeds: other keys, their own draws
    other = _items(steps=6, items_per_step=5, attribute_concentration=5.0).latent().attributes
    assert not np.array_equal(other, fresh)
    ctx = WorldContext(**{**CTX.__dict__, "seed": 4})
    assert not np.array_equal(_items(ctx, steps=6, items_per_step=5).latent().attributes, fresh)
    for seed in range(10, 16):
        _items(WorldContext(**{**CTX.__dict__, "seed": seed}), steps=1)
    assert len(memo) == chaney_memo.ATTRIBUTES.size


def test_a_world_restored_past_the_memo_draws_its_items_itself():
    """A restored world publishing ids the memo does not reach draws them, keyed as always."""
    chaney_memo.ATTRIBUTES._held.clear()
    whole = _items(steps=6, items_per_step=5).latent().attributes
    chaney_memo.ATTRIBUTES._held.clear()
    first = _items(steps=2, items_per_step=5)
    chaney_memo.ATTRIBUTES._held.clear()
    restored = ChaneyItems(ChaneyItems.Params(items_per_step=5), CTX)
    restored.load_state_dict(first.state_dict())
    for t in range(2, 6):
        restored.step(t, None)
    np.testing.assert_array_equal(restored.latent().attributes, whole)
    assert not any(v.size for v in chaney_memo.ATTRIBUTES._held.values())  # nothing held


def test_the_item_memo_holds_at_most_its_cells_and_draws_the_rest_alike():
    """Past ``max_cells`` values a key's items are drawn by each world: the same values."""
    memo = chaney_memo.AttributeMemo(size=2, max_cells=12 * CTX.dim)
    items = ChaneyItems(ChaneyItems.Params(items_per_step=5), CTX)
    draw, mu = items._draw, items.mu_alpha
    want = draw.dirichlet(np.arange(20), 0, mu)
    np.testing.assert_array_equal(memo.take("k", np.arange(0, 5), draw, mu), want[:5])
    np.testing.assert_array_equal(memo.take("k", np.arange(5, 12), draw, mu), want[5:12])
    assert memo._held["k"].shape == (12, CTX.dim)  # exactly the cap
    np.testing.assert_array_equal(memo.take("k", np.arange(10, 13), draw, mu), want[10:13])
    np.testing.assert_array_equal(memo.take("k", np.arange(12, 20), draw, mu), want[12:20])
    assert memo._held["k"].shape == (12, CTX.dim)  # nothing held past the cap
    np.testing.assert_array_equal(memo.take("k", np.arange(0, 12), draw, mu), want[:12])
    for key in ("a", "b"):
        memo.take(key, np.arange(3), draw, mu)
    assert list(memo._held) == ["a", "b"]  # the oldest key dropped first


def test_the_utility_memo_keeps_every_held_item_once_when_new_draws_overlap():
    """put() of ids partly held replaces those and keeps the rest: each id once, all gettable."""
    memo = chaney_memo.DrawMemo(size=2)
    attrs = np.arange(40.0).reshape(20, 2)
    v, eta = np.arange(60.0).reshape(3, 20), -np.arange(60.0).reshape(3, 20)
    ids = np.arange(20, dtype=np.int64)
    memo.put("k", ids[:12], attrs[:12], v[:, :12], eta[:, :12])
    memo.put("k", ids[8:], attrs[8:], v[:, 8:], eta[:, 8:])  # 8..11 held already
    held = memo._tables["k"][0]
    assert held.tolist() == list(range(20))
    got_v, got_eta = memo.get("k", ids, attrs)
    np.testing.assert_array_equal(got_v, v)
    np.testing.assert_array_equal(got_eta, eta)
    assert memo.get("k", ids, attrs + 1.0) == (None, None)  # other attributes: drawn afresh


@pytest.mark.parametrize("lifetime", [1, 2, 3])
def test_a_world_given_older_items_drops_every_item_past_its_lifetime(lifetime):
    """Items restored older than the lifetime (a fork with a shorter one) all retire."""
    old = _items(steps=6, items_per_step=2)  # ages 0..5, no lifetime
    items = ChaneyItems(ChaneyItems.Params(items_per_step=2, lifetime=lifetime), CTX)
    items.load_state_dict(old.state_dict())
    items.step(6, None)
    ages = 6 - items.latent().published
    assert ages.max() < lifetime
    assert sorted(set(ages.tolist())) == list(range(lifetime))


TINY = [1e-9, 1e-30, 1e-300, 1e-310, 5e-324]


@pytest.mark.parametrize("field", ["attribute_concentration", "attribute_scale"])
@pytest.mark.parametrize("value", TINY)
def test_tiny_item_hyper_priors_give_valid_attributes(field, value):
    """Any positive concentration or scale the schema allows draws points of the simplex.

    Tiny ones underflow to exact zeros (a nearly one-hot prior or alpha); the attributes
    are then nearly one-hot too, finite and summing to 1, not an error from the draws.
    """
    items = _items(**{field: value})
    attrs = items.items.attributes
    assert np.isfinite(attrs).all() and (attrs >= 0).all()
    np.testing.assert_allclose(attrs.sum(axis=1), 1.0)
    if field == "attribute_concentration" and value <= 1e-30:
        assert (attrs.max(axis=1) > 0.999).mean() > 0.9  # a vertex of the simplex, nearly


@pytest.mark.parametrize("value", TINY)
def test_tiny_preference_scales_give_valid_preferences_and_utilities(value):
    """A tiny ``preference_scale`` gives nearly one-hot preferences and finite utilities."""
    users = _users(preference_scale=value)
    theta = users.preferences(np.arange(12))
    assert np.isfinite(theta).all() and (theta >= 0).all()
    np.testing.assert_allclose(theta.sum(axis=1), 1.0)
    world = World(make_small(("users", {"model": "chaney", "num_users": 12,
                                        "preference_scale": value}),
                             ("content", {"model": "chaney-items", "attribute_scale": value}),
                             "steps=3"), 0, 0)  # fmt: skip
    for t in range(3):
        row = world.step(t)
    assert np.isfinite(row["engagement/mean"])
