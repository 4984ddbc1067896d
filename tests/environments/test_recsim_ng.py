"""RecSim NG's own interest-evolution users and corpus in simlab's loop (the worker bridge).

Tests that run RecSim NG skip, with the reason, only when its environment is not installed
(``simlab extras recsim-ng`` creates it; CI does). The error paths (environment missing,
worker failing to start or hanging) run everywhere. All tests share one worker process; the
last test kills it on purpose.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import sys

import numpy as np
import pandas as pd
import pytest

from simlab import extras
from simlab.batch import Slates
from simlab.errors import DependencyNotInstalled
from simlab.population import (
    LocalPopulation,
    ShardSpec,
    StepContent,
    UserShard,
    concat_states,
    shard_bounds,
)
from simlab.runner import run_scenario
from simlab.scenario import parse_scenario
from simlab.world import World

CORPUS = "simlab.environments.recsim_ng.population:RecSimNGCorpus"  # `recsim-ng-corpus`

needs_recsim = pytest.mark.skipif(
    not extras.is_ready("recsim-ng"),
    reason=f"the RecSim NG environment is not installed at {extras.env_dir('recsim-ng')} "
    "(create it with `simlab extras recsim-ng`)",
)


def _scenario(*overrides: str, **top):
    """RecSim NG's default world (2 topics, 100 documents, slate 2) with 200 users."""
    data = {
        "name": "recsim_ng_small",
        "steps": 20,
        "seeds": [0],
        "world": {"dim": 2, "num_topics": 2},
        "users": {"model": "recsim-ng", "num_users": 200},
        "content": {"model": CORPUS, "num_docs": 100},
        "platform": {"slate_size": 2, "retrain_every": 5, "log_window": 5},
        "agents": [{"model": "linucb"}],
        "metrics": ["engagement", "drift", "diversity", "exposure"],
        "output": {"flush_seconds": 0.0},
        "execution": {"backend": "local"},
    }
    data.update(top)
    return parse_scenario(data, list(overrides))


def _metrics(store) -> pd.DataFrame:
    df = pd.read_parquet(store.path / "metrics.parquet")
    return df.drop(columns=["run_id"]).sort_values(["trial", "step"]).reset_index(drop=True)


# ----------------------------------------------------------------------------- errors
def test_missing_environment_names_the_command(tmp_path, monkeypatch):
    """Without the environment, building RecSim NG users says to run `simlab extras recsim-ng`."""
    monkeypatch.setenv("SIMLAB_ENVS_DIR", str(tmp_path))
    with pytest.raises(DependencyNotInstalled, match=re.escape("`simlab extras recsim-ng`")):
        World(_scenario(content={"model": "recsim-corpus"}), 0, seed=0)
    with pytest.raises(DependencyNotInstalled, match=re.escape("`simlab extras recsim-ng`")):
        World(_scenario(), 0, seed=0)  # the corpus needs the worker too


def test_worker_that_cannot_import_recsim_reports_its_stderr():
    """A worker whose Python lacks RecSim NG fails with its traceback's tail, not a hang."""
    from simlab.environments.recsim_ng.bridge import RecSimNGError, WorkerProcess

    with pytest.raises(RecSimNGError, match=r"exited while starting(.|\n)*ModuleNotFoundError"):
        WorkerProcess(python=sys.executable, startup_timeout=60)


def test_worker_that_hangs_on_startup_times_out(tmp_path):
    """A worker that never says it is ready is killed after startup_timeout."""
    from simlab.environments.recsim_ng.bridge import RecSimNGError, WorkerProcess

    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho importing >&2\nexec sleep 60\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(RecSimNGError, match=r"did not start within 1 s(.|\n)*importing"):
        WorkerProcess(python=fake, startup_timeout=1)


def test_interest_space_must_be_the_topic_space():
    """world.dim != world.num_topics is refused with both values named."""
    from simlab.errors import ScenarioError

    with pytest.raises(ScenarioError, match=re.escape("world.dim=4, world.num_topics=2")):
        World(_scenario(world={"dim": 4, "num_topics": 2}), 0, seed=0)


# ----------------------------------------------------------------------------- loop
@needs_recsim
def test_scenario_with_a_simlab_agent_is_deterministic(tmp_path):
    """A simlab agent (linucb) over RecSim NG users: rows, plausible engagement, seeded."""
    sc = _scenario()
    a = _metrics(run_scenario(sc, out_dir=tmp_path / "a"))
    b = _metrics(run_scenario(sc, out_dir=tmp_path / "b"))
    c = _metrics(run_scenario(_scenario(seeds=[1]), out_dir=tmp_path / "c"))
    assert list(a["step"]) == list(range(20))
    # every user is served every step; a click consumes sigmoid(-quality) * 2 in (0, 2)
    assert (a["users/active"] == 200).all()
    assert a["engagement/ctr"].between(0.05, 1.0).all()
    per_click = a["engagement/mean"] / a["engagement/ctr"]
    assert per_click.between(0.9, 1.6).all()  # q ~ N(-1 or 0, 0.1): 2 sigmoid(-q) in [1, 1.5]
    cols = [col for col in a.columns if col not in ("trial", "seed")]
    for col in cols:
        np.testing.assert_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)
    assert not np.allclose(a["engagement/mean"], c["engagement/mean"])


@needs_recsim
@pytest.mark.parametrize(
    "knobs",
    [{}, {"interest_update_noise": 0.2, "position_bias": -0.5, "no_click_mass": 0.5}],
    ids=["defaults", "noise-bias-mass"],
)
def test_recsim_ng_users_follow_the_native_model_draw_for_draw(knobs):
    """Fed the same simlab noise, RecSim NG's code and the native numpy mirror agree."""
    sc = _scenario(
        agents=[{"model": "random"}], users={"model": "recsim-ng", "num_users": 200, **knobs}
    )
    native = _scenario(
        agents=[{"model": "random"}],
        users={"model": "interest-evolution", "num_users": 200, **knobs},
        content={"model": "recsim-corpus", "num_docs": 100},
    )
    ours, theirs = World(sc, 0, seed=7), World(native, 0, seed=7)
    np.testing.assert_array_equal(ours.content.items.topic, theirs.content.items.topic)
    np.testing.assert_allclose(ours.content.items.latent, theirs.content.items.latent, atol=1e-6)
    np.testing.assert_allclose(ours.content.items.quality, theirs.content.items.quality, atol=1e-6)
    same = total = 0
    for t in range(12):
        ours.step(t), theirs.step(t)
        fa, fb = ours.last_feedback, theirs.last_feedback
        np.testing.assert_array_equal(fa.slates, fb.slates)
        hit = fa.clicked_pos == fb.clicked_pos
        same, total = same + int(hit.sum()), total + hit.size
        np.testing.assert_allclose(fa.engagement[hit], fb.engagement[hit], atol=1e-5)
    assert same >= total - 2  # float32 (RecSim NG) vs float64 (native) may flip a rare tie
    np.testing.assert_allclose(ours.users.interests()[0], theirs.users.interests()[0], atol=1e-3)
    ids = np.arange(200)
    items = np.broadcast_to(ours.content.items.item_ids, (200, 100))
    util = ours.users.expected_utility(12, ids, items, ours.content.latent())
    ref = theirs.users.expected_utility(12, ids, items, theirs.content.latent())
    np.testing.assert_allclose(util, ref, atol=1e-3)


@needs_recsim
def test_two_shards_behave_like_one_population():
    """Users split over two worker sessions respond and evolve exactly as in one."""
    sc = _scenario(agents=[{"model": "random"}])
    world = World(sc, 0, seed=3)  # its content, and its population as the whole
    whole = world.population
    assert isinstance(whole, LocalPopulation)
    bounds = shard_bounds(200, 2)
    shards = [UserShard(ShardSpec.of(sc, 3), lo, hi) for lo, hi in bounds]
    for t in range(6):
        world.content.step(t, None)
        c = world.content
        content = StepContent(c.catalog(False), c.latent(), c.new_item_sources())
        ids = whole.arrive(t, content)[0]
        items = np.stack([(7 * ids + 3 * t) % 100, (7 * ids + 3 * t + 50) % 100], axis=1)
        fb = whole.respond(t, Slates(ids, items), content)[0]
        parts = []
        for shard, (lo, hi) in zip(shards, bounds, strict=True):
            mine = (ids >= lo) & (ids < hi)
            parts.append(shard.respond(t, ids[mine], items[mine], content))
        np.testing.assert_array_equal(fb.clicked_pos, np.concatenate([p[0] for p in parts]))
        np.testing.assert_array_equal(fb.engagement, np.concatenate([p[1] for p in parts]))
        assert 0 < (fb.clicked_pos >= 0).sum() < ids.size
    joined = concat_states([s.state_dict() for s in shards])
    for key, value in whole.state_dict().items():
        np.testing.assert_array_equal(value, joined[key], err_msg=key)


@needs_recsim
def test_fork_from_a_checkpoint_repeats_the_run(tmp_path):
    """A run forked from its step-10 checkpoint (RecSim NG state restored) repeats its rows."""
    sc = _scenario("output.checkpoint_every=10", steps=16)
    first = run_scenario(sc, out_dir=tmp_path / "a")
    forked = run_scenario(sc, out_dir=tmp_path / "b", fork=(first.path, 10))
    a, b = _metrics(first), _metrics(forked)
    for col in [c for c in a.columns if c not in ("trial", "seed")]:
        np.testing.assert_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)


@needs_recsim
def test_worker_errors_and_crashes_become_clear_errors():
    """A failed request carries the worker's traceback; a dead worker is reported."""
    from simlab.environments.recsim_ng.bridge import RecSimNGError, shared_worker

    worker = shared_worker()
    with pytest.raises(RecSimNGError, match=r"'bogus'(.|\n)*unknown op 'bogus'"):
        worker.request({"op": "bogus"})
    with pytest.raises(RecSimNGError, match="no open session 999"):
        worker.request({"op": "respond", "session": 999})
    os.kill(worker.pid, signal.SIGKILL)
    with pytest.raises(RecSimNGError, match=r"exited (before|during) request 'state'"):
        worker.request({"op": "state", "session": 1})
    assert not worker.alive  # the next shared_worker() call starts a new one
