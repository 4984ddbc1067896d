"""Interest-evolution arithmetic by hand: distances, squash, weights, keyed choices, updates."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from test_interest_evolution import table as docs

from simlab.environments.interest_evolution import InterestEvolutionUsers, RecSimCorpus
from simlab.environments.interest_evolution_choice import _squash_into, distances, squash
from simlab.rng import Stream
from simlab.world_context import WorldContext


def context(dim: int, user_range=None, seed: int = 1) -> WorldContext:
    """A world context with ``dim`` topics."""
    return WorldContext(seed, dim, dim, 1.0, 10, 3, 5, user_range=user_range)


def users(n: int, dim: int = 2, user_range=None, **params) -> InterestEvolutionUsers:
    """An interest-evolution population."""
    p = InterestEvolutionUsers.Params(num_users=n, **params)
    return InterestEvolutionUsers(p, context(dim, user_range))


@pytest.mark.parametrize("d", [1, 2, 3, 16, 17, 40])
def test_distances_are_euclidean_on_both_layouts(d):
    """Per-user documents (float64) and shared documents (float32) give ``||x - f||``."""
    rng = np.random.default_rng(d)
    x = rng.normal(size=(7, d))
    own = rng.normal(size=(7, 4, d))
    shared = rng.normal(size=(5, d)).astype(np.float32)
    got = distances(x, own)
    assert got.shape == (7, 4) and got.dtype == np.float64
    np.testing.assert_allclose(got, np.linalg.norm(x[:, None] - own, axis=-1), rtol=1e-9)
    got = distances(x, shared)
    assert got.shape == (7, 5) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.linalg.norm(x[:, None] - shared, axis=-1), rtol=2e-5)
    assert (distances(x, x[:, None]) < 1e-3).all()  # a point is at distance 0 of itself


@pytest.mark.parametrize("m", [0.5, 3.0, 10.0])
def test_squash_into_equals_the_formula_in_place(m):
    """``4 M (sigmoid(y / M) - 1/2)`` written into the given array, ``y`` itself included."""
    y = np.linspace(-30, 30, 61)
    want = 4 * m * (1 / (1 + np.exp(-y / m)) - 0.5)
    np.testing.assert_allclose(squash(y, m), want, rtol=1e-12, atol=1e-12)
    out = np.empty_like(y)
    assert _squash_into(y, m, out) is out
    np.testing.assert_array_equal(out, squash(y, m))
    same = y.copy()
    _squash_into(same, m, same)
    np.testing.assert_array_equal(same, squash(y, m))


def choice_reference(pop, t, user_ids, x, slates, items):
    """Inverse-CDF choice by hand: the first slot whose cumulative probability passes u."""
    p = pop.params
    u = Stream(1, "users/choice").uniform(user_ids, t)
    out = []
    for b in range(len(user_ids)):
        f = items.latent[slates[b]].astype(np.float64)
        logits = [
            p.affinity_offset + p.position_bias * j - np.linalg.norm(x[b] - f[j])
            for j in range(len(f))
        ] + [p.no_click_mass]
        w = np.exp(np.array(logits) - max(logits))
        cum = np.cumsum(w / w.sum())
        out.append(next((j for j, c in enumerate(cum) if u[b] < c), len(f)))
    return np.array(out)


@pytest.mark.parametrize("d", [2, 20])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"position_bias": -0.4, "no_click_mass": 1.0},
        {"affinity_offset": -2.0, "position_bias": 0.3},
        {"affinity_offset": -800.0, "no_click_mass": -900.0},  # far below zero
        {"no_click_mass": -1500.0},  # the no-choice weight underflows: the general path
    ],
)
def test_choices_are_the_keyed_inverse_cdf_draws(d, params):
    """Each user's choice is the slot its keyed uniform falls in (K for no choice)."""
    rng = np.random.default_rng(d)
    scale = np.sqrt(2 / d)  # distances of about 2 in any dimension
    pop = users(300, d, initial_interest_scale=scale, **params)
    items = docs(scale * rng.normal(size=(30, d)), np.zeros(30))
    slates = rng.permuted(np.tile(np.arange(30), (300, 1)), axis=1)[:, :3]
    ids = np.arange(300)
    x = pop._interest.copy()
    want = choice_reference(pop, 2, ids, x, slates, items)
    got = pop._choose(2, ids, x, slates, items)
    mismatch = np.flatnonzero(got != want)
    assert mismatch.size <= 1, mismatch  # a uniform within rounding of a boundary at most
    assert np.unique(want).size >= 3  # the draws exercise several slots
    probs = pop.choice_probs(ids, slates, items)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)


def test_no_user_no_choice():
    """An empty batch chooses nothing."""
    pop = users(5)
    items = docs(np.eye(2), [0.0, 0.0])
    got = pop._choose(0, np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros((0, 2), np.int64), items)
    assert got.shape == (0,)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("far", [1000.0, 3000.0])
def test_underflowing_weights_give_the_softmax(dim, far):
    """Every weight underflowing (documents very far): the probabilities are the softmax."""
    pop = users(2, dim, no_click_mass=-far - 1.5, position_bias=-0.5)
    f = np.zeros((3, dim))
    f[:, 0] = far + np.arange(3)
    items = docs(f, np.zeros(3))
    pop.load_state_dict({"interest": np.zeros((2, dim))})
    slates = np.array([[0, 1, 2], [2, 1, 0]])
    probs = pop.choice_probs(np.arange(2), slates, items)
    for row, slate in zip(probs, slates.tolist(), strict=True):
        logits = [2.0 - 0.5 * j - f[s, 0] for j, s in enumerate(slate)] + [-far - 1.5]
        want = np.exp(np.array(logits) - max(logits))
        np.testing.assert_allclose(row, want / want.sum(), rtol=1e-9)
    x = pop._interest.copy()
    want = choice_reference(pop, 4, np.arange(2), x, slates, items)
    np.testing.assert_array_equal(pop._choose(4, np.arange(2), x, slates, items), want)


@pytest.mark.parametrize("served", [[4, 7, 8], [3, 5, 9], [3, 4, 5, 6, 7, 8]])
def test_served_subset_updates_only_its_users(served):
    """Serving some users moves their interests by the rule; the others keep theirs."""
    pop = users(10, 2, user_range=(3, 10), no_click_mass=-80.0, interest_step_size=0.5)
    items = docs([[1.0, 2.0], [-1.0, 0.5]], [0.6, -0.3])
    x0 = pop.interests()[0].copy()
    served = np.array(served)
    slates = np.array([[0, 1], [1, 0], [1, 1]] * 2)[: served.size]
    fb = pop.respond(0, served, slates, items)
    assert (fb.clicked_pos >= 0).all()
    after = pop.interests()[0]
    for b, uid in enumerate(served):
        doc = slates[b, fb.clicked_pos[b]]
        q = np.float64(items.quality[doc])
        y = x0[uid - 3] + 0.5 * q * (items.latent[doc] - x0[uid - 3])
        np.testing.assert_allclose(after[uid - 3], squash(y, 10.0), rtol=1e-12)
    rest = np.setdiff1d(np.arange(7), served - 3)
    np.testing.assert_array_equal(after[rest], x0[rest])


@pytest.mark.parametrize("whole", [True, False])
def test_update_noise_is_keyed_by_user_and_step(whole):
    """A consumer's interest gets ``noise * z``, z keyed by (user, step), before the squash."""
    pop = users(6, 2, no_click_mass=-80.0, interest_step_size=0.0, interest_update_noise=0.4)
    items = docs([[1.0, 0.0], [0.0, 1.0]], [0.5, 0.5])
    x0 = pop.interests()[0].copy()
    served = np.arange(6) if whole else np.array([1, 2, 5])
    pop.respond(3, served, np.tile([0, 1], (served.size, 1)), items)
    z = Stream(1, "users/interest_noise").normal(served, 3, size=2)
    np.testing.assert_allclose(pop.interests()[0][served], squash(x0[served] + 0.4 * z, 10.0))


@pytest.mark.parametrize("quality", [0.9, -2.5, np.inf, -np.inf])  # inf: a huge std
def test_no_step_size_leaves_only_the_squash(quality):
    """interest_step_size 0: consuming does not move the interest, whatever the quality."""
    pop = users(4, 2, no_click_mass=-80.0, interest_step_size=0.0)
    items = docs([[3.0, 3.0]], [quality])
    x0 = pop.interests()[0].copy()
    fb = pop.respond(0, np.arange(4), np.zeros((4, 1), np.int64), items)
    assert fb.clicked.all()
    np.testing.assert_allclose(pop.interests()[0], squash(x0, 10.0), rtol=1e-12)


def test_expected_utility_is_float32_offset_minus_distance():
    """The oracle's utility: ``affinity_offset - ||x - f||`` in float32, for any user subset."""
    pop = users(8, 3, user_range=(2, 8), affinity_offset=1.5)
    rng = np.random.default_rng(0)
    items = docs(rng.normal(size=(6, 3)), np.zeros(6))
    ids = np.array([2, 5, 7])
    cands = np.array([[0, 1], [4, 2], [5, 5]])
    got = pop.expected_utility(0, ids, cands, items)
    x = pop.interests()[0][ids - 2]
    want = 1.5 - np.linalg.norm(x[:, None] - items.latent[cands], axis=-1)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5)
    one = pop.expected_utility(0, ids[:1], np.broadcast_to(cands[:1], (1, 2)), items)
    np.testing.assert_allclose(one, want[:1], rtol=1e-5)


def test_choice_probs_of_a_shards_users_are_the_softmax_of_their_logits():
    """``choice_probs`` reads each user's own interests in a shard ``(3, 9)``."""
    pop = users(9, 2, user_range=(3, 9), position_bias=-0.2, no_click_mass=0.5)
    rng = np.random.default_rng(4)
    items = docs(rng.normal(size=(5, 2)), np.zeros(5))
    ids = np.array([3, 6, 8])
    slates = np.array([[0, 1, 2], [4, 3, 2], [1, 1, 0]])
    x = pop.interests()[0][ids - 3].astype(np.float64)
    p = pop.params
    for b in range(ids.size):
        f = items.latent[slates[b]].astype(np.float64)
        logits = [
            p.affinity_offset + p.position_bias * j - np.linalg.norm(x[b] - f[j]) for j in range(3)
        ]
        w = np.exp(np.array([*logits, p.no_click_mass]))
        want = w / w.sum()
        np.testing.assert_allclose(
            pop.choice_probs(ids[b : b + 1], slates[b : b + 1], items)[0], want, rtol=1e-9
        )
        np.testing.assert_allclose(pop.choice_probs(ids, slates, items)[b], want, rtol=1e-9)


def tied_no_click_mass(u: float) -> float | None:
    """A ``no_click_mass`` ``c`` whose total weight ``1 + exp(c)`` puts ``u`` on a boundary.

    With a slot of weight exactly 1 (logit 0 at the top) and the no-choice weight
    ``exp(c)``, the uniform scaled to the total, ``u * (1 + exp(c))``, equals the first
    cumulative weight 1 exactly; searched over the floats next to ``log(1/u - 1)``.
    """
    c = np.log(1.0 / u - 1.0)
    for _ in range(4000):
        if u * (1.0 + np.exp(c)) == 1.0:
            return float(c)
        c = np.nextafter(c, -np.inf if u * (1.0 + np.exp(c)) > 1.0 else np.inf)
    return None


@pytest.mark.parametrize("d", [2, 20])  # the slot-by-slot path and the general one
def test_a_uniform_on_a_boundary_takes_the_next_option(d):
    """Inverse CDF: slot ``j`` iff ``cum[j-1] <= u * total < cum[j]``, a tie goes up.

    One document at the user's own interest (weight 1, logit 0 the top) and a no-choice
    weight ``exp(c) < 1``: a user whose scaled uniform is below 1 takes the document, one
    at or above 1 (the tie included) takes no choice.
    """
    n, hits = 64, 0
    for t in range(6):
        u = Stream(1, "users/choice").uniform(np.arange(n), t)
        tie = int(np.flatnonzero(u > 0.5)[t])
        c = tied_no_click_mass(float(u[tie]))
        if c is None:  # no float gives the exact tie for this uniform (rare)
            continue
        pop = users(n, d, initial_interest_scale=0.0, affinity_offset=0.0, no_click_mass=c)
        items = docs(np.zeros((1, d)), [0.0])
        fb = pop.respond(t, np.arange(n), np.zeros((n, 1), np.int64), items)
        scaled = u * (1.0 + np.exp(c))
        assert scaled[tie] == 1.0
        np.testing.assert_array_equal(fb.clicked_pos, np.where(scaled < 1.0, 0, -1))
        hits += 1
    assert hits >= 3


@pytest.mark.parametrize("d", [1, 2, 5, 16])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"position_bias": -0.7, "no_click_mass": 2.5},
        {"affinity_offset": -3.0, "position_bias": 0.4},
        {"affinity_offset": -600.0, "no_click_mass": -650.0},
    ],
)
def test_slot_by_slot_choices_equal_the_general_path_bit_for_bit(d, shared, params):
    """The fast path gives exactly the general path's choices (same float64 operations)."""
    rng = np.random.default_rng(d)
    scale = np.sqrt(2 / d)  # distances of about 2 in any dimension
    pop = users(200, d, initial_interest_scale=scale, **params)
    items = docs(scale * rng.normal(size=(12, d)), np.zeros(12))
    ids = np.arange(200)
    if shared:
        rows = np.broadcast_to(rng.permutation(12)[:4], (200, 4))
    else:
        rows = rng.permuted(np.tile(np.arange(12), (200, 1)), axis=1)[:, :4]
    x = pop._interest.copy()
    for t in range(3):
        got = pop._choose(t, ids, x, rows, items)
        np.testing.assert_array_equal(got, pop._choose_general(t, ids, x, rows, items))
    assert np.unique(got).size >= 3


BOUNDS = {  # field: (values the schema rejects, values it accepts)
    "num_users": ([0, -1, -50], [1, 7]),
    "interest_step_size": ([-1e-9, -0.5], [0.0, 0.3]),
    "initial_interest_scale": ([-1e-9, -2.0], [0.0, 1.5]),
    "interest_update_noise": ([-1e-9, -1.0], [0.0, 0.2]),
    "max_user_affinity": ([0.0, -1e-9, -0.5, -1.0, -3.0], [1e-9, 0.5, 12.0]),
}


@pytest.mark.parametrize("field", sorted(BOUNDS))
def test_user_params_reject_out_of_range_values(field):
    """Counts are positive, scales and steps non-negative, the squash's M strictly positive."""
    rejected, accepted = BOUNDS[field]
    for value in rejected:
        with pytest.raises(ValidationError, match=field):
            InterestEvolutionUsers.Params(**{field: value})
    for value in accepted:
        assert getattr(InterestEvolutionUsers.Params(**{field: value}), field) == value


@pytest.mark.parametrize("served", [[3], [4, 7, 9], [3, 4, 5, 6, 7, 8, 9]])
def test_choice_probs_of_a_shards_users_are_their_softmax(served):
    """``choice_probs`` reads each served user's own interest (ids offset by the shard)."""
    pop = users(10, 2, user_range=(3, 10), position_bias=-0.3, no_click_mass=0.5)
    items = docs([[1.0, 2.0], [-1.0, 0.5], [0.2, -0.7]], [0.0, 0.0, 0.0])
    served = np.array(served)
    slates = np.array([[0, 1, 2], [2, 0, 1], [1, 2, 0]] * 3)[: served.size]
    got = pop.choice_probs(served, slates, items)
    x = pop.interests()[0]
    for b, uid in enumerate(served):
        logits = [
            2.0 - 0.3 * j - np.linalg.norm(x[uid - 3] - items.latent[s])
            for j, s in enumerate(slates[b])
        ] + [0.5]
        want = np.exp(logits) / np.exp(logits).sum()
        np.testing.assert_allclose(got[b], want, rtol=1e-6)


CORPUS_BOUNDS = {  # field: (values the schema rejects, values it accepts)
    "trashy_share": ([-1e-9, 1.0 + 1e-9, 2.0], [0.0, 0.5, 1.0]),
    "doc_quality_std": ([-1e-9, -1.0], [0.0, 0.3, 2.0]),
    "doc_feature_std": ([-1e-9, -1.0], [0.0, 0.5, 2.0]),
}


@pytest.mark.parametrize("field", sorted(CORPUS_BOUNDS))
def test_corpus_params_reject_out_of_range_values(field):
    """Shares lie in [0, 1]; standard deviations are non-negative (0 allowed)."""
    rejected, accepted = CORPUS_BOUNDS[field]
    for value in rejected:
        with pytest.raises(ValidationError, match=field):
            RecSimCorpus.Params(**{field: value})
    for value in accepted:
        assert getattr(RecSimCorpus.Params(**{field: value}), field) == value


@pytest.mark.parametrize("lo", [0, 2])
def test_an_empty_batch_responds_nothing_and_moves_nobody(lo):
    """No served user: empty feedback, every interest unchanged."""
    pop = users(6, 2, user_range=(lo, 6))
    x0 = pop.interests()[0].copy()
    fb = pop.respond(0, np.zeros(0, np.int64), np.zeros((0, 3), np.int64), docs(np.eye(2), [1, 1]))
    assert fb.clicked_pos.shape == (0,) and fb.engagement.shape == (0,)
    np.testing.assert_array_equal(pop.interests()[0], x0)


@pytest.mark.parametrize("k", [3, 4, 6])
def test_engagement_is_the_consumed_time_of_the_chosen_slot(k):
    """Whichever slot is chosen (any of K), engagement is ``L * sigmoid(-q)`` of its document."""
    pop = users(300, 2, no_click_mass=-80.0, interest_step_size=0.3)
    rng = np.random.default_rng(k)
    quality = np.linspace(-1.0, 1.0, 8)
    items = docs(0.3 * rng.normal(size=(8, 2)), quality, length=3.0)
    slates = rng.permuted(np.tile(np.arange(8), (300, 1)), axis=1)[:, :k]
    x0 = pop.interests()[0].copy()
    fb = pop.respond(0, np.arange(300), slates, items)
    assert set(fb.clicked_pos.tolist()) == set(range(k))  # every slot chosen by someone
    doc = slates[np.arange(300), fb.clicked_pos]
    q = items.quality[doc].astype(np.float64)
    np.testing.assert_allclose(fb.engagement, 3.0 / (1.0 + np.exp(q)), rtol=1e-6)
    y = x0 + 0.3 * q[:, None] * (items.latent[doc] - x0)
    np.testing.assert_allclose(pop.interests()[0], squash(y, 10.0), rtol=1e-12)
