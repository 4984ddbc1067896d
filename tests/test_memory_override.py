"""``SIMLAB_MEMORY_BYTES``: the machine's memory as the memory check sees it.

A well-formed value (a positive whole number of bytes, spaces around it allowed) replaces the
machine's figure both ways: a run that fits the machine is refused under a small override, one
that does not fit passes under a large one. A malformed value (``8G``, ``1e9``, ``-5``, ``0``,
a fraction, a non-ASCII digit) was silently ignored, so a user who meant to cap the memory got
the machine's figure; it is now an error naming the variable, the value and what is allowed.
"""

from __future__ import annotations

import copy

import pytest
from conftest import SMALL

from simlab.errors import ScenarioError
from simlab.memory import MEMORY_VARIABLE, estimate, machine_memory
from simlab.scenario import parse_scenario

GIB = 1024**3


def _parse(data=None):
    return parse_scenario(copy.deepcopy(data or SMALL))


@pytest.mark.parametrize(
    "value", ["8G", "8GiB", "1e9", "-5", "0", "000", "1.5", "0x10", "²", "٣", "12 34", "lots"]
)
def test_a_malformed_override_is_an_error_naming_it(monkeypatch, value):
    """Refused at validate time with the variable, the value and the form it takes."""
    monkeypatch.setenv(MEMORY_VARIABLE, value)
    with pytest.raises(ScenarioError) as info:
        _parse()
    text = str(info.value)
    assert f"{MEMORY_VARIABLE}: {value.strip()!r} is not a number of bytes" in text
    assert "positive whole number" in text and "unset it" in text


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_override_is_unset(monkeypatch, value):
    """Empty or blank: the machine's own memory, as if the variable were not set."""
    monkeypatch.delenv(MEMORY_VARIABLE, raising=False)
    machine = machine_memory()
    monkeypatch.setenv(MEMORY_VARIABLE, value)
    assert machine_memory() == machine
    _parse()


@pytest.mark.parametrize("value", ["123456789", " 123456789 ", "00123456789"])
def test_a_well_formed_override_is_the_machines_memory(monkeypatch, value):
    """Whole numbers of bytes, spaces and leading zeros allowed."""
    monkeypatch.setenv(MEMORY_VARIABLE, value)
    assert machine_memory() == 123456789


def test_a_small_override_refuses_a_run_that_fits_the_machine(monkeypatch):
    """Below the estimate: refused, naming the override's figure; at the estimate: accepted."""
    monkeypatch.delenv(MEMORY_VARIABLE, raising=False)
    scenario = _parse()  # fits this machine
    need = estimate(scenario).total
    monkeypatch.setenv(MEMORY_VARIABLE, str(need - 1))
    with pytest.raises(ScenarioError, match="but this machine has 0.0 GiB"):
        _parse()
    monkeypatch.setenv(MEMORY_VARIABLE, str(need))
    _parse()


def test_a_large_override_lets_a_run_the_machine_cannot_hold_pass(monkeypatch):
    """A world bigger than this machine passes the memory check under a larger override."""
    data = copy.deepcopy(SMALL)
    data["users"]["num_users"] = 200_000_000
    monkeypatch.delenv(MEMORY_VARIABLE, raising=False)
    with pytest.raises(ScenarioError, match="users.num_users: the run needs about"):
        _parse(data)
    monkeypatch.setenv(MEMORY_VARIABLE, str(10**15))
    assert _parse(data).users.num_users == 200_000_000
