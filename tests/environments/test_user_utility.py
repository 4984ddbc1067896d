"""The logit user model's utility (the oracle's privileged scores) against its formula.

Per-user and shared candidates, any users of a shard (one user included), blocks of users
against one product, and which path shared candidates take. Helpers:
:mod:`test_user_dynamics`.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_user_dynamics import K, item_table, population, utility, with_fatigue


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize(
    ("user_range", "users"), [(None, [0, 3, 4, 9]), (None, [7]), ((3, 9), [3, 5, 8]), ((3, 9), [6])]
)
def test_expected_utility_equals_the_formula(shared, user_range, users):
    """Shared or per-user candidates, any users of a shard: the formula per (user, item)."""
    pop = with_fatigue(population(user_range))
    items = item_table()
    users = np.array(users)
    table = np.array([[5, 0, 2, 7], [1, 2, 3, 4], [7, 6, 5, 0], [3, 3, 1, 6]])[: users.size]
    if shared:
        cands = np.broadcast_to(items.item_ids[[5, 0, 2, 7]], (users.size, 4))
    else:
        cands = items.item_ids[table]
    got = pop.expected_utility(0, users, cands, items)
    assert got.dtype == np.float32
    for b, u in enumerate(users):
        for c, item in enumerate(cands[b]):
            row = int(np.searchsorted(items.item_ids, item))
            assert got[b, c] == pytest.approx(utility(pop, u, row, items), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize(("cells", "blocks"), [(1, 4), (600, 2), (1 << 30, 1)])
@pytest.mark.parametrize(("user_range", "source"), [(None, 0.0), ((50, 350), 0.8)])
def test_shared_utility_in_user_blocks_is_that_of_one_product(
    monkeypatch, cells, blocks, user_range, source
):
    """Blocks of 64+ users: every shared-candidate utility bit for bit (fatigue and source)."""
    import simlab.environments.users as users_mod

    lo = 0 if user_range is None else user_range[0]
    pop = with_fatigue(population(user_range, num_users=400, source_preference=source))
    items = item_table(40)
    users = lo + np.flatnonzero(np.arange(300) % 7 != 3)  # 257 of the shard's users
    cands = np.broadcast_to(items.item_ids[::-1][:5], (users.size, 5))
    monkeypatch.setattr(users_mod, "_UTILITY_BLOCK", 1 << 30)
    whole = pop.expected_utility(0, users, cands, items)
    assert len(users_mod.row_blocks(users.size, 5, cells)) == blocks
    monkeypatch.setattr(users_mod, "_UTILITY_BLOCK", cells)
    got = pop.expected_utility(0, users, cands, items)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), whole.view(np.uint32))
    row = int(np.searchsorted(items.item_ids, cands[0, 2]))
    assert got[200, 2] == pytest.approx(utility(pop, users[200], row, items), rel=1e-5, abs=1e-5)


def test_shared_candidates_are_scored_by_one_matrix_product_not_per_row(monkeypatch):
    """A broadcast candidate row (stride 0) takes the one-product path, per-user rows do not.

    The two paths sum in another order (float32 results may differ in the last bits), so
    which one runs is part of what the oracle sees.
    """
    pop = with_fatigue(population(None))
    items = item_table()
    users = np.array([0, 3, 4])
    shared = np.broadcast_to(items.item_ids[[5, 0, 2, 7]], (3, 4))
    calls = []
    general = pop._utility
    monkeypatch.setattr(pop, "_utility", lambda *a: calls.append(a) or general(*a))
    pop.expected_utility(0, users, shared, items)
    assert calls == []
    pop.expected_utility(0, users, np.ascontiguousarray(shared), items)
    assert len(calls) == 1


@pytest.mark.parametrize("user_range", [(3, 4), (0, 1)])
def test_a_one_user_shard_scores_and_serves_its_user(user_range):
    """A shard holding one user: per-user and shared utilities and a response for it."""
    pop = with_fatigue(population(user_range))
    items = item_table()
    user = np.array([user_range[0]])
    cands = items.item_ids[None, [5, 0, 2]]
    got = pop.expected_utility(0, user, cands, items)
    shared = pop.expected_utility(0, user, np.broadcast_to(cands[0], (1, 3)), items)
    for c, row in enumerate([5, 0, 2]):
        want = utility(pop, user[0], row, items)
        assert got[0, c] == pytest.approx(want, rel=1e-5, abs=1e-5)
        assert shared[0, c] == pytest.approx(want, rel=1e-5, abs=1e-5)
    fb = pop.respond(0, user, items.item_ids[None, :K], items)
    assert fb.user_ids.tolist() == user.tolist() and fb.slates.shape == (1, K)


@pytest.mark.parametrize("concentration", [1e4, 1e6, 1e300])
def test_a_peaked_topic_mixture_puts_each_user_on_one_topic_centre(concentration):
    """At a huge ``topic_concentration`` each user's interest is its top topic's centre.

    The mixture is one-hot: the interest is that centre, normalised, and finite (the softmax
    subtracts the largest logit; adding it overflowed to inf/inf).
    """
    from test_user_dynamics import SEED, TOPICS, context

    from simlab.environments.common import topic_centres
    from simlab.rng import Stream

    ctx = context()
    interests, initial = population(topic_concentration=concentration).interests()
    assert np.isfinite(interests).all() and np.isfinite(initial).all()
    centres = topic_centres(SEED, TOPICS, ctx.dim, ctx.topic_spread)
    centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    draws = Stream(SEED, "users/mixture").normal(np.arange(interests.shape[0]), 0, size=TOPICS)
    top = np.argmax(draws, axis=1)
    np.testing.assert_allclose(initial, centres[top], rtol=1e-6, atol=1e-6)
