"""Tests of the slate Thompson sampling agent: contract, in-slate slates, CTR, click model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_small, record_acts

from simlab.agents.slate_ts import SlateThompsonAgent
from simlab.batch import PAD, Catalog, Log, Observation
from simlab.testing import check_agent
from simlab.world import World

POLICIES = ["greedy", "thompson", "in-slate"]
SEEDS = (0, 1, 2, 3)
STEPS = 40
FIRST_MODEL_STEP = 3  # retrain_every=3, deploy_lag=1: the first model serves from step 3


@pytest.fixture(scope="module")
def runs() -> dict[str, list[dict]]:
    """Greedy and in-slate TS in the small slate world (400 users, 40 steps), per seed."""
    out: dict[str, list[dict]] = {}
    for policy in ("greedy", "in-slate"):
        out[policy] = []
        for seed in SEEDS:
            spec = {"model": "slate-ts", "policy": policy}
            scenario = make_small(("users.num_users", 400), steps=STEPS, agents=[spec])
            world = World(scenario, 0, seed)
            calls = record_acts(world)
            ctr = [world.step(t)["engagement/ctr"] for t in range(STEPS)]
            out[policy].append({"ctr": np.array(ctr), "calls": calls})
    return out


# ----------------------------------------------------------------------------- helpers


def make_obs(users: int | np.ndarray, features: np.ndarray, k: int, step: int = 0) -> Observation:
    """Users ``0..users-1`` (or the given ids) with zero profiles; all items are candidates."""
    user_ids = np.arange(users) if isinstance(users, int) else np.asarray(users)
    num_users, n = user_ids.shape[0], features.shape[0]
    catalog = Catalog(
        item_ids=np.arange(n, dtype=np.int64),
        features=features.astype(np.float32),
        creator=np.zeros(n, np.int64),
        age=np.zeros(n, np.int64),
    )
    return Observation(
        step=step,
        user_ids=user_ids.astype(np.int64),
        user_features=np.zeros((num_users, 2), np.float32),
        history=np.full((num_users, 3), PAD, np.int64),
        candidates=np.broadcast_to(catalog.item_ids, (num_users, n)),
        catalog=catalog,
        slate_size=k,
        shared_candidates=True,
    )


def group_log(features: np.ndarray, num_users: int, rows_per_user: int, seed: int) -> Log:
    """A log of random 4-item slates of items ``0..29`` whose clicks follow item groups.

    User ``u`` is in group ``u % 2`` and item ``i`` in group ``i % 2``; a user clicks the
    first item of their group in the slate with probability 0.8, else nothing.
    """
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(num_users), rows_per_user)
    slates = np.argsort(rng.random((users.shape[0], 30)), axis=1)[:, :4]
    aligned = slates % 2 == (users % 2)[:, None]
    first = np.argmax(aligned, axis=1)
    click = aligned.any(axis=1) & (rng.random(users.shape[0]) < 0.8)
    clicked_pos = np.where(click, first, -1)
    return Log(
        step=np.zeros(users.shape[0], np.int64),
        user_ids=users.astype(np.int64),
        slates=slates.astype(np.int64),
        clicked_pos=clicked_pos.astype(np.int64),
        engagement=click.astype(np.float32),
        feature_ids=np.arange(features.shape[0], dtype=np.int64),
        features=features.astype(np.float32),
    )


def trained_agent(
    seed: int, num_users: int = 40, **params
) -> tuple[SlateThompsonAgent, np.ndarray]:
    """An agent retrained on a :func:`group_log`, and the ``(40, 3)`` item features.

    Items 30..39 are never shown.

    Features say nothing about the groups and profiles are zero, so everything must be
    learned from clicks through ``p_u`` and ``delta_i``: their priors are wider than the
    defaults, which expect features to carry most of the signal.
    """
    rng = np.random.default_rng(100 + seed)
    features = rng.normal(size=(40, 3))
    params = {"prior_std": 0.3, "user_prior_std": 0.3, **params}
    agent = SlateThompsonAgent(
        SlateThompsonAgent.Params(**params), SimpleNamespace(seed=seed, num_users=num_users)
    )
    agent.act(make_obs(num_users, features, 4))  # records the (zero) profiles
    agent.retrain(group_log(features, num_users, 40, seed))
    return agent, features


# ----------------------------------------------------------------------------- contract


@pytest.mark.parametrize("policy", POLICIES)
def test_check_agent_passes(policy):
    """Every policy keeps the agent contract (shapes, candidates, determinism, state)."""
    check_agent({"model": "slate-ts", "policy": policy})


def test_in_slate_never_repeats_an_item(runs):
    """In-slate TS never shows an item twice in a slate, over 4 seeds x 40 steps."""
    num_slates = 0
    for run in runs["in-slate"]:
        for obs, slates in run["calls"]:
            s = np.sort(slates.item_ids, axis=1)
            assert not (s[:, 1:] == s[:, :-1]).any(), f"repeat at step {obs.step}"
            num_slates += s.shape[0]
    assert num_slates > 4 * STEPS * 250


def test_in_slate_uses_every_candidate_when_k_equals_c():
    """With as many slots as candidates, every draw's leftovers fill the slate exactly once."""
    agent, features = trained_agent(0)
    obs = make_obs(40, features[:4], 4, step=7)
    slates = agent.act(obs).item_ids
    np.testing.assert_array_equal(np.sort(slates, axis=1), np.tile(np.arange(4), (40, 1)))
    assert len({tuple(r) for r in slates}) > 1, "orders should differ between users"


@pytest.mark.parametrize("policy", POLICIES)
def test_a_users_slate_does_not_depend_on_who_else_is_served(policy):
    """Draws are keyed by (user, step): serving a subset gives those users the same slates."""
    agent, features = trained_agent(2, policy=policy)
    everyone = agent.act(make_obs(40, features, 5, step=11)).item_ids
    subset = np.array([3, 17, 25, 38])
    alone = agent.act(make_obs(subset, features, 5, step=11)).item_ids
    np.testing.assert_array_equal(alone, everyone[subset])


# ----------------------------------------------------------------------------- behaviour


def distinct_per_position(calls: list) -> np.ndarray:
    """``(K,)`` distinct item ids shown at each slot, over users and model-served steps."""
    served = [s.item_ids for obs, s in calls if obs.step >= FIRST_MODEL_STEP]
    items = np.concatenate(served)
    return np.array([np.unique(items[:, k]).size for k in range(items.shape[1])])


def test_in_slate_shows_more_distinct_items_per_position_than_greedy(runs):
    """At every slate position and seed, in-slate TS shows more distinct items than greedy."""
    for g, s in zip(runs["greedy"], runs["in-slate"], strict=True):
        greedy, inslate = distinct_per_position(g["calls"]), distinct_per_position(s["calls"])
        print("distinct items per position: greedy", greedy, "in-slate", inslate)
        assert (inslate > greedy).all()
        assert inslate.sum() >= 1.15 * greedy.sum()
        assert inslate[0] >= 1.3 * greedy[0], "the top slot is where greedy is narrowest"


def mean_and_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean, standard error and 95% half-width (t quantile) of per-seed values."""
    t95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57}[values.size]
    se = float(values.std(ddof=1) / np.sqrt(values.size))
    return float(values.mean()), se, t95 * se


def test_in_slate_ctr_is_at_least_greedy_within_seed_noise(runs):
    """In-slate TS's mean CTR over seeds is at least greedy's minus twice the combined SE."""
    stats = {}
    for policy in ("greedy", "in-slate"):
        ctr = np.array([r["ctr"][FIRST_MODEL_STEP:].mean() for r in runs[policy]])
        stats[policy] = mean_and_interval(ctr)
        mean, _, half = stats[policy]
        print(f"{policy}: CTR {mean:.4f} +- {half:.4f} (95%), per seed {np.round(ctr, 4)}")
    tolerance = 2 * np.hypot(stats["greedy"][1], stats["in-slate"][1])
    print(f"tolerance (2 x combined SE): {tolerance:.4f}")
    assert stats["in-slate"][0] >= stats["greedy"][0] - tolerance
    for policy, (mean, _, _) in stats.items():
        assert mean > 0.7, f"{policy} should beat random slates (CTR about 0.43) by far"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_posterior_means_rank_items_of_the_users_group_first(seed):
    """After a log where users click items of their group, those items rank higher."""
    agent, features = trained_agent(seed)
    obs = make_obs(40, features[:30], 4, step=9)
    mean, _ = agent.score_moments(obs)
    own = (np.arange(30)[None, :] % 2) == (np.arange(40)[:, None] % 2)
    gap = np.where(own, mean, 0).sum(1) / 15 - np.where(~own, mean, 0).sum(1) / 15
    assert (gap > 0).all(), "every user scores own-group items higher on average"
    top = np.argsort(-mean, axis=1)[:, :4]
    assert np.take_along_axis(own, top, axis=1).mean() >= 0.95
    greedy = SlateThompsonAgent(agent.params.model_copy(update={"policy": "greedy"}), agent.ctx)
    greedy.load_state_dict(agent.state_dict())
    slates = greedy.act(obs).item_ids
    assert ((slates % 2) == (np.arange(40) % 2)[:, None]).mean() >= 0.95


def test_laplace_posterior_shrinks_with_data():
    """Shown items have a smaller posterior std than never-shown items, which keep the prior."""
    agent, features = trained_agent(0)
    _, _, _, v_std, _ = agent.posterior(make_obs(40, features, 4))
    p = agent.params
    np.testing.assert_allclose(v_std[30:, :-1], p.prior_std, rtol=1e-6)
    np.testing.assert_allclose(v_std[30:, -1], p.bias_prior_std, rtol=1e-6)
    assert (v_std[:30, -1] < 0.9 * p.bias_prior_std).all()
    assert (v_std[:30, :-1] < p.prior_std).all()


def test_draws_match_posterior_moments():
    """Over many keyed draws, sampled scores have the mean and std of ``score_moments``."""
    agent, features = trained_agent(1, exploration=1.0)
    draws = np.stack([agent.sample_scores(make_obs(40, features, 4, step=t)) for t in range(2000)])
    mean, sd = agent.score_moments(make_obs(40, features, 4))
    se = sd / np.sqrt(draws.shape[0])
    assert (np.abs(draws.mean(0) - mean) < 5 * se).mean() > 0.99
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.15)
