"""The event log's context of a step: start-up propensities, and steps nobody visited.

The platform's start-up steps log propensities of 1/C, whatever the agent.

During ``platform.startup_steps`` the platform serves uniformly random slates, not the agent.
The log asked the agent for its propensities anyway: a deterministic agent logged 1.0 for
random slates (an off-policy estimate on the log would weigh them wrongly), one with a
closed form computed them for slates it never chose, and epsilon-greedy, asked before its
first ``act``, stopped the run with an AttributeError (found by a CLI fuzz: one step, one
start-up step, events on). Start-up rows now log ``1 / C`` in every slot (``C`` candidates of
the user's observation); the agent's own propensities follow from the first step it serves.

A step at which no user arrives logs nothing: its context used to stop the run with numpy's
"cannot reshape array of size 0" (the item features' width was inferred from no rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_MODELS, make_small

from simlab.runner import run_scenario
from simlab.world import World

C = 40
AGENTS = [  # (agent, what it logs once it serves: a value, "nan", or None for its own)
    ({"model": "random"}, 1 / C),
    ({"model": "epsilon-greedy", "epsilon": 0.3}, None),
    ({"model": "popularity"}, None),  # equal counts in a random order: 1 / g
    ({"model": "ucb1"}, None),  # unseen items in a random order: 1 / g
    ({"model": "linucb"}, 1.0),
    ({"model": "thompson"}, "nan"),
    ({"model": "linear-ts"}, "nan"),
    ({"model": "two-tower", **SMALL_MODELS["two-tower"]}, None),
    ({"model": "popularity", "rerankers": [{"model": "mmr", "lam": 0.5}]}, "nan"),
]
IDS = ["random", "eps-greedy", "popularity", "ucb1", "linucb", "thompson", "linear-ts",
       "two-tower", "mmr"]  # fmt: skip


def _logged(agent: dict, startup: int, steps: int, *overrides) -> list[np.ndarray]:
    sc = make_small(
        "output.events=true", f"platform.max_candidates={C}",
        f"platform.startup_steps={startup}", *overrides, steps=steps, agents=[agent],
    )  # fmt: skip
    world = World(sc, 0, 0)
    out = []
    for t in range(steps):
        world.step(t)
        out.append(world.last_logged.propensity)
    return out


@pytest.mark.parametrize(("agent", "after"), AGENTS, ids=IDS)
@pytest.mark.parametrize("startup", [1, 3])
def test_startup_steps_log_one_over_c_then_the_agent_its_own(agent, after, startup):
    """Every slot of a start-up step logs 1/C; from the first served step, the agent's kind."""
    logged = _logged(agent, startup, startup + 3)
    for t, prop in enumerate(logged):
        assert prop.size and prop.shape[1] == 5
        if t < startup:
            assert (prop == 1 / C).all(), (t, np.unique(prop))
        elif after == "nan":
            assert np.isnan(prop).all()
        elif after is not None:
            assert (prop == after).all()
        elif agent["model"] == "epsilon-greedy":  # (1 - eps) q + eps / C, q in {0, 1/g}
            eps = agent["epsilon"]
            q = (prop.ravel() - eps / C) / (1 - eps)
            assert (q > -1e-12).all() and (q < 1 + 1e-12).all()
            g = 1 / q[q > 1e-12]
            np.testing.assert_allclose(g, np.round(g), rtol=1e-9)
        elif agent["model"] == "two-tower":  # random until its first retrain, then top-K
            assert set(np.unique(prop)) <= {1 / C, 1.0}
        else:  # ties in a random order: 1 / g for a group of g (agents.ties)
            assert ((prop >= 1 / C) & (prop <= 1)).all()


@pytest.mark.parametrize("new", [6, 10])
def test_startup_of_new_items_logs_one_over_their_number(new):
    """``startup_candidates: new`` shows the step's new items: C is their number."""
    logged = _logged(
        {"model": "popularity"}, 2, 4, "platform.startup_candidates=new",
        f"content.items_per_step={new}",
    )  # fmt: skip
    assert (logged[0] == 1 / new).all() and (logged[1] == 1 / new).all()
    for prop in logged[2:]:  # the agent's own: equal counts tied (1 / g), the rest 1
        assert ((prop > 0) & (prop <= 1)).all() and (prop == 1.0).any()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_run_of_start_up_steps_only_writes_its_log(tmp_path, workers):
    """The fuzz's case end to end: epsilon-greedy, one step, one start-up step, events on."""
    sc = make_small(
        "output.events=true", "platform.startup_steps=1", f"execution.workers={workers}",
        steps=1, seeds=2, agents=[{"model": "epsilon-greedy"}],
    )  # fmt: skip
    store = run_scenario(sc, out_dir=tmp_path)
    assert store.status == "completed"
    ev = pd.read_parquet(store.path / "events")
    assert len(ev) > 0 and set(ev["step"]) == {0}
    live = ev.groupby("trial").size().to_numpy()  # every trial logged its impressions
    assert live.size == 2 and (live > 0).all()
    assert np.allclose(ev["propensity"], 1 / 200)  # the small world's 200 live items


@pytest.mark.parametrize("agent", [{"model": "popularity"}, {"model": "epsilon-greedy"}])
@pytest.mark.parametrize("startup", [0, 2])
def test_a_step_without_visitors_logs_empty_context(tmp_path, agent, startup):
    """One user who rarely returns: the steps without a visit log (0, K, d) features, no rows."""
    sc = make_small(
        "output.events=true", "users.num_users=1", "users.return_prob=0.3",
        "users.return_spread=0", f"platform.startup_steps={startup}", steps=12, agents=[agent],
    )  # fmt: skip
    world = World(sc, 0, 0)
    empty = 0
    for t in range(sc.steps):
        world.step(t)
        logged = world.last_logged
        if logged.propensity.shape[0] == 0:
            empty += 1
            assert logged.item_features.shape == (0, 5, sc.world.dim)
            assert logged.user_features.shape[0] == 0
    assert 0 < empty < sc.steps  # both kinds of step happened
    store = run_scenario(sc, out_dir=tmp_path)
    ev = pd.read_parquet(store.path / "events")
    assert store.status == "completed" and 0 < ev["step"].nunique() < sc.steps
