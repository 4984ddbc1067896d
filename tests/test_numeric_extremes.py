"""Settings at the edge of their accepted range run without a warning; one past it is refused.

Accepted values used to print numpy warnings mid-run or stop with an error from deep inside:
logit users' weights of 1e6 (``overflow encountered in exp``) or 1e300 and a temperature of
1e-300 (``overflow encountered in cast``, infinite logits), Chaney's ``sigma`` and
``known_utility`` of 1e-300 (a division by a variance of 0; a ``ValueError`` from the Beta'
draw), an Adam learning rate of 1e300 (torch's "value cannot be converted to type float
without overflow") and initial scales of 1e300 (float32 tables overflowed). Each bounded
setting is run at its bound with every warning turned into an error, and one past the bound
is refused by name. (A LinUCB ``reg`` too small for float64, whose numpy ``LinAlgError`` is
now a message naming it, is tested in tests/agents/test_bandit_models.py.)
"""

from __future__ import annotations

import copy
import warnings

import annotated_types as at
import pytest
from conftest import SMALL, SMALL_MODELS
from test_malformed_scenarios import NUMBER_FIELDS, _put

from environments.chaney import _BETA_PRIME_MIN
from simlab.errors import ScenarioError
from simlab.params import INIT_SCALE_MAX, LEARNING_RATE_MAX, LOGIT_SCALE_MAX, TEMPERATURE_MIN
from simlab.scenario import parse_scenario
from simlab.world import World

UPPER = {LOGIT_SCALE_MAX, LEARNING_RATE_MAX, INIT_SCALE_MAX}
LOWER = {TEMPERATURE_MIN, _BETA_PRIME_MIN, -LOGIT_SCALE_MAX}


def _edges(info) -> list[tuple[float, float, str]]:
    """``(bound, one past it, pydantic's word)`` of each of the field's bounds above."""
    out = []
    for m in info.metadata:
        if isinstance(m, at.Le) and m.le in UPPER:
            out.append((m.le, m.le * 1.5 if m.le > 0 else m.le / 1.5, "less than or equal"))
        if isinstance(m, at.Ge) and m.ge in LOWER:
            out.append((m.ge, m.ge / 1.5 if m.ge > 0 else m.ge * 1.5, "greater than or equal"))
    return out


EDGED = [
    (owner, path, info)
    for owner, path, info in NUMBER_FIELDS
    if info.annotation is float and _edges(info)
]
CHANEY = {"users": {"model": "chaney", "num_users": 30}, "content": {"model": "chaney-items"}}


def _scenario(owner: str, path: list, value: float) -> tuple[str, dict]:
    data = copy.deepcopy(SMALL)
    data.update(steps=4)
    data["users"]["num_users"] = 60
    data["content"]["initial_items"] = 60
    data["platform"]["retrain_every"] = 1
    data["agents"] = [{"model": "random"}]
    if owner == "users:chaney":
        data.update(copy.deepcopy(CHANEY))
    where = _put(data, owner, path, value)
    if owner.startswith("agents:"):
        data["agents"][0].update(copy.deepcopy(SMALL_MODELS.get(owner.split(":")[1], {})))
        _put(data, owner, path, value)  # the small settings may hold the section again
        data["agents"][0]["model"] = owner.split(":")[1]
    return where, data


def test_the_bounded_settings_are_found():
    """A guard against an empty parametrize: the settings that broke are among them."""
    names = {f"{o}.{'.'.join(map(str, p))}" for o, p, _ in EDGED}
    expected = {
        "users:logit.users.interest_weight",
        "users:logit.users.temperature",
        "users:logit.users.no_click_utility",
        "users:logit.users.engagement_noise",
        "users:chaney.users.sigma",
        "users:chaney.users.known_utility",
        "agents:mf.agents.0.lr",
        "agents:two-tower.agents.0.init_scale",
        "agents:generative.agents.0.training.lr",
        "agents:implicit-mf.agents.0.init_scale",
    }
    assert expected <= names
    assert len(EDGED) >= 20


@pytest.mark.parametrize(
    ("owner", "path", "info"), EDGED, ids=[f"{o}.{'.'.join(map(str, p))}" for o, p, _ in EDGED]
)
def test_the_bound_runs_without_a_warning_and_one_past_it_is_refused(owner, path, info):
    """Four steps at each bound with warnings as errors; past it, an error names the field."""
    for bound, past, word in _edges(info):
        where, data = _scenario(owner, path, bound)
        sc = parse_scenario(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            world = World(sc, 0, 0)
            try:
                for t in range(sc.steps):
                    world.step(t)
            except ScenarioError as e:  # a learning rate of 10 may diverge: said so by name
                assert path[-1] == "lr" and "training diverged" in str(e), e
        where, data = _scenario(owner, path, past)
        with pytest.raises(ScenarioError, match=rf"{where.split('[')[0]}.*{word} to"):
            parse_scenario(data)


@pytest.mark.parametrize("value", [1e300, 1e39, 11.0])
@pytest.mark.parametrize("model", ["mf", "gru4rec", "two-tower", "slate-ts"])
def test_a_learning_rate_past_float32_is_refused_before_the_run(model, value):
    """1e300 stopped torch's Adam mid-run with an overflow error, not a message."""
    data = copy.deepcopy(SMALL)
    data["agents"] = [{"model": model, "lr": value}]
    with pytest.raises(ScenarioError, match=r"agents\[0\]\.lr.*less than or equal to 10"):
        parse_scenario(data)
