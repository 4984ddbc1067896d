"""The bandit agents' scenario keys: every documented default and the edge of every bound.

Classes: the defaults (results depend on them; they are the values of
``docs/scenario-reference.md``) and, per bound, that the edge value is accepted and one step
beyond it is refused with a message naming the field.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from simlab.agents.bandits import (
    DiagLinUCBAgent,
    EpsilonGreedyAgent,
    LinearThompsonAgent,
    LinUCBAgent,
    ThompsonSamplingAgent,
    UCB1Agent,
)

DEFAULTS = [
    (EpsilonGreedyAgent, {"epsilon": 0.1, "prior_clicks": 1.0, "prior_impressions": 2.0}),
    (UCB1Agent, {"c": 1.0}),
    (ThompsonSamplingAgent, {"prior_alpha": 1.0, "prior_beta": 1.0}),
    (LinUCBAgent, {"alpha": 1.0, "reg": 1.0}),
    (LinearThompsonAgent, {"scale": 0.5, "reg": 1.0}),
    (
        DiagLinUCBAgent,
        {
            "alpha": 1.0,
            "reg": 1.0,
            "num_clusters": 16,
            "clusters_per_user": 3,
            "temperature": 0.5,
            "kmeans_iters": 25,
        },
    ),
]


@pytest.mark.parametrize(("cls", "want"), DEFAULTS, ids=lambda x: getattr(x, "__name__", ""))
def test_defaults(cls, want):
    """Every key has its documented default (and no key is left out of this list)."""
    got = cls.Params().model_dump()
    assert got == want
    for value in got.values():
        assert type(value) is not bool


# (agent, field, accepted edge, refused value beyond it, other keys the value needs)
BOUNDS = [
    (EpsilonGreedyAgent, "epsilon", 0.0, -0.01, {}),
    (EpsilonGreedyAgent, "epsilon", 1.0, 1.01, {}),
    (EpsilonGreedyAgent, "prior_clicks", 0.0, -0.01, {}),
    (EpsilonGreedyAgent, "prior_impressions", 1e-9, 0.0, {}),
    (UCB1Agent, "c", 0.0, -0.01, {}),
    (UCB1Agent, "c", 100.0, 100.01, {}),
    (ThompsonSamplingAgent, "prior_alpha", 1e-9, 0.0, {}),
    (ThompsonSamplingAgent, "prior_alpha", 1e6, 1e6 + 1, {}),
    (ThompsonSamplingAgent, "prior_beta", 1e-9, 0.0, {}),
    (ThompsonSamplingAgent, "prior_beta", 1e6, 1e6 + 1, {}),
    (LinUCBAgent, "alpha", 0.0, -0.01, {}),
    (LinUCBAgent, "alpha", 100.0, 100.01, {}),
    (LinUCBAgent, "reg", 1e-9, 0.0, {}),
    (LinUCBAgent, "reg", 1e6, 1e6 + 1, {}),
    (LinearThompsonAgent, "scale", 0.0, -0.01, {}),
    (LinearThompsonAgent, "scale", 100.0, 100.01, {}),
    (LinearThompsonAgent, "reg", 1e-9, 0.0, {}),
    (LinearThompsonAgent, "reg", 1e6, 1e6 + 1, {}),
    (DiagLinUCBAgent, "alpha", 0.0, -0.01, {}),
    (DiagLinUCBAgent, "alpha", 100.0, 100.01, {}),
    (DiagLinUCBAgent, "reg", 1e-9, 0.0, {}),
    (DiagLinUCBAgent, "reg", 1e6, 1e6 + 1, {}),
    (DiagLinUCBAgent, "num_clusters", 4096, 4097, {}),
    (DiagLinUCBAgent, "num_clusters", 1, 0, {"clusters_per_user": 1}),
    (DiagLinUCBAgent, "clusters_per_user", 1, 0, {}),
    (DiagLinUCBAgent, "clusters_per_user", 64, 65, {"num_clusters": 100}),
    (DiagLinUCBAgent, "temperature", 1e-9, 0.0, {}),
    (DiagLinUCBAgent, "temperature", 1e6, 1e6 + 1, {}),
    (DiagLinUCBAgent, "kmeans_iters", 1, 0, {}),
    (DiagLinUCBAgent, "kmeans_iters", 1000, 1001, {}),
]


@pytest.mark.parametrize(
    ("cls", "field", "ok", "bad", "other"),
    BOUNDS,
    ids=[f"{c.__name__}.{f}={ok}" for c, f, ok, _, _ in BOUNDS],
)
def test_each_bound_accepts_its_edge_and_refuses_beyond(cls, field, ok, bad, other):
    """The edge value is accepted; one step beyond is refused by the field's own bound.

    (Not only by a check across fields: the error is located at the field.)
    """
    assert getattr(cls.Params(**other, **{field: ok}), field) == ok
    with pytest.raises(ValidationError, match=field) as err:
        cls.Params(**other, **{field: bad})
    assert [e["loc"] for e in err.value.errors()] == [(field,)]


def test_every_bounded_key_is_listed():
    """Each numeric key of every bandit appears in ``BOUNDS`` (a new key needs its edges)."""
    listed = {(c, f) for c, f, *_ in BOUNDS}
    for cls, want in DEFAULTS:
        for field in want:
            assert (cls, field) in listed, f"{cls.__name__}.{field}"
