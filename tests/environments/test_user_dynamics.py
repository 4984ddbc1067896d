"""The logit user model step by step against a per-user reference built from its streams.

Each formula of :mod:`simlab.environments.users` (initial interests, profiles and return
probabilities from the keyed streams; the utility; the Gumbel-max choice with position bias
and the no-click option; engagement; drift, fatigue, satisfaction, churn; satisfaction-moved
returns) is recomputed here one user at a time from the same named streams, so a changed
constant, sign, stream key or update order fails a test rather than moving a population mean.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simlab.environments.common import topic_centres
from simlab.environments.items import ItemTable
from simlab.environments.users import LogitUserPopulation
from simlab.rng import Stream
from simlab.world_context import WorldContext

SEED, DIM, TOPICS, K, USERS = 5, 4, 3, 3, 10


def context(user_range=None, slate_size: int = K) -> WorldContext:
    """A small world context (optionally one user shard)."""
    return WorldContext(
        seed=SEED,
        dim=DIM,
        num_topics=TOPICS,
        topic_spread=1.3,
        steps=10,
        slate_size=slate_size,
        history_length=2,
        user_range=user_range,
    )


def population(user_range=None, **params) -> LogitUserPopulation:
    """Users with every mechanism on unless overridden."""
    base = dict(
        num_users=USERS,
        topic_concentration=2.0,
        feature_noise=0.4,
        return_prob=0.7,
        return_spread=0.5,
        interest_weight=3.0,
        quality_weight=0.7,
        no_click_utility=0.5,
        temperature=0.8,
        position_bias=0.6,
        drift_rate=0.3,
        fatigue_weight=0.25,
        fatigue_decay=0.6,
        source_preference=-0.4,
        satisfaction_rate=0.3,
        churn_threshold=0.45,
        churn_patience=2,
        engagement_noise=0.5,
    )
    base.update(params)
    return LogitUserPopulation(LogitUserPopulation.Params(**base), context(user_range))


def item_table(n: int = 8) -> ItemTable:
    """Items ``10, 12, ...`` with random unit latents, qualities, topics and sources."""
    rng = np.random.default_rng(1)
    lat = rng.normal(size=(n, DIM))
    lat /= np.linalg.norm(lat, axis=1, keepdims=True)
    return ItemTable(
        item_ids=np.arange(10, 10 + 2 * n, 2, dtype=np.int64),
        creator=np.zeros(n, np.int64),
        source=(np.arange(n) % 3 == 0).astype(np.int8),
        topic=np.arange(n, dtype=np.int64) % TOPICS,
        latent=lat.astype(np.float32),
        features=lat.astype(np.float32),
        quality=rng.normal(size=n).astype(np.float32),
        published=np.zeros(n, np.int64),
    )


def utility(pop: LogitUserPopulation, user: int, row: int, items: ItemTable) -> float:
    """``iw <x, e> + qw q - fw F[topic] + sp [AIGC]`` for one user and item row."""
    p = pop.params
    st = pop.state_dict()
    x = st["interest"][user - pop.lo].astype(np.float64)
    return (
        p.interest_weight * float(x @ items.latent[row].astype(np.float64))
        + p.quality_weight * float(items.quality[row])
        - p.fatigue_weight * float(st["fatigue"][user - pop.lo, items.topic[row]])
        + p.source_preference * float(items.source[row])
    )


def with_fatigue(pop: LogitUserPopulation) -> LogitUserPopulation:
    """Load a non-zero fatigue so its term shows in the utility."""
    st = pop.state_dict()
    st["fatigue"] = np.arange(st["fatigue"].size, dtype=np.float32).reshape(-1, TOPICS) / 7
    pop.load_state_dict(st)
    return pop


# ----------------------------------------------------------------------------- initial state


@pytest.mark.parametrize("user_range", [None, (3, 8)])
def test_initial_state_comes_from_the_keyed_streams(user_range):
    """Interests, profiles and return probabilities per user, from their named streams."""
    pop = population(user_range)
    p = pop.params
    lo, hi = user_range or (0, USERS)
    centres = topic_centres(SEED, TOPICS, DIM, 1.3).astype(np.float64)
    current, initial = pop.interests()
    for row, u in enumerate(range(lo, hi)):
        z = p.topic_concentration * Stream(SEED, "users/mixture").normal([u], 0, size=TOPICS)[0]
        w = np.exp(z - z.max())
        x = (w / w.sum()) @ centres
        x /= np.linalg.norm(x)
        np.testing.assert_allclose(initial[row], x, rtol=1e-5, atol=1e-6)
        noise = Stream(SEED, "users/profile").normal([u], 0, size=DIM)[0] / math.sqrt(DIM)
        np.testing.assert_allclose(
            pop.observable_features(np.array([u]))[0], x + p.feature_noise * noise, atol=1e-5
        )
        spread = Stream(SEED, "users/return_propensity").uniform([u], 0)[0] - 0.5
        prob = min(max(p.return_prob + p.return_spread * spread, 0.01), 1.0)
        for t in range(6):  # return exactly when the keyed arrival draw is below it
            here = Stream(SEED, "users/arrival").uniform([u], t)[0] < prob
            assert (u in pop.arrivals(t)) == here
    np.testing.assert_array_equal(current, initial)
    assert not current.flags.writeable and not initial.flags.writeable
    st = pop.state_dict()
    np.testing.assert_array_equal(st["satisfaction"], np.full(hi - lo, 0.5, np.float32))
    np.testing.assert_array_equal(st["fatigue"], np.zeros((hi - lo, TOPICS)))
    np.testing.assert_array_equal(st["poor_visits"], np.zeros(hi - lo))
    assert not st["churned"].any()


def test_return_probabilities_are_clipped_to_one_percent_and_one():
    """A mean near 0 or 1 with a wide spread is clipped to [0.01, 1]."""
    low = population(return_prob=0.005, return_spread=0.0)
    assert all(low.arrivals(t).size <= 2 for t in range(5))  # p = 0.01 for 10 users
    high = population(return_prob=1.0, return_spread=1.0)
    spread = Stream(SEED, "users/return_propensity").uniform(np.arange(USERS), 0) - 0.5
    always = np.flatnonzero(spread >= 0)  # clipped to exactly 1: present at every step
    for t in range(8):
        assert set(always) <= set(high.arrivals(t).tolist())


# ----------------------------------------------------------------------------- a response


def reference_response(pop, t, users, slates, items):
    """Per user: Gumbel-max over no-click and slots, then engagement (from the streams)."""
    p = pop.params
    clicked, engagement = [], []
    for b, u in enumerate(users):
        g = Stream(SEED, "users/choice").gumbel([u], t, size=len(slates[b]) + 1)[0]
        logits = [p.no_click_utility / p.temperature]
        utils = []
        for j, item in enumerate(slates[b]):
            row = int(np.searchsorted(items.item_ids, item))
            utils.append(utility(pop, u, row, items))
            logits.append(utils[-1] / p.temperature - p.position_bias * math.log2(1 + j))
        pos = int(np.argmax(np.asarray(logits) + g)) - 1
        clicked.append(pos)
        if pos < 0:
            engagement.append(0.0)
        else:
            noise = p.engagement_noise * Stream(SEED, "users/engagement").normal([u], t)[0]
            engagement.append(1 / (1 + math.exp(-(utils[pos] - p.no_click_utility + noise))))
    return np.array(clicked), np.array(engagement)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("t", [0, 3])
def test_response_equals_the_per_user_reference(shared, t):
    """Clicked slots exactly, engagement to float32 rounding, for shared and own slates."""
    pop = with_fatigue(population())
    items = item_table()
    users = np.arange(USERS)
    rng = np.random.default_rng(t)
    if shared:
        slates = np.broadcast_to(items.item_ids[[4, 1, 6]], (USERS, K))
    else:
        slates = np.stack([rng.choice(items.item_ids, K, replace=False) for _ in users])
    want_pos, want_eng = reference_response(pop, t, users, slates, items)
    fb = pop.respond(t, users, slates, items)
    np.testing.assert_array_equal(fb.clicked_pos, want_pos)
    assert (want_pos >= 0).any() and (want_pos < 0).any()  # both outcomes exercised
    np.testing.assert_allclose(fb.engagement, want_eng, rtol=1e-5, atol=1e-6)
    assert fb.step == t
    np.testing.assert_array_equal(fb.user_ids, users)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("users", [[3, 5, 8], [4, 5, 6, 7, 8], [3, 4, 5, 6, 7, 8]])
def test_a_shard_responds_as_the_whole_population(shared, users):
    """Users of a shard ``3..8`` (some of them or all) click and engage as in one population."""
    items = item_table()
    users = np.array(users)
    rng = np.random.default_rng(users.size)
    if shared:
        slates = np.broadcast_to(items.item_ids[[4, 1, 6]], (users.size, K))
    else:
        slates = np.stack([rng.choice(items.item_ids, K, replace=False) for _ in users])
    pops = [with_fatigue(population(user_range)) for user_range in (None, (3, 9))]
    st = pops[1].state_dict()  # the shard's users with the same fatigue as in the whole
    st["fatigue"] = pops[0].state_dict()["fatigue"][3:9]
    pops[1].load_state_dict(st)
    want_pos, want_eng = reference_response(pops[0], 2, users, slates, items)
    for pop in pops:
        fb = pop.respond(2, users, slates, items)
        np.testing.assert_array_equal(fb.clicked_pos, want_pos)
        np.testing.assert_allclose(fb.engagement, want_eng, rtol=1e-5, atol=1e-6)
    assert (want_pos >= 0).any()
    for name in ("interest", "satisfaction", "fatigue"):
        np.testing.assert_array_equal(pops[1].state_dict()[name], pops[0].state_dict()[name][3:9])


def test_state_after_a_response_follows_the_update_rules():
    """Drift toward the clicked item, fatigue decay plus topics shown, EMA, poor visits."""
    pop = with_fatigue(population(user_range=(2, 9)))
    p = pop.params
    items = item_table()
    users = np.array([2, 4, 5, 8])
    slates = items.item_ids[np.array([[0, 1, 2], [3, 4, 5], [6, 7, 0], [2, 4, 6]])]
    before = pop.state_dict()
    fb = pop.respond(1, users, slates, items)
    after = pop.state_dict()
    for b, u in enumerate(users):
        r = u - 2
        x = before["interest"][r].astype(np.float64)
        if fb.clicked_pos[b] >= 0:
            e = items.latent[int(np.searchsorted(items.item_ids, slates[b, fb.clicked_pos[b]]))]
            x = x + p.drift_rate * (e - x)
            x /= np.linalg.norm(x)
        np.testing.assert_allclose(after["interest"][r], x, rtol=1e-5, atol=1e-6)
        sat = (1 - p.satisfaction_rate) * before["satisfaction"][r]
        sat += p.satisfaction_rate * fb.engagement[b]
        assert after["satisfaction"][r] == pytest.approx(sat, rel=1e-6)
        assert after["poor_visits"][r] == (1 if sat < p.churn_threshold else 0)
    decay = before["fatigue"] * p.fatigue_decay
    for b, u in enumerate(users):
        for item in slates[b]:
            decay[u - 2, items.topic[int(np.searchsorted(items.item_ids, item))]] += 1
    np.testing.assert_allclose(after["fatigue"], decay, rtol=1e-6)  # everyone's decays
    others = [r for r in range(7) if r + 2 not in users]
    np.testing.assert_array_equal(after["interest"][others], before["interest"][others])
    np.testing.assert_array_equal(after["satisfaction"][others], before["satisfaction"][others])


def test_no_drift_no_fatigue_keep_that_state():
    """``drift_rate = 0`` keeps interests and ``fatigue_weight = 0`` keeps fatigue at 0."""
    pop = population(drift_rate=0.0, fatigue_weight=0.0, no_click_utility=-5.0)
    items = item_table()
    before = pop.state_dict()
    fb = pop.respond(0, np.arange(USERS), np.tile(items.item_ids[:K], (USERS, 1)), items)
    assert (fb.clicked_pos >= 0).all()
    after = pop.state_dict()
    np.testing.assert_array_equal(after["interest"], before["interest"])
    np.testing.assert_array_equal(after["fatigue"], before["fatigue"])


def test_churn_after_patience_poor_visits_and_never_back():
    """Poor visits in a row reach the patience: churned, and absent from every arrival."""
    pop = population(return_prob=1.0, return_spread=0.0, no_click_utility=50.0)
    items = item_table()
    slates = np.tile(items.item_ids[:K], (USERS, 1))
    # 0.5 -> 0.35 (poor 1) -> 0.245 (poor 2 = patience): churn on the second visit
    pop.respond(0, np.arange(USERS), slates, items)
    assert not pop.churned.any()
    np.testing.assert_array_equal(pop.state_dict()["poor_visits"], np.ones(USERS))
    pop.respond(1, np.arange(5), slates[:5], items)
    np.testing.assert_array_equal(pop.churned, np.arange(USERS) < 5)
    np.testing.assert_array_equal(pop.arrivals(2), np.arange(5, USERS))


def test_poor_visits_beyond_the_patience_churn_too():
    """A count already past the patience (a checkpoint forked with a smaller one) churns."""
    pop = population(return_prob=1.0, return_spread=0.0, no_click_utility=50.0)
    st = pop.state_dict()
    st["poor_visits"] = np.array([5, 0, 1, 0, 0, 0, 0, 0, 0, 3])  # patience 2
    pop.load_state_dict(st)
    items = item_table()
    users = np.array([0, 1, 2, 9])
    pop.respond(0, users, np.tile(items.item_ids[:K], (4, 1)), items)  # every visit poor
    np.testing.assert_array_equal(np.flatnonzero(pop.churned), [0, 2, 9])


@pytest.mark.parametrize("strength", [0.4, 3.0])
def test_satisfaction_moves_the_return_probability(strength):
    """``clip(prob + strength (satisfaction - 0.5), 0.01, 1)`` against the arrival draws."""
    pop = population(satisfaction_return=strength)
    st = pop.state_dict()
    st["satisfaction"] = np.linspace(0.0, 1.0, USERS).astype(np.float32)
    pop.load_state_dict(st)
    spread = Stream(SEED, "users/return_propensity").uniform(np.arange(USERS), 0) - 0.5
    base = np.clip(0.7 + 0.5 * spread, 0.01, 1.0)
    prob = np.clip(base + strength * (st["satisfaction"] - 0.5), 0.01, 1.0)
    for t in range(8):
        want = np.flatnonzero(Stream(SEED, "users/arrival").uniform(np.arange(USERS), t) < prob)
        np.testing.assert_array_equal(pop.arrivals(t), want)


def test_state_dict_is_a_copy_and_a_wrong_shape_is_named():
    """Changing a returned state does not touch the users; a shard mismatch names the array."""
    pop = population()
    st = pop.state_dict()
    st["satisfaction"][:] = 0.0
    assert (pop.state_dict()["satisfaction"] == 0.5).all()
    other = population(user_range=(0, 4))
    with pytest.raises(ValueError, match=r"user state `interest` of shape \(4, 4\), actual"):
        other.load_state_dict(pop.state_dict())


@pytest.mark.parametrize(
    ("name", "shape"),
    [("interest", (9, DIM)), ("interest", (11, DIM)), ("fatigue", (USERS, TOPICS - 1)),
     ("fatigue", (USERS, TOPICS + 1)), ("satisfaction", (USERS - 1,)), ("churned", ())],
)  # fmt: skip
def test_a_state_of_another_shape_is_refused_whole(name, shape):
    """Fewer or more users or columns: a ValueError naming the array, and nothing loaded."""
    pop = population()
    st = pop.state_dict()
    st[name] = np.zeros(shape, st[name].dtype)
    st["satisfaction" if name != "satisfaction" else "fatigue"] += 1
    before = pop.state_dict()
    with pytest.raises(ValueError, match=rf"user state `{name}` of shape .*actual shape"):
        pop.load_state_dict(st)
    after = pop.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_optional_mechanisms_are_off_by_default():
    """Drift, fatigue, source preference, churn and satisfaction-moved returns default to 0."""
    p = LogitUserPopulation.Params()
    off = ("drift_rate", "fatigue_weight", "source_preference", "churn_threshold")
    assert all(getattr(p, name) == 0.0 for name in (*off, "satisfaction_return"))
    assert (p.temperature, p.no_click_utility, p.position_bias) == (1.0, 3.0, 0.3)


def test_defaults_are_the_documented_ones():
    """Every default of the ``logit`` model, as docs/scenario-reference.md lists them."""
    documented = dict(
        num_users=2000,
        topic_concentration=3.0,
        feature_noise=0.5,
        return_prob=0.8,
        return_spread=0.2,
        interest_weight=4.0,
        quality_weight=1.0,
        no_click_utility=3.0,
        temperature=1.0,
        position_bias=0.3,
        drift_rate=0.0,
        fatigue_weight=0.0,
        fatigue_decay=0.8,
        source_preference=0.0,
        satisfaction_rate=0.2,
        churn_threshold=0.0,
        churn_patience=10,
        satisfaction_return=0.0,
        engagement_noise=0.3,
    )
    assert LogitUserPopulation.Params().model_dump() == documented


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("engagement_noise", -0.1),
        ("temperature", 0.0),
        ("return_prob", 0.0),
        ("return_prob", 1.5),
        ("drift_rate", 1.2),
        ("fatigue_decay", 1.0),
        ("satisfaction_rate", 0.0),
        ("churn_patience", 0),
        ("num_users", 0),
        ("position_bias", -1.0),
    ],
)
def test_out_of_range_parameters_are_rejected_by_name(field, bad):
    """A value outside a parameter's bounds is a validation error naming the field."""
    with pytest.raises(ValueError, match=field):
        LogitUserPopulation.Params(**{field: bad})
    good = 1 if field in ("churn_patience", "num_users") else 0.5
    assert getattr(LogitUserPopulation.Params(**{field: good}), field) == good
