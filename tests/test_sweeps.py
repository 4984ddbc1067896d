"""Sweeps and variants: the grid of points, what may be swept, and the values that name points."""

from __future__ import annotations

import itertools
import re

import pytest
from conftest import make_small

from simlab.errors import ScenarioError
from simlab.scenario import sweep_points


def test_sweep_points_cartesian_product():
    """The sweep grid is the cartesian product, and each point's scenario is changed."""
    grid = {
        "users.num_users": [100, 200],
        "agents[1].signal": ["clicks", "impressions", "engagement"],
    }
    sc = make_small(sweep=grid)
    points = sweep_points(sc)
    assert [p.index for p in points] == list(range(6))
    combos = [tuple(p.values[k] for k in grid) for p in points]
    assert combos == list(itertools.product(*grid.values()))
    for p in points:
        assert p.scenario.users.params.num_users == p.values["users.num_users"]
        assert p.scenario.agents[1].params.signal == p.values["agents[1].signal"]
        assert p.scenario.sweep == {}
        # everything not swept stays as in the base scenario
        assert p.scenario.platform == sc.platform
        assert p.scenario.steps == sc.steps


def test_sweep_over_top_level_and_seeds_of_points():
    """A top-level field can be swept; seeds carry over to every point."""
    points = sweep_points(make_small(sweep={"description": ["a", "b"]}, seeds=2))
    assert [p.scenario.description for p in points] == ["a", "b"]
    assert all(p.scenario.seeds == [0, 1] for p in points)


@pytest.mark.parametrize(
    "sweep",
    [
        {"platform.slate_size": [2, 3]},
        {"users.drift_rate": [0, 0.05, 1e-3]},
        {"agents[1].signal": ["clicks", "engagement"]},
        {"platform.knows_source": [True, False]},
    ],
)
def test_good_sweep_values_of_each_kind(sweep):
    """Numbers (ints and floats together), strings and booleans each make points."""
    ((key, values),) = sweep.items()
    assert [p.values[key] for p in sweep_points(make_small(sweep=sweep))] == values


@pytest.mark.parametrize("key", ["steps", "seeds", "output.dir", "execution.backend"])
def test_a_variant_cannot_change_what_a_sweep_cannot(key):
    """Variants obey the sweep's top-level rule (every trial runs the scenario's steps)."""
    with pytest.raises(ScenarioError, match=f"'{re.escape(key)}' cannot be changed by a variant"):
        make_small(variants={"a": {}, "b": {key: 3}})


def test_no_sweep_is_one_point():
    """Without a sweep there is one point: the scenario itself."""
    sc = make_small()
    (point,) = sweep_points(sc)
    assert point.values == {}
    assert point.scenario is sc


@pytest.mark.parametrize(
    ("sweep", "fragment"),
    [
        ({"users.num_users": []}, "'users.num_users' has an empty list of values"),
        ({"seeds": [1, 2]}, "sweep parameter 'seeds' cannot be swept"),
        ({"users.num_userz": [1]}, "Did you mean 'num_users'?"),
        ({"users.num_users": [10, -1]}, "sweep.users.num_users=-1: users.num_users: "),
        # every trial runs the scenario's steps (resume, progress and summaries rely on it)
        ({"steps": [2, 4]}, "sweep parameter 'steps' cannot be swept (every trial runs"),
        # values name the points in the rows: numbers, strings or booleans, one kind a path
        ({"platform.rerankers": [[], [{"model": "mmr"}]]}, "lists a list ([])"),
        ({"content.phases": [[{"aigc_share": 0.5}]]}, "lists a list ("),
        ({"platform": [{"slate_size": 2}, {"slate_size": 3}]}, "lists a dict ("),
        ({"agents[0]": [{"model": "random"}]}, "lists a dict ("),
        ({"platform.rerank_depth": [None, 15]}, "lists null (the default)"),
        ({"platform.slate_size": [3, None]}, "name them as variants"),
        ({"platform.knows_source": [True, "yes"]}, "mixes bool and string values"),
        ({"platform.slate_size": [3, "4"]}, "mixes number and string values"),
        ({"platform.slate_size": [True, 3]}, "mixes bool and number values"),
        ({"users.drift_rate": [0.1, float("nan")]}, "lists nan; give a finite number"),
        ({"users.drift_rate": [float("inf")]}, "lists inf; give a finite number"),
        ({"platform.slate_size": [2, 2.0]}, "lists 2.0 more than once"),
        ({"users.drift_rate": [0.1, 0.10]}, "lists 0.1 more than once"),
        ({"agents[1].signal": ["clicks", "clicks"]}, "lists 'clicks' more than once"),
    ],
)
def test_bad_sweep(sweep, fragment: str):
    """A bad sweep names the parameter and what is wrong."""
    with pytest.raises(ScenarioError, match=re.escape(fragment)):
        make_small(sweep=sweep)
