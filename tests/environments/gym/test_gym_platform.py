"""``simlab/Platform-v0`` on tiny worlds: argument checks, spaces, reward, episode ends, render."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from simlab.bundled import scenario_path
from simlab.environments.gym import PlatformEnv
from simlab.scenario import read_scenario_data

TINY = {
    "users.num_users": 4,
    "users.churn_threshold": 0.0,
    "content.initial_items": 60,
    "platform.max_candidates": 8,
}
SPARSE = {**TINY, "users.num_users": 6, "users.return_prob": 0.3}
"""Six users who each visit a step with probability 0.3: some steps serve nobody."""
CHURN = {**TINY, "users.num_users": 6, "users.churn_threshold": 0.25, "users.churn_patience": 3}
"""Six users who churn one by one (seed 1: the last one at step 15)."""
HOM, GINI = "echo/homogenization", "exposure/gini"


def _rollout(env, seed: int, steps: int, action_seed: int = 0) -> list:
    """``(obs, reward, terminated, truncated, info)`` of ``steps`` steps of sampled actions."""
    env.action_space.seed(action_seed)
    env.reset(seed=seed)
    return [env.step(env.action_space.sample()) for _ in range(steps)]


# -- arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["rgb_array", "", "ANSI", "Human", "text", "ansi "])
def test_an_unknown_render_mode_is_refused(bad):
    """Any render mode but ansi, human or None is a ValueError naming the allowed ones."""
    with pytest.raises(
        ValueError, match=re.escape(f"in ['ansi', 'human'] or None, actual: {bad!r}")
    ):
        PlatformEnv(overrides=TINY, render_mode=bad)


@pytest.mark.parametrize("mode", [None, "ansi", "human"])
def test_known_render_modes_are_kept(mode):
    """The allowed render modes build the env and are stored as given."""
    assert PlatformEnv(overrides=TINY, render_mode=mode).render_mode == mode


@pytest.mark.parametrize("mode", ["ansi", "human"])
def test_a_render_mode_made_at_run_time_renders_as_its_literal(mode, capsys):
    """A mode string built at run time (not the interned literal) renders the same way."""
    made = "".join(list(mode))
    env = PlatformEnv(overrides=TINY, render_mode=made)
    env.reset(seed=0)
    env.step(np.zeros(20, np.int64))
    text = env.render()
    printed = capsys.readouterr().out
    if mode == "human":
        assert text is None and "simlab/Platform-v0" in printed
    else:
        assert "simlab/Platform-v0" in text and printed == ""


@pytest.mark.parametrize("name", ["homogenization_weight", "gini_weight"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_penalty_weights_must_be_finite(name, bad):
    """A NaN or infinite penalty weight is refused, naming the weight and the value."""
    with pytest.raises(ValueError, match=rf"Expects `{name}` to be a finite float, actual value: "):
        PlatformEnv(overrides=TINY, **{name: bad})


@pytest.mark.parametrize(("hom", "gini"), [(0.0, 0.0), (-1.5, 0.0), (0.0, 1e6), (2.0, -0.25)])
def test_finite_penalty_weights_are_kept_by_metric(hom, gini):
    """Finite weights (negative ones too) are kept under the metric each one weighs."""
    env = PlatformEnv(overrides=TINY, homogenization_weight=hom, gini_weight=gini)
    assert env.weights == {HOM: hom, GINI: gini}


@pytest.mark.parametrize("bad", [0, -1, -10, 0.5])
def test_max_steps_must_be_positive(bad):
    """A step budget under one step is refused, naming the value."""
    with pytest.raises(ValueError, match=rf"`max_steps` to be a positive int, actual value: {bad}"):
        PlatformEnv(overrides=TINY, max_steps=bad)


@pytest.mark.parametrize("good", [1, 2, 7, 3.0, np.int64(4)])
def test_max_steps_is_the_given_budget(good):
    """A positive budget is kept as an int; without one the scenario's ``steps`` is used."""
    env = PlatformEnv(overrides=TINY, max_steps=good)
    assert env.max_steps == int(good) and type(env.max_steps) is int
    default = PlatformEnv(overrides={**TINY, "steps": 13})
    assert default.max_steps == 13 == default.scenario.steps


@pytest.mark.parametrize(
    ("weights", "missing"),
    [
        ({"gini_weight": 1.0}, [GINI]),
        ({"homogenization_weight": 0.5}, [HOM]),
        ({"gini_weight": -2.0, "homogenization_weight": 1e-9}, [HOM, GINI]),
    ],
)
def test_a_penalty_needs_its_metric_in_the_scenario(weights, missing):
    """A non-zero weight on a metric group the scenario does not measure is a clear error."""
    with pytest.raises(ValueError, match=re.escape(f"needs the metric columns {missing} in")):
        PlatformEnv(overrides={**TINY, "metrics": ["engagement"]}, **weights)
    # a zero weight needs nothing, and the full metric list satisfies any weight
    PlatformEnv(overrides={**TINY, "metrics": ["engagement"]}, gini_weight=0.0)
    PlatformEnv(overrides=TINY, **weights)


def test_the_default_population_is_32_users_unless_chosen():
    """The default scenario serves 32 users; overrides or an explicit scenario choose another."""
    assert PlatformEnv().sessions.num_users == 32
    assert PlatformEnv(overrides={"users.num_users": 5}).sessions.num_users == 5
    written = read_scenario_data(scenario_path("quickstart"))["users"]["num_users"]
    assert written != 32 and PlatformEnv(scenario="quickstart").sessions.num_users == written


# -- spaces and observations -----------------------------------------------------------------


@pytest.mark.parametrize(("users", "cands", "k"), [(4, 8, 5), (6, 10, 3), (1, 6, 2)])
def test_spaces_cover_every_user(users, cands, k):
    """Per-user observation boxes, a [0, 1] ``active`` box and a flat ``U * K`` action."""
    over = {**TINY, "users.num_users": users, "platform.max_candidates": cands}
    env = PlatformEnv(overrides={**over, "platform.slate_size": k})
    space = env.observation_space
    obs, _ = env.reset(seed=0)
    assert set(space) == {"user", "history", "candidates", "active"}
    for key, box in space.items():
        assert box.shape == obs[key].shape and box.dtype == np.float32 == obs[key].dtype
        lo, hi = (0.0, 1.0) if key == "active" else (-np.inf, np.inf)
        assert (box.low == lo).all() and (box.high == hi).all(), key
    assert space["active"].shape == (users,) and space["candidates"].shape[:2] == (users, cands)
    assert env.action_space.nvec.tolist() == [cands] * (users * k)


def test_active_marks_the_users_who_visit():
    """``active`` is 1 exactly for the users served by the next action, else 0."""
    env = PlatformEnv(overrides=SPARSE)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    seen = set()
    for _ in range(12):
        assert obs in env.observation_space
        want = env.sessions.served
        assert np.array_equal(obs["active"], want.astype(np.float32))
        seen.update(obs["active"].tolist())
        obs, _, _, _, info = env.step(env.action_space.sample())
        assert np.array_equal(info["served"], want)
    assert seen == {0.0, 1.0}


@pytest.mark.parametrize("shape", [(21,), (19,), (20, 1), (1, 20), (5, 4), (4, 5, 1), (2, 10)])
def test_only_flat_or_per_user_actions_are_taken(shape):
    """An action of ``U * K`` or ``(U, K)`` entries is taken; any other shape is refused by name.

    (Four users, slates of five: a flat action of 21 entries, or 20 in another layout, is
    neither reshaped nor served.)
    """
    env = PlatformEnv(overrides=TINY)
    env.reset(seed=0)
    both = (
        f"shape (20,) (the flat action space: 4 users x 5 slots) or (4, 5), actual shape: {shape}"
    )
    with pytest.raises(ValueError, match=re.escape(both)):
        env.step(np.zeros(shape, np.int64))
    with pytest.raises(ValueError, match=re.escape("candidate indices in [0, 8)")):
        env.step(np.full(20, 8))
    env.step(np.zeros(20, np.int64))
    env.step(np.zeros((4, 5), np.int64))


def test_stepping_before_reset_serves_the_seed_0_world():
    """The world built at construction is seed 0's, the one ``reset(seed=0)`` builds."""
    fresh, reset = PlatformEnv(overrides=TINY), PlatformEnv(overrides=TINY)
    reset.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(3):
        act = rng.integers(0, 8, size=(4, 5))
        a, b = fresh.step(act), reset.step(act)
        assert a[1] == b[1] and np.array_equal(a[4]["slate_items"], b[4]["slate_items"])


def test_unseeded_reset_continues_the_seed_stream():
    """``reset()`` after ``reset(seed=s)`` builds a new world, the same one each time."""
    env = PlatformEnv(overrides=TINY)
    first = env.reset(seed=2)[0]
    second = env.reset()[0]
    assert not np.array_equal(first["user"], second["user"])
    env.reset(seed=2)
    assert np.array_equal(env.reset()[0]["user"], second["user"])


# -- reward ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reward", ["click", "engagement"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reward_is_the_mean_over_visiting_users(reward, seed):
    """Clicks (CTR) or engagement averaged over the served users only; 0.0 if nobody visits."""
    steps = _rollout(PlatformEnv(overrides=SPARSE, reward=reward), seed, 16, seed)
    empty = 0
    for _, r, _, _, info in steps:
        per_user = info["clicked"].astype(float) if reward == "click" else info["engagement"]
        values = [float(np.sum(per_user[u])) for u in range(6) if info["served"][u]]
        if not values:
            empty += 1
            assert r == 0.0
        else:
            assert r == pytest.approx(sum(values) / len(values), rel=1e-6)
    assert 0 < empty < len(steps)


@pytest.mark.parametrize(("hom", "gini"), [(2.0, 0.5), (-1.0, 0.25), (0.0, 3.0), (1.5, 0.0)])
def test_penalties_subtract_the_weighted_defined_metrics(hom, gini):
    """Each weight times its metric is subtracted; an undefined (NaN) metric subtracts nothing."""
    plain = _rollout(PlatformEnv(overrides=SPARSE), 0, 16)
    pen = _rollout(
        PlatformEnv(overrides=SPARSE, homogenization_weight=hom, gini_weight=gini), 0, 16
    )
    undefined = 0
    for (_, r0, *_), (_, r1, _, _, info) in zip(plain, pen, strict=True):
        want = r0
        for col, w in ((HOM, hom), (GINI, gini)):
            if info["metrics_defined"][col]:
                want -= w * info["metrics"][col]
            else:
                undefined += 1
        assert math.isfinite(r1) and r1 == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert undefined  # some steps serve nobody: the exposure Gini is undefined there


# -- episode ends ----------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [1, 2, 3])
def test_truncated_from_the_budget_on_and_counted_from_reset(budget):
    """Every step at or after ``max_steps`` is truncated; a reset starts the count again."""
    env = PlatformEnv(overrides=TINY, max_steps=budget)
    for _ in range(2):
        ends = [step[2:4] for step in _rollout(env, 0, budget + 2)]
        assert ends == [(False, False)] * (budget - 1) + [(False, True)] * 3


def test_terminated_only_when_every_user_has_churned():
    """Some users churning ends nothing; the last one's churn terminates, not truncates."""
    env = PlatformEnv(overrides=CHURN, max_steps=1)
    env.action_space.seed(1)
    env.reset(seed=1)
    partial = False
    for _ in range(60):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        churned = env.sessions.churned
        assert term == churned.all() and trunc == (not term)
        partial |= bool(churned.any() and not churned.all())
        if term:
            break
    assert term and partial


# -- render ----------------------------------------------------------------------------------


@pytest.mark.parametrize("users", [1, 2, 4, 6])
def test_render_shows_the_first_four_users(users):
    """The text view lists users ``0 .. min(4, U) - 1``, each with their served slate."""
    env = PlatformEnv(overrides={**TINY, "users.num_users": users}, render_mode="ansi")
    env.action_space.seed(0)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    text = env.render()
    assert text.startswith("simlab/Platform-v0 · step 1")
    shown = [int(i) for i in re.findall(r"session (\d+) \(", text)]
    assert shown == list(range(min(4, users)))
    assert text.count("slot  cand") == min(4, users) and "no slate served" not in text


def test_reset_forgets_the_last_slates():
    """After a reset the view says no slate was served yet, for every shown user."""
    env = PlatformEnv(overrides=TINY, render_mode="ansi")
    env.action_space.seed(0)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.reset(seed=0)
    assert env.render().count("no slate served yet") == 4


def test_render_without_a_mode_warns_and_returns_none():
    """``render()`` with no render mode warns how to choose one and returns None."""
    env = PlatformEnv(overrides=TINY)
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode='ansi'"):
        assert env.render() is None
