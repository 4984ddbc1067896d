"""Tests of simlab.registry: built-ins, did-you-mean, 'module:Class' imports, register()."""

from __future__ import annotations

import re

import pytest

from simlab import registry
from simlab.agents import Agent, PopularityAgent, RandomAgent
from simlab.errors import RegistryError
from simlab.metrics import HomogenizationMetric


class CustomAgent(Agent):
    """A do-nothing agent used to test registration."""


@pytest.fixture
def clean_registry(monkeypatch):
    """Let a test register names without leaking them into other tests."""
    for kind in registry.KINDS:
        monkeypatch.setitem(registry._REGISTRY, kind, dict(registry._REGISTRY[kind]))


@pytest.mark.parametrize("kind", registry.KINDS)
def test_every_builtin_resolves_to_a_class(kind):
    """Every built-in name of every kind resolves to a class with a matching entry point."""
    names = registry.names(kind)
    assert names, f"no built-in {kind}"
    assert names == sorted(names)
    for name in names:
        cls = registry.resolve(kind, name)
        assert isinstance(cls, type)
        assert registry.resolve(kind, name) is cls
        assert registry.entry_point(kind, name) == f"{cls.__module__}:{cls.__qualname__}"


def test_builtin_names_resolve_to_the_expected_classes():
    """A few built-in names map to the classes the docs promise."""
    assert registry.resolve("agents", "random") is RandomAgent
    assert registry.resolve("agents", "popularity") is PopularityAgent
    assert registry.resolve("metrics", "homogenization") is HomogenizationMetric
    assert registry.entry_point("agents", "random") == "simlab.agents.baselines:RandomAgent"


def test_unknown_name_suggests_closest_and_lists_allowed():
    """A typo gets a did-you-mean suggestion and the list of allowed names."""
    with pytest.raises(RegistryError) as info:
        registry.resolve("agents", "popularty")
    message = str(info.value)
    assert "unknown agents model 'popularty'" in message
    assert "Did you mean 'popularity'?" in message
    allowed = ", ".join(registry.names("agents"))
    assert f"Allowed: {allowed}" in message


def test_unknown_name_without_close_match_has_no_suggestion():
    """A name far from every entry lists the allowed names but suggests nothing."""
    with pytest.raises(RegistryError, match=re.escape("Allowed: ")) as info:
        registry.resolve("metrics", "zzzzzz")
    assert "Did you mean" not in str(info.value)


def test_registry_error_is_a_key_error():
    """RegistryError is also a KeyError (callers may catch either)."""
    with pytest.raises(KeyError):
        registry.resolve("users", "nope")


def test_module_class_path_imports_a_class():
    """A 'module:Class' name imports that class without registering it."""
    assert registry.resolve("agents", "simlab.agents.baselines:RandomAgent") is RandomAgent
    cls = registry.resolve("agents", f"{__name__}:CustomAgent")
    assert cls is CustomAgent
    assert f"{__name__}:CustomAgent" not in registry.names("agents")


def test_module_class_path_with_nested_attribute():
    """A dotted attribute after the colon reaches a nested class."""
    cls = registry.resolve("agents", "simlab.agents.baselines:PopularityAgent.Params")
    assert cls is PopularityAgent.Params


def test_bad_module_path_raises_registry_error():
    """A module that cannot be imported gives a RegistryError naming the module."""
    with pytest.raises(RegistryError, match=re.escape("cannot import module 'no_such_mod_xyz'")):
        registry.resolve("agents", "no_such_mod_xyz:Agent")


def test_missing_attribute_raises_registry_error():
    """A missing class in an importable module gives a RegistryError naming the attribute."""
    message = "module 'simlab.agents.baselines' has no attribute 'NoSuchAgent'"
    with pytest.raises(RegistryError, match=re.escape(message)):
        registry.resolve("agents", "simlab.agents.baselines:NoSuchAgent")


def test_non_class_attribute_raises_registry_error():
    """An attribute that is not a class (a function) gives a RegistryError saying so."""
    with pytest.raises(RegistryError, match=re.escape("'simlab.rng:uniform' is not a class")):
        registry.resolve("agents", "simlab.rng:uniform")


def test_register_a_class(clean_registry):
    """``register`` with a class makes it resolvable and listed by name."""
    registry.register("agents", "custom-test", CustomAgent)
    assert registry.resolve("agents", "custom-test") is CustomAgent
    assert "custom-test" in registry.names("agents")


def test_register_a_module_class_string(clean_registry):
    """``register`` with a 'module:Class' string imports it lazily on first resolve."""
    registry.register("agents", "lazy-test", f"{__name__}:CustomAgent")
    assert registry.resolve("agents", "lazy-test") is CustomAgent


@pytest.mark.parametrize("name", ["", "a:b", 3])
def test_register_rejects_bad_names(clean_registry, name):
    """``register`` rejects empty names, names with ':' and non-strings."""
    with pytest.raises(ValueError, match=re.escape(f"actual value: {name!r}")):
        registry.register("agents", name, CustomAgent)


def test_register_rejects_entry_point_without_colon(clean_registry):
    """``register`` rejects an entry-point string that is not 'module:Class'."""
    with pytest.raises(ValueError, match=re.escape("actual value: 'tests.CustomAgent'")):
        registry.register("agents", "custom-test", "tests.CustomAgent")


@pytest.mark.parametrize(
    "call",
    [
        lambda: registry.resolve("agent", "random"),
        lambda: registry.names("agent"),
        lambda: registry.register("agent", "x", CustomAgent),
    ],
    ids=["resolve", "names", "register"],
)
def test_unknown_kind_raises_with_suggestion(call):
    """An unknown kind names the kind, suggests the closest and lists the allowed kinds."""
    message = "unknown registry kind 'agent'. Did you mean 'agents'? Allowed: " + ", ".join(
        registry.KINDS
    )
    with pytest.raises(RegistryError, match=re.escape(message)):
        call()


def test_resolve_rejects_non_string_name():
    """A non-string name raises RegistryError naming the value."""
    with pytest.raises(RegistryError, match=re.escape("actual value: 3")):
        registry.resolve("agents", 3)


_KINDS = ("users", "content", "agents", "rerankers")
_MISPLACED = [
    (kind, other, name)
    for kind in _KINDS
    for other in _KINDS
    if other != kind
    for name in registry.names(other)
    if name not in registry.names(kind)
]


@pytest.mark.parametrize(("kind", "other", "name"), _MISPLACED)
def test_a_name_of_another_kind_says_what_it_is(kind, other, name):
    """A re-ranker given as an agent (and every such mix-up) says where the name belongs."""
    from simlab.registry import _NOUNS

    with pytest.raises(RegistryError) as info:
        registry.resolve(kind, name)
    message = str(info.value)
    assert f"unknown {kind} model '{name}' ('{name}' is {_NOUNS[other]})" in message, message
    assert f"Allowed: {', '.join(registry.names(kind))}" in message
