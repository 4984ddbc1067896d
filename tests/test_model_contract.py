"""User and content models' outputs are checked where the world calls them.

A user model is an extension point like an agent. Unsorted, repeated or negative arrival
ids ran on silently (users served twice, rows out of order); ids out of range, a float or
list of ids, a response that was None, a click outside the slate or feedback of other
users failed deep inside (IndexError, AttributeError); other slates than shown and NaN
engagement went into the log and metrics as given; NaN observable features reached every
agent, and features of the wrong shape were reported as the observation's. Each is now a
``ModelContractError`` naming the model, the method and what was expected. Likewise a
content model's step: an
unsorted or repeated catalog was blamed on the agent ("item ids not in the live catalog"),
a catalog of other items than its latent table ran on with the wrong truth per item.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_small

from simlab import registry
from simlab.batch import Catalog, Feedback
from simlab.environments.content import CreatorEcosystem
from simlab.environments.users import LogitUserPopulation
from simlab.errors import ModelContractError
from simlab.world import World

ARRIVALS = {
    "reversed": (lambda r: r[::-1].copy(), "not increasing"),
    "repeated": (lambda r: np.concatenate([r, r[-1:]]), "not increasing"),
    "swapped": (lambda r: np.concatenate([r[1:2], r[:1], r[2:]]), "not increasing"),
    "negative": (lambda r: np.concatenate([[-1], r]), "returned id -1,"),
    "past the range": (lambda r: np.concatenate([r, [50]]), "returned id 50,"),
    "huge": (lambda r: np.concatenate([r, [10**12]]), f"returned id {10**12},"),
    "float": (lambda r: r.astype(np.float64), "dtype float64"),
    "bool": (lambda r: np.ones(50, bool), "dtype bool"),
    "2-D": (lambda r: r[:, None], "shape"),
    "list": (lambda r: r.tolist(), "returned a list"),
    "None": (lambda r: None, "returned a NoneType"),
}


def _fb(fb: Feedback, **change) -> Feedback:
    parts = {k: getattr(fb, k) for k in ("step", "user_ids", "slates", "clicked_pos", "engagement")}
    return Feedback(**{**parts, **{k: f(parts[k]) for k, f in change.items()}})


RESPONSES = {
    "None": (lambda fb: None, "respond returned a NoneType"),
    "a tuple": (lambda fb: (fb.clicked_pos, fb.engagement), "respond returned a tuple"),
    "click past the slate": (
        lambda fb: _fb(fb, clicked_pos=lambda c: np.full_like(c, 5)),
        "click position 5, expected -1 (no click) to 4",
    ),
    "click below -1": (
        lambda fb: _fb(fb, clicked_pos=lambda c: np.full_like(c, -2)),
        "click position -2",
    ),
    "other users": (lambda fb: _fb(fb, user_ids=lambda u: u + 1), "other users than asked"),
    "fewer users": (
        lambda fb: Feedback(
            fb.step, fb.user_ids[1:], fb.slates[1:], fb.clicked_pos[1:], fb.engagement[1:]
        ),
        "other users than asked",
    ),
    "reordered slates": (
        lambda fb: _fb(fb, slates=lambda s: s[:, ::-1].copy()),
        "other slates than it was shown",
    ),
    "NaN engagement": (
        lambda fb: _fb(fb, engagement=lambda e: np.full_like(e, np.nan)),
        "non-finite engagement",
    ),
    "infinite engagement": (
        lambda fb: _fb(fb, engagement=lambda e: np.full_like(e, np.inf)),
        "non-finite engagement",
    ),
}


def _users(method: str, change):
    class Broken(LogitUserPopulation):
        pass

    original = getattr(LogitUserPopulation, method)
    setattr(Broken, method, lambda self, *a: change(original(self, *a)))
    return Broken


def _run(cls) -> None:
    registry.register("users", "broken-users", cls)
    try:
        sc = make_small(("users", {"model": "broken-users", "num_users": 50}), steps=3)
        world = World(sc, 0, 0)
        for t in range(3):
            world.step(t)
    finally:
        registry._REGISTRY["users"].pop("broken-users")


FEATURES = {
    "a row short": (lambda f: f[1:], "returned an array of shape ("),
    "1-D": (lambda f: f[:, 0], "returned an array of shape ("),
    "integers": (lambda f: f.astype(np.int64), "dtype int64"),
    "None": (lambda f: None, "returned a NoneType"),
    "a list": (lambda f: f.tolist(), "returned a list"),
    "NaN": (lambda f: np.full_like(f, np.nan), "non-finite features"),
    "infinite": (lambda f: np.full_like(f, np.inf), "non-finite features"),
}
CASES = {"arrivals": ARRIVALS, "respond": RESPONSES, "observable_features": FEATURES}
USER_CASES = [(m, c) for m, cases in CASES.items() for c in sorted(cases)]


@pytest.mark.parametrize("method, case", USER_CASES, ids=[f"{m}: {c}" for m, c in USER_CASES])
def test_a_user_models_arrivals_and_responses_are_checked(method, case):
    """Named: the model, the method and what is wrong (with arrivals, the range expected)."""
    change, fragment = CASES[method][case]
    with pytest.raises(ModelContractError) as info:
        _run(_users(method, change))
    msg = str(info.value)
    assert msg.startswith(f"users model 'broken-users': {method} returned ")
    assert fragment in msg
    assert method != "arrivals" or "user ids in [0, 50), increasing" in msg


@pytest.mark.parametrize("method", sorted(CASES))
def test_a_model_that_keeps_its_contract_runs(method):
    """Passing the values through (a copy) changes nothing."""
    _run(_users(method, lambda r: r if not isinstance(r, np.ndarray) else r.copy()))


def _catalog(change):
    def build(cat: Catalog) -> Catalog:
        parts = {k: getattr(cat, k) for k in ("item_ids", "features", "creator", "age", "source")}
        return Catalog(**{**parts, **{k: f(parts[k]) for k, f in change.items()}})

    return build


CONTENT = {
    "unsorted catalog": (
        "catalog",
        _catalog({"item_ids": lambda i: i[::-1].copy()}),
        "catalog item ids not increasing",
    ),
    "repeated ids": (
        "catalog",
        _catalog({"item_ids": lambda i: np.sort(np.concatenate([i[:-1], i[:1]]))}),
        "catalog item ids not increasing",
    ),
    "other items than the table": (
        "catalog",
        _catalog({"item_ids": lambda i: i + 10**6}),
        "other items than its latent item table",
    ),
    "items from the future": ("catalog", _catalog({"age": lambda a: -a - 1}), "ages below 0"),
    "NaN features": (
        "catalog",
        _catalog({"features": lambda f: np.full_like(f, np.nan)}),
        "non-finite catalog features",
    ),
    "infinite features": (
        "catalog",
        _catalog({"features": lambda f: np.full_like(f, -np.inf)}),
        "non-finite catalog features",
    ),
    "no catalog": ("catalog", lambda c: None, "catalog returned a NoneType, expected a Catalog"),
    "an array": ("catalog", lambda c: c.item_ids, "catalog returned an array"),
    "no item table": ("latent", lambda t: None, "other items than its latent item table"),
    "sources other than 0/1": (
        "new_item_sources",
        lambda s: np.full(3, 7, np.int8),
        "new item sources other than 0 (human) and 1 (AIGC)",
    ),
}


@pytest.mark.parametrize("case", sorted(CONTENT))
@pytest.mark.parametrize("events", [False, True])
def test_a_content_models_step_is_checked_before_anything_reads_it(case, events):
    """Named: the content model and what is wrong; never blamed on the agent."""
    method, change, fragment = CONTENT[case]

    class Broken(CreatorEcosystem):
        pass

    original = getattr(CreatorEcosystem, method)
    setattr(Broken, method, lambda self, *a: change(original(self, *a)))
    registry.register("content", "broken-content", Broken)
    try:
        content = {"model": "broken-content", "items_per_step": 5, "initial_items": 60}
        extra = ["output.events=true"] if events else []
        sc = make_small(("content", content), *extra, steps=3)
        world = World(sc, 0, 0)
        with pytest.raises(ModelContractError) as info:
            for t in range(3):
                world.step(t)
    finally:
        registry._REGISTRY["content"].pop("broken-content")
    msg = str(info.value)
    assert msg.startswith("content model 'broken-content'") and fragment in msg
