"""Keyed draws refuse ids, steps and ranges that would silently correlate or bend them.

``simlab.rng`` is the one way components draw randomness. Ids that are not integers were
truncated (ids 1.2 and 1.7 drew the same numbers) and a boolean mask passed as ids keyed
every draw by 0 or 1; a float step was truncated the same way; ``integers`` with a
non-positive ``high`` returned zeros or negative "draws". Each is now a ``TypeError`` or
``ValueError`` naming the argument, for every kind of draw, and the registry and
``check_agent`` name a wrong entry point or agent likewise.
"""

from __future__ import annotations

import numpy as np
import pytest

from simlab import registry
from simlab.rng import Stream, numpy_generator, torch_generator
from simlab.testing import check_agent

S = Stream(3, "tests/args")
PROBS = np.array([0.2, 0.3, 0.5])

DRAWS = {
    "bits": lambda ids, step: S.bits(ids, step),
    "uniform": lambda ids, step: S.uniform(ids, step, size=2),
    "normal": lambda ids, step: S.normal(ids, step),
    "gumbel": lambda ids, step: S.gumbel(ids, step),
    "integers": lambda ids, step: S.integers(ids, step, 7),
    "categorical": lambda ids, step: S.categorical(ids, step, PROBS),
    "log_gamma": lambda ids, step: S.log_gamma(ids, step, np.array([0.5, 2.0])),
    "dirichlet": lambda ids, step: S.dirichlet(ids, step, np.array([0.5, 2.0])),
    "beta": lambda ids, step: S.beta(ids, step, 2.0, 3.0),
}

BAD_IDS = {
    "floats": np.array([1.2, 1.7]),
    "float list": [0.0, 1.0],
    "bool mask": np.array([True, False, True]),
    "bool list": [True, False],
    "strings": np.array(["1", "2"]),
    "complex": np.array([1 + 0j]),
    "float 0-d": np.float64(3.0),
}


@pytest.mark.parametrize("draw", sorted(DRAWS))
@pytest.mark.parametrize("ids", sorted(BAD_IDS))
def test_ids_must_be_integers(draw, ids):
    """Floats, bools, strings, complex: refused by every kind of draw."""
    with pytest.raises(TypeError, match="Expects integer entity `ids`, actual dtype"):
        DRAWS[draw](BAD_IDS[ids], 0)


GOOD_IDS = {
    "int64": np.array([1, 2]),
    "int32": np.array([1, 2], np.int32),
    "uint32": np.array([1, 2], np.uint32),
    "list": [1, 2],
    "empty list": [],
    "empty float": np.zeros(0),
    "2-d": np.arange(4).reshape(2, 2),
}


@pytest.mark.parametrize("draw", sorted(DRAWS))
@pytest.mark.parametrize("ids", sorted(GOOD_IDS))
def test_integer_ids_of_any_width_draw_the_same(draw, ids):
    """Any integer dtype, and an empty list (numpy reads it as float64), is accepted.

    Equal ids draw equal numbers whatever their dtype.
    """
    given = GOOD_IDS[ids]
    got = DRAWS[draw](given, 4)
    want = DRAWS[draw](np.asarray(given, np.int64), 4)
    np.testing.assert_array_equal(got, want)


BAD_STEPS = [1.0, 2.5, np.float64(3.0), "3", None, True, np.bool_(False), [1]]


@pytest.mark.parametrize("draw", sorted(DRAWS))
@pytest.mark.parametrize("step", BAD_STEPS, ids=repr)
def test_steps_must_be_ints(draw, step):
    """Float, string, None, bool and list steps: refused by every kind of draw."""
    with pytest.raises(TypeError, match="Expects an int `step`, actual type"):
        DRAWS[draw](np.array([1, 2]), step)


@pytest.mark.parametrize("step", BAD_STEPS, ids=repr)
def test_generators_need_int_steps(step):
    """The numpy and torch generators keyed by step too."""
    with pytest.raises(TypeError, match="Expects an int `step`"):
        numpy_generator(0, "x", step)
    with pytest.raises(TypeError, match="Expects an int `step`"):
        torch_generator(0, "x", step)


@pytest.mark.parametrize("step", [0, -1, 5, np.int64(7), np.int32(-2), 2**40])
def test_int_steps_of_any_kind(step):
    """Ints of numpy key like Python ints; negative steps are steps (before the first)."""
    np.testing.assert_array_equal(S.uniform([1, 2], step), S.uniform([1, 2], int(step)))


@pytest.mark.parametrize(
    "high", [0, -1, -(2**40), np.nan, np.array([3, 0]), np.array([[5], [-2]]), 0.0]
)
def test_integers_need_a_positive_range(high):
    """Zero, negative or NaN ``high`` (anywhere in an array): refused."""
    with pytest.raises(ValueError, match=r"`high` > 0 .*actual minimum"):
        S.integers(np.array([1, 2]), 0, high)


def test_integers_without_ids_need_no_range():
    """No draw: any ``high`` (a metric's pairs of a one-user world ask for [0, 0))."""
    assert S.integers(np.zeros(0, np.int64), 0, 0).shape == (0,)


@pytest.mark.parametrize("high", [1, 2, 10**12, np.array([1, 5]), 2.5])
def test_integers_lie_in_range(high):
    """Valid ranges, scalar or per column, fractional included."""
    got = S.integers(np.arange(2000).reshape(1000, 2), 1, high)
    assert (got >= 0).all() and (got < np.asarray(high)).all()


@pytest.mark.parametrize("entry", [5, None, 1.5, ["a:B"], "nocolon", "", 3j], ids=repr)
def test_registry_entry_points(entry):
    """Only a class or 'module:Class' text; nothing is registered otherwise."""
    with pytest.raises(ValueError, match="Expects entry_point as 'module:Class' or a class"):
        registry.register("agents", "args-test", entry)
    assert "args-test" not in registry.names("agents")


@pytest.mark.parametrize("agent", [5, None, Stream, ["random"], {"name": "x"}, 2.0], ids=repr)
def test_check_agent_names_a_wrong_agent(agent):
    """Numbers, None, classes, lists and specs without a model: refused naming `agent`."""
    with pytest.raises(TypeError, match=r"Expects `agent` to be a model name.*actual value"):
        check_agent(agent)
