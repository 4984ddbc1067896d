"""The vector SlateRec's episode boundaries: a session changes user or world only after an end.

Gymnasium's next-step autoreset: when a session's episode ends at step ``t`` (terminated or
truncated), step ``t + 1`` ignores its action and starts its next episode. So a learner may
chain step ``t``'s observation to step ``t + 1``'s whenever step ``t`` ended nothing. These
tests drive sessions to churn at different times (the worst slates for some, the best for
others), run out of users and roll over into new worlds, and check over every step that no
session's observation moves to another user or another world without an end at the step
before. A session restarting on the very step its world was spent once ran on into the next
world with no boundary; it is now truncated at that step (an episode of one observation).
"""

from __future__ import annotations

import numpy as np
import pytest

from simlab.environments.gym import SlateRecVectorEnv

CHURNY = {"users.churn_threshold": 0.9, "users.churn_patience": 2}


def _policy(obs: dict, worst: np.ndarray, k: int) -> np.ndarray:
    """Each session's best ``k`` candidates by ``<user, item>``, or its worst ones."""
    score = np.einsum("ncd,nd->nc", obs["candidates"], obs["user"])
    score[worst] *= -1
    return np.argsort(-score, axis=1, kind="stable")[:, :k]


def _drive(num_envs, per, max_steps, seed, worst, overrides) -> tuple[int, int]:
    """Run ``6 max_steps`` steps checking the boundaries; ``(rollovers, restarts on them)``."""
    envs = SlateRecVectorEnv(
        num_envs=num_envs, users_per_session=per, max_steps=max_steps, overrides=overrides
    )
    bad = np.zeros(num_envs, bool)
    bad[list(worst)] = True
    k = envs.single_action_space.shape[0]
    obs, _ = envs.reset(seed=seed)
    ended = np.zeros(num_envs, bool)
    world, users = envs.sessions, envs.sessions.user_ids.copy()
    rollovers = coincident = 0
    for _ in range(6 * max_steps):
        restarting = ended.copy()
        obs, _, term, trunc, _ = envs.step(_policy(obs, bad, k))
        moved = envs.sessions.user_ids != users
        if envs.sessions is not world:  # a new world: every session starts anew
            assert ended.all(), f"sessions {np.flatnonzero(~ended)} entered a new world unended"
            rollovers += 1
        else:
            assert not (moved & ~ended).any(), "a session changed user without an end"
        ended = term | trunc
        if envs._rollover and (restarting & ~ended).any():
            raise AssertionError("a restarting session was left open on a spent world's step")
        coincident += int(envs._rollover and restarting.any())
        assert obs in envs.observation_space
        world, users = envs.sessions, envs.sessions.user_ids.copy()
    return rollovers, coincident


# (num_envs, users_per_session, max_steps, seed, sessions served their worst slates)
DEFAULT_WORLD = [(2, 2, m, 0, (0,)) for m in (30, 32, 37)] + [
    (3, 2, 30, 0, (0,)),
    (3, 2, 31, 0, (0,)),
    (3, 2, 30, 0, (0, 1)),
    (2, 1, 20, 0, (0,)),
]
CHURNY_WORLD = [(2, 2, m, 0, (0,)) for m in (15, 25, 40)] + [
    (3, 2, 12, 1, (0, 2)),
    (3, 3, 9, 2, (1,)),
    (4, 1, 7, 3, (0, 3)),
    (2, 3, 18, 4, (0, 1)),
    (4, 2, 10, 5, ()),
]


@pytest.mark.parametrize("case", DEFAULT_WORLD + CHURNY_WORLD)
def test_no_session_changes_user_or_world_without_an_end(case):
    """Every user change follows an end; every world change follows an end of every session."""
    overrides = CHURNY if case in CHURNY_WORLD else None
    rollovers, _ = _drive(*case, overrides)
    assert rollovers >= 1  # the case reached a spent world


def test_the_cases_include_a_restart_on_a_spent_worlds_step():
    """At least one case restarts a session on the step its world is spent (the hard case)."""
    assert sum(_drive(*case, None)[1] for case in DEFAULT_WORLD) >= 1
