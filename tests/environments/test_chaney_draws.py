"""Chaney's world: the paper's defaults, and draws that are what the docs say (not only near)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import make_small
from test_chaney import CTX, _items, _users

from simlab.environments.chaney import ChaneyItems, ChaneyUsers
from simlab.environments.chaney_memo import DrawMemo
from simlab.world import World


def test_defaults_are_the_papers():
    """K-independent settings of Chaney et al. as T-RECS replicates them (PAPERS.md 5a)."""
    u = ChaneyUsers.Params()
    assert (u.num_users, u.preference_scale, u.sigma) == (100, 10.0, 1e-5)
    assert (u.known_utility, u.attention_exp) == (0.98, -0.8)
    i = ChaneyItems.Params()
    assert (i.items_per_step, i.initial_items, i.lifetime) == (10, 0, 0)
    assert (i.attribute_scale, i.attribute_concentration) == (0.1, 100.0)


def test_initial_items_are_published_before_step_zero_and_never_retire_by_default():
    """``initial_items`` are live before step 0 (published at -1); by default none retires."""
    items = ChaneyItems(ChaneyItems.Params(initial_items=7), CTX)
    assert items.items.published.tolist() == [-1] * 7
    for t in range(5):
        items.step(t, None)
    table = items.items
    assert table.item_ids.tolist() == list(range(7 + 5 * 10))
    assert table.published.tolist() == [-1] * 7 + [t for t in range(5) for _ in range(10)]
    with pytest.raises(ValueError):
        ChaneyItems.Params(lifetime=-1)


def test_preferences_handed_out_are_read_only():
    """The static preferences the measures read cannot be changed through ``interests``."""
    current, initial = _users().interests()
    for theta in (current, initial):
        with pytest.raises(ValueError):
            theta[0, 0] = 1.0


@pytest.mark.parametrize("noise", [0.0, 0.5, 2.0])
def test_observable_features_are_preferences_plus_noise_of_the_stated_scale(noise):
    """Features = theta + noise * N(0, 1) / sqrt(K): residual std noise / sqrt(K), mean 0."""
    ctx = dataclasses.replace(CTX, num_users=3000, dim=16)
    users = _users(ctx, feature_noise=noise)
    resid = users.observable_features(np.arange(3000)).astype(np.float64) - users.theta
    if noise == 0:
        np.testing.assert_allclose(resid, 0, atol=1e-6)
        return
    want = noise / np.sqrt(16)
    assert abs(resid.std() / want - 1) < 0.02
    assert abs(resid.mean()) < 4 * want / np.sqrt(resid.size)


def _utilities(sigma: float, users: int = 80):
    ctx = dataclasses.replace(CTX, num_users=users)
    u = _users(ctx, sigma=sigma)
    items = _items(ctx, steps=8).latent()
    ids = np.broadcast_to(items.item_ids, (users, items.item_ids.shape[0]))
    v = u.expected_utility(0, np.arange(users), ids, items).astype(np.float64)
    mu = np.clip(u.theta @ items.attributes.T, 1e-9, 1 - 1e-9)
    return v, mu


def u_eta(sigma: float, known: float = 0.98) -> np.ndarray:
    """The known shares eta = P / V of 80 users for the items of 8 steps."""
    ctx = dataclasses.replace(CTX, num_users=80)
    u = _users(ctx, sigma=sigma, known_utility=known)
    items = _items(ctx, steps=8).latent()
    ids = np.broadcast_to(items.item_ids, (80, items.item_ids.shape[0]))
    cols = u._cache(ids, items)
    v, p = u._v[:, cols[0]].ravel(), u._p[:, cols[0]].ravel()
    return p[v > 1e-12] / v[v > 1e-12]  # where V is not lost to underflow


@pytest.mark.parametrize("known", [0.98, 0.7, 0.3])
@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.3, 0.45])
def test_utility_spread_is_sigma_capped_at_half_a_betas_largest(sigma, known):
    """V has mean theta . beta and sd min(sigma, sqrt(mu (1 - mu)) / 2), at any sigma.

    eta (the known share, mean ``known_utility``) is capped the same way, so large sigmas
    draw too.
    """
    v, mu = _utilities(sigma)
    sd = np.minimum(sigma, 0.5 * np.sqrt(mu * (1 - mu)))
    keep = mu > 1e-3  # float32 utilities: leave out the tiny means
    z = (v - mu)[keep] / sd[keep]
    assert abs(z.mean()) < 0.1
    assert abs(z.std() - 1) < 0.1
    eta = u_eta(sigma, known)
    k_sd = min(sigma, 0.5 * np.sqrt(known * (1 - known)))
    assert abs(eta.mean() - known) < 4 * k_sd / np.sqrt(eta.size) + 1e-6
    assert abs(eta.std() / k_sd - 1) < 0.1


@pytest.mark.parametrize("sigma", [0.1, 0.2, 0.45])
def test_the_cap_follows_the_mean_where_it_binds(sigma):
    """V's sd is min(sigma, sqrt(m (1 - m)) / 2) at chosen means m, symmetric in m and 1 - m.

    Users all on topic 0 and items with beta_0 = m give the means. (Chaney's own means are
    near 1/K, where sqrt(m) and sqrt(m (1 - m)) differ by a few percent; these means tell
    the cap's form apart.)
    """
    users, per = 60, 300
    u = _users(dataclasses.replace(CTX, num_users=users), sigma=sigma)
    u.theta = np.zeros_like(u.theta)
    u.theta[:, 0] = 1.0
    means = [0.2, 0.35, 0.5, 0.65, 0.8]
    k = u.theta.shape[1]
    attrs = np.zeros((len(means) * per, k))
    attrs[:, 0] = np.repeat(means, per)
    attrs[:, 1:] = ((1 - attrs[:, 0]) / (k - 1))[:, None]
    v, _ = u._draw(np.arange(attrs.shape[0], dtype=np.int64), attrs)
    for j, m in enumerate(means):
        got = v[:, j * per : (j + 1) * per]
        want = min(sigma, 0.5 * np.sqrt(m * (1 - m)))
        assert abs(got.mean() - m) < 4 * want / np.sqrt(got.size)
        assert abs(got.std() / want - 1) < 0.03, (m, got.std(), want)


def test_utility_noise_is_independent_across_users_and_items():
    """Every (user, item) pair draws its own noise.

    Residuals of two users (any two, also users 32 apart) or of two items are uncorrelated.
    """
    v, mu = _utilities(0.05, users=80)
    z = (v - mu) / np.minimum(0.05, 0.5 * np.sqrt(mu * (1 - mu)))
    by_user = np.corrcoef(z)  # (users, users)
    off = by_user[~np.eye(80, dtype=bool)]
    assert np.abs(off).max() < 0.5 and abs(off.mean()) < 0.05
    assert np.abs(np.diagonal(by_user, 32)).max() < 0.5
    by_item = np.corrcoef(z.T)
    assert np.abs(by_item[~np.eye(by_item.shape[0], dtype=bool)]).max() < 0.6


def test_draws_are_pinned_golden_values():
    """Seed 3's first preferences, attributes, utilities and features are pinned.

    A change of stream layout must be deliberate: update these values and say so.
    """
    users = _users()
    items = _items(steps=1).latent()
    np.testing.assert_allclose(
        users.theta[:2, :3],
        [[0.3913581982243174, 0.2715560139660415, 0.0076480707440079315],
         [0.07493588483035384, 0.15985242333383617, 0.08697098790578409]],
        rtol=1e-12,
    )  # fmt: skip
    np.testing.assert_allclose(
        items.attributes[:2, :3],
        [[5.362824561107237e-33, 5.901793158076452e-29, 0.9999999999999347],
         [7.40387985426532e-26, 0.9857455088781185, 3.726372022707203e-27]],
        rtol=1e-9,
    )  # fmt: skip
    ids = np.broadcast_to(items.item_ids[:3], (2, 3))
    np.testing.assert_allclose(
        users.expected_utility(0, np.arange(2), ids, items),
        [[0.007639057468622923, 0.268446147441864, 0.39102739095687866],
         [0.08698086440563202, 0.15824763476848602, 0.0749153196811676]],
        rtol=1e-6,
    )  # fmt: skip
    np.testing.assert_allclose(
        users.observable_features(np.arange(2))[:, :3],
        [[0.12346620112657547, -0.046335458755493164, -0.1359773576259613],
         [0.43820178508758545, 0.10546670854091644, -0.04407859966158867]],
        rtol=1e-6,
    )  # fmt: skip


def test_known_utility_draws_are_pinned_golden_values():
    """Seed 3's known utilities ``P = V eta`` of the first users and items are pinned.

    ``eta`` is drawn once per (user, item) at step 0 of its own stream (mean 0.98).
    """
    users = _users()
    items = _items(steps=1).latent()
    cols = users._cache(items.item_ids[:3], items)
    np.testing.assert_allclose(
        users._p[:2, cols],
        [[0.0074863228856375, 0.2630744770794413, 0.38320323711252396],
         [0.08524016541566543, 0.15508356385757985, 0.07341618188427697]],
        rtol=1e-12,
    )  # fmt: skip


@pytest.mark.parametrize("reach", [1.0, 1.5, 40.0])
def test_utility_means_at_or_past_one_are_clipped_inside_the_unit_interval(reach):
    """Attributes whose dot product with a user's preferences reaches 1 still give a Beta'.

    World attributes are on the simplex (dot products below 1); crafted ones are clipped
    to ``[1e-9, 1 - 1e-9]`` and drawn, never refused (with sigma 1e-5 a draw may round to
    0 or 1 in float64).
    """
    users = _users()
    k = int(np.argmax(users.theta[0]))
    attrs = np.zeros((3, users.theta.shape[1]))  # row 2: no attribute at all, a product of 0
    attrs[0, k] = reach / users.theta[0, k]
    attrs[1, k] = 1e-30  # a dot product of ~0, clipped to 1e-9
    v, eta = users._draw(np.array([0, 1, 2], np.int64), attrs)
    assert np.isfinite(v).all() and (v >= 0).all() and (v <= 1).all()
    assert v[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert v[0, 1] == pytest.approx(0.0, abs=1e-5)
    assert v[:, 2] == pytest.approx(0.0, abs=1e-5)
    assert ((eta > 0) & (eta < 1)).all()


@pytest.mark.parametrize("later", [[6], [0], [3, 11], [0, 4, 12]])
def test_items_cached_out_of_id_order_read_the_same_utilities(later):
    """Caching items below the largest cached id keeps the cache sorted and every value."""
    users = _users()
    items = _items(steps=2).latent()
    ids = items.item_ids
    first = np.array([i for i in (1, 5, 9) if i not in later], np.int64)
    users._cache(ids[first], items)
    users._cache(ids[np.array(later)], items)
    fresh = _users()
    both = np.concatenate([first, later])
    want = fresh.expected_utility(
        0, np.arange(4), np.broadcast_to(ids[both], (4, both.size)), items
    )
    got = users.expected_utility(0, np.arange(4), np.broadcast_to(ids[both], (4, both.size)), items)
    np.testing.assert_array_equal(got, want)
    assert (np.diff(users._ids) > 0).all()


_EDGES = [  # (params class, field, smallest or largest allowed value, the next one refused)
    (ChaneyItems.Params, "items_per_step", 1, 0),
    (ChaneyItems.Params, "initial_items", 0, -1),
    (ChaneyItems.Params, "attribute_scale", 1e-300, 0.0),
    (ChaneyItems.Params, "attribute_concentration", 1e-300, 0.0),
    (ChaneyItems.Params, "lifetime", 0, -1),
    (ChaneyUsers.Params, "num_users", 1, 0),
    (ChaneyUsers.Params, "preference_scale", 1e-300, 0.0),
    (ChaneyUsers.Params, "sigma", 1e-100, 9.99e-101),  # a smaller one's square is 0
    (ChaneyUsers.Params, "sigma", 0.4999999, 0.5),
    (ChaneyUsers.Params, "known_utility", 1e-100, 9.99e-101),
    (ChaneyUsers.Params, "known_utility", 0.9999999, 1.0),
    (ChaneyUsers.Params, "attention_exp", 0.0, 1e-300),
    (ChaneyUsers.Params, "feature_noise", 0.0, -1e-300),
]


@pytest.mark.parametrize(("cls", "field", "edge", "beyond"), _EDGES)
def test_every_bound_accepts_its_edge_and_refuses_past_it(cls, field, edge, beyond):
    """Each setting's last allowed value is accepted; the next is refused, naming the field."""
    assert getattr(cls(**{field: edge}), field) == edge
    with pytest.raises(ValueError, match=field):
        cls(**{field: beyond})


@pytest.mark.parametrize("size", [1, 2, 4])
def test_draw_memo_keeps_the_most_recently_used_keys(size):
    """At most ``size`` keys; putting one more drops the least recently put or read."""
    memo = DrawMemo(size)
    ids, attrs = np.array([3, 7]), np.eye(2)
    v = np.arange(4.0).reshape(2, 2)
    for key in range(size + 2):
        memo.put((key,), ids, attrs, v + key, v - key)
        held = list(range(max(0, key + 1 - size), key + 1))
        assert [k for (k,) in memo._tables] == held
    oldest = (2,)
    got_v, got_eta = memo.get(oldest, ids, attrs)  # a read makes it the most recent
    np.testing.assert_array_equal(got_v, v + 2)
    np.testing.assert_array_equal(got_eta, v - 2)
    memo.put((size + 2,), ids, attrs, v, v)
    assert len(memo._tables) == size and (oldest in memo._tables) == (size > 1)
    assert memo.get((0,), ids, attrs) == (None, None)


@pytest.mark.parametrize(("users", "items", "held"), [(3, 4, True), (3, 5, False), (1, 12, True)])
def test_draw_memo_holds_no_table_over_its_cell_cap(users, items, held):
    """A table over ``max_cells`` (user, item) pairs is not held, nor kept once it grows.

    So a large world costs no second copy of V and eta.
    """
    memo = DrawMemo(size=2, max_cells=12)
    ids = np.arange(items, dtype=np.int64)
    attrs = np.ones((items, 2))
    v = np.arange(users * items, dtype=float).reshape(users, items)
    memo.put("k", ids, attrs, v, -v)
    assert ("k" in memo._tables) == held
    got = memo.get("k", ids, attrs)
    if held:
        np.testing.assert_array_equal(got[0], v)
        more = np.arange(items, items + 1, dtype=np.int64)  # one more item: past the cap
        memo.put("k", more, np.ones((1, 2)), v[:, :1], v[:, :1])
        assert "k" not in memo._tables
    else:
        assert got == (None, None)


@pytest.mark.parametrize(
    ("users", "items"), [(100, 1000), (2000, 2097), (2048, 2048), (2000, 2098), (10**4, 10**4)]
)
def test_memory_estimate_counts_the_utility_caches_and_the_memo_while_it_holds(users, items):
    """16 bytes per (user, item) for V and P, 16 more while the memo's cap holds the pairs.

    The scenario's estimate adds that part (named), over the items the run publishes.
    """
    from simlab.environments import chaney_memo
    from simlab.memory import estimate

    pairs = users * items
    held = pairs <= chaney_memo.DRAWS.max_cells
    assert ChaneyUsers.memory_bytes(users, items) == 16 * pairs * (2 if held else 1)
    sc = make_small(
        steps=10,
        users={"model": "chaney", "num_users": users},
        content={"model": "chaney-items", "items_per_step": items // 10},
        agents=[{"model": "random"}],
    )
    est = estimate(sc)
    assert est.parts["user utilities"] == ChaneyUsers.memory_bytes(users, items // 10 * 10)
    assert est.drivers["user utilities"] == "users.num_users"


@pytest.mark.parametrize("initial", [0, 5])
def test_before_the_first_step_the_initial_items_are_new(initial):
    """At step -1 (before any step) the catalog's initial items have age 0; then they age."""
    items = ChaneyItems(ChaneyItems.Params(initial_items=initial), CTX)
    assert items.state_dict()["t"] == -1
    assert items.catalog(False).age.tolist() == [0] * initial
    items.step(0, None)
    assert items.catalog(False).age.tolist() == [1] * initial + [0] * 10


def test_chaney_users_take_the_whole_ranked_catalog():
    """``platform.slate_size: 0`` validates with chaney users, who consume from every item."""
    sc = make_small(
        ("users", {"model": "chaney", "num_users": 20}),
        ("content", {"model": "chaney-items", "initial_items": 15}),
        "platform.slate_size=0",
    )
    world = World(sc, 0, 0)
    rows = [world.step(t) for t in range(2)]
    assert all(r["engagement/ctr"] == 1.0 for r in rows)


def test_the_memos_default_bounds_are_the_documented_ones():
    """4 keys of at most 4M cells each: the utility memo adds at most 256 MiB to a process."""
    from simlab.environments.chaney_memo import ATTRIBUTES, DRAWS, AttributeMemo

    for memo in (DrawMemo(), AttributeMemo(), DRAWS, ATTRIBUTES):
        assert (memo.size, memo.max_cells) == (4, 1 << 22)
    assert DrawMemo().size * DrawMemo().max_cells * 16 == 256 * 2**20
