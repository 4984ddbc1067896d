"""A trial that fails or is cut short says so in the manifest, on every backend.

The failure is a world's own: without repeat consumption a small static catalog runs out
for some user, a ``ScenarioError`` at a step no rule can foresee (it depends on the
clicks). The run ends ``failed`` with the error; the failing trial is ``failed`` with the
rows it kept (never ``running``), and the rows on disk are the steps before the failure.
"""

from __future__ import annotations

import copy

import pytest
from conftest import SMALL

from simlab.errors import ScenarioError
from simlab.runner import run_scenario
from simlab.scenario import parse_scenario
from simlab.store import open_run


def _running_out(backend: str, seeds: int) -> dict:
    data = copy.deepcopy(SMALL)
    data.update(steps=40, seeds=seeds, agents=[{"model": "random"}])
    data["users"] = {"model": "logit", "num_users": 60}
    data["content"] = {"model": "creators", "initial_items": 6, "items_per_step": 0,
                       "lifetime": 1000}  # fmt: skip
    data["platform"] = {"slate_size": 2, "exclude_consumed": True, "retrain_every": 3}
    data["execution"] = {"backend": "local"}
    if backend == "workers":
        data["execution"] = {"backend": "local", "workers": 2}
    elif backend == "ray":
        data["execution"] = {"backend": "ray", "shards": 1,
                             "agent_resources": {"num_cpus": 0.5}}  # fmt: skip
    return data


@pytest.mark.parametrize(("backend", "seeds"), [("local", 1), ("local", 3), ("workers", 4)])
def test_a_failing_trial_is_marked_failed_with_its_rows(tmp_path, backend, seeds):
    """The first trial to fail is ``failed``; no trial is left ``running``."""
    _check(tmp_path, backend, seeds)


def test_a_failing_trial_on_ray_is_marked_failed(ray_local, tmp_path):
    """The same on Ray: the trial actor's error ends the trial ``failed``."""
    _check(tmp_path, "ray", 2)


def _check(tmp_path, backend: str, seeds: int) -> None:
    sc = parse_scenario(_running_out(backend, seeds))
    with pytest.raises(ScenarioError, match="platform.exclude_consumed: at step"):
        run_scenario(sc, out_dir=tmp_path, run_id="out")
    store = open_run(tmp_path / "out")
    assert store.status == "failed" and "exclude_consumed" in store.manifest["error"]
    trials = store.manifest["trials"]
    statuses = [t.get("status") for t in trials]
    assert "running" not in statuses and "failed" in statuses, statuses
    rows = store.read_metrics()
    for t in trials:
        steps = rows.loc[rows["trial"] == t["index"], "step"].tolist()
        assert steps == list(range(len(steps)))  # the steps before the stop, once each
        if t.get("status") == "failed":  # its own last word: the rows it kept
            assert 0 <= t["steps_done"] == len(steps) < sc.steps
        elif t.get("status") == "interrupted":  # stopped with the run (a worker's last
            assert t["steps_done"] <= len(steps) < sc.steps  # count may lag its rows)
