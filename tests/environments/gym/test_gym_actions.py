"""Invalid actions into every Gymnasium env: a ``ValueError`` saying what is wrong.

Never a deep ``IndexError``; actions of whole-number floats are the integer actions. NaN was
cast to the most negative int64 (an ``IndexError`` deep in the slate lookup), a fraction was
silently truncated, and a scalar, a string or ``None`` into ``SlateRecEnv`` failed indexing
before any check.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_gym_envs import TINY, same

from simlab.environments.gym import PlatformEnv, SlateRecEnv, SlateRecVectorEnv


def _env(kind: str):
    if kind == "platform":
        return PlatformEnv(overrides=TINY)
    if kind == "slate":
        return SlateRecEnv(overrides=TINY)
    return SlateRecVectorEnv(num_envs=2, overrides=TINY)


KINDS = ["platform", "slate", "vector"]


def _valid(env) -> np.ndarray:
    env.action_space.seed(3)
    return np.asarray(env.action_space.sample())


# name -> (make the bad action from a valid one, fragment of the error)
BAD = {
    "nan": (lambda a: np.full(a.shape, np.nan), "whole-number candidate indices"),
    "nan-one": (lambda a: np.where(np.arange(a.size).reshape(a.shape) == 0, np.nan, a),
                "actual value: nan"),
    "inf": (lambda a: np.full(a.shape, np.inf), "whole-number candidate indices"),
    "fraction": (lambda a: a + 0.5, "actual value: "),
    "negative": (lambda a: np.full(a.shape, -1), "candidate indices in [0, 8)"),
    "too-large": (lambda a: np.full(a.shape, 8), "candidate indices in [0, 8)"),
    "huge": (lambda a: np.full(a.shape, 10**15), "candidate indices in [0, 8)"),
    "huge-float": (lambda a: np.full(a.shape, 1e300), "candidate indices in [0, 8)"),
    "string": (lambda a: "0 1 2", "actual shape: ()"),
    "strings": (lambda a: a.astype(str), "integer candidate indices, actual dtype: <U"),
    "none": (lambda a: None, "actual shape: ()"),
    "objects": (lambda a: np.full(a.shape, None, dtype=object), "actual dtype: object"),
    "booleans": (lambda a: a > 1, "actual dtype: bool"),
    "complex": (lambda a: a + 0j, "actual dtype: complex"),
    "scalar": (lambda a: np.int64(0), "actual shape: ()"),
    "longer": (lambda a: np.concatenate([a.ravel(), a.ravel()]), "Expects an action of shape"),
    "empty": (lambda a: a.ravel()[:0], "Expects an action of shape"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BAD))
@pytest.mark.parametrize("kind", KINDS)
def test_an_invalid_action_is_refused_by_name(kind, name):
    """Every env refuses each kind of invalid action with a ValueError naming it."""
    env = _env(kind)
    env.reset(seed=0)
    make, fragment = BAD[name]
    with np.errstate(invalid="ignore"):
        bad = make(_valid(env))
    with pytest.raises(ValueError) as err:
        env.step(bad)
    assert fragment in str(err.value), str(err.value)
    env.step(_valid(env))  # the env goes on after a refused action
    env.close()


@pytest.mark.parametrize("kind", KINDS)
def test_whole_number_floats_are_the_integer_action(kind):
    """``[2.0, 0.0, ...]`` serves what ``[2, 0, ...]`` serves (some RL libraries pass floats)."""
    runs = []
    for cast in (np.int64, np.float64, np.float32, np.uint8):
        env = _env(kind)
        obs, _ = env.reset(seed=5)
        out = [obs]
        for _ in range(3):
            out.append(env.step(_valid(env).astype(cast)))
        runs.append(out)
        env.close()
    for other in runs[1:]:
        assert same(runs[0], other)
