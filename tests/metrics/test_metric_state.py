"""What a metric keeps between steps: only the running state its next rows need.

Rows go to the run directory as steps finish, so a metric object (and each checkpoint, which
holds its state) must not grow with the steps it measured. Every metric kept each row it
returned in a ``history`` list until 2026-12-07: every checkpoint of a long run carried all
earlier rows of every metric (~1.6 KB per step on the quickstart world), and memory grew
with the steps.
"""

from __future__ import annotations

import pickle

import pytest
from conftest import make_small

from simlab import registry
from simlab.checkpoint import capture
from simlab.state import component_state
from simlab.world import World

METRICS = registry.names("metrics")

# running state by design: the cumulative consumption the Jaccard of consumed sets compares
CUMULATIVE = {"homogenization", "homogenization_nn"}


def _states(steps: tuple[int, ...]) -> dict[int, dict[str, bytes]]:
    """Each metric's pickled checkpoint state after each of ``steps`` steps."""
    world = World(make_small("steps=40", metrics=METRICS), 0, 0)
    out = {}
    for t in range(max(steps)):
        world.step(t)
        if t + 1 in steps:
            out[t + 1] = {
                name: pickle.dumps(component_state(m, f"metrics.{name}"))
                for name, m in zip(world.scenario.metrics, world.metrics, strict=True)
            }
    return out


@pytest.fixture(scope="module")
def states() -> dict[int, dict[str, bytes]]:
    """Every metric's state after 3, 12 and 36 steps of one world."""
    return _states((3, 12, 36))


@pytest.mark.parametrize("name", sorted(set(METRICS) - CUMULATIVE))
def test_a_stateless_metric_keeps_nothing_between_steps(states, name):
    """Its checkpoint state is the same after 3, 12 and 36 steps: empty."""
    assert states[3][name] == states[12][name] == states[36][name]
    assert pickle.loads(states[36][name]) == {}


@pytest.mark.parametrize("name", sorted(CUMULATIVE))
def test_a_cumulative_metric_keeps_consumption_not_rows(states, name):
    """Consumed sets grow with the clicks; no attribute holds one entry per measured step."""
    state = pickle.loads(states[36][name])
    for key, value in state.items():
        if isinstance(value, list):
            assert len(value) < 36, (key, len(value))


def test_checkpoints_do_not_grow_with_stateless_metrics():
    """A world measured by the stateless metrics only: the same checkpoint size at 5 and 30.

    (The size of the checkpoint's metrics part, which held every row before.)
    """
    stateless = [m for m in METRICS if m not in CUMULATIVE]
    world = World(make_small("steps=30", metrics=stateless), 0, 0)
    sizes = []
    for t in range(30):
        world.step(t)
        if t + 1 in (5, 30):
            sizes.append(len(pickle.dumps(capture(world)["metrics"])))
    assert sizes[0] == sizes[1]
