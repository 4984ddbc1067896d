"""The learner actor on Ray: update/retrain beside the shards, the log partitioned by shard.

Local == Ray with 1, 2 and 4 shards with the learner on is asserted for every replica agent
by ``test_ray_replicas.py`` (the learner is on by default; it checks where each learns).
Here: retrains that overlap serving (``deploy_lag`` >= 2) change no bit of any row, the
retrain is handed to the learner as early as the agent allows and never across a
checkpoint, a killed learner recovers from the checkpoint, the per-shard log checkpoint
continues on the same, other or no shards with the local metrics, and the partitioned log's
two checkpoint forms convert into each other for any shard bounds.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import make_small
from test_ray_execution import _killer, assert_same_metrics
from test_ray_replicas import SMALL_MODELS, WORLD

from simlab.batch import PAD, Feedback
from simlab.checkpoint import checkpoint_steps, read_checkpoint
from simlab.errors import ScenarioError
from simlab.execution.ray import ClusterError
from simlab.execution.ray_population import WorkerLost
from simlab.log_partition import ShardLog, partitioned_form, whole_form
from simlab.runner import run_scenario
from simlab.scenario import parse_scenario
from simlab.serving import learner_blocker
from simlab.world import World

LEARNED = ["popularity", "mf", "two-tower", "linucb"]


def _agents(*names: str) -> list[dict]:
    return [{"model": n, **SMALL_MODELS.get(n, {})} for n in names]


def _sorted(store):
    return store.read_metrics().sort_values(["agent", "step"]).reset_index(drop=True)


def test_learner_actor_rows_equal_the_trial_actor_bit_for_bit(ray_local, tmp_path):
    """Retrains that overlap two steps of serving (``deploy_lag: 3``) change no bit.

    The same shards learning in the trial actor give the reference; every learned agent
    learns in the learner actor. (``deploy_lag: 1``, the default, is covered against the
    local backend for every replica agent by ``test_ray_replicas.py``.)
    """
    over = [
        *WORLD,
        "steps=9",
        "platform.deploy_lag=3",
        "execution.backend=ray",
        "execution.shards=2",
    ]
    rows, cols = {}, None
    for actor in ("true", "false"):
        sc = make_small(*over, f"execution.learner.actor={actor}", agents=_agents(*LEARNED))
        store = run_scenario(sc, out_dir=tmp_path / actor)
        learning = {t["placement"]["learning"] for t in store.manifest["trials"]}
        assert learning == (
            {"learner actor"}
            if actor == "true"
            else {"trial actor: execution.learner.actor is false"}
        )
        rows[actor], cols = _sorted(store), store.manifest["metric_columns"]
    for c in cols:
        a, b = rows["true"][c].to_numpy(float), rows["false"][c].to_numpy(float)
        np.testing.assert_array_equal(a, b, err_msg=c)


def _submissions(ray_local, agent: str, lag: int, checkpoint_every: int) -> dict[int, list]:
    """Step -> deploy steps handed to the learner by the end of that step (in process)."""
    from ray.util.placement_group import placement_group, remove_placement_group

    from simlab.execution.ray_actors import _TrialActor

    over = [
        *WORLD,
        "steps=12",
        "platform.retrain_every=3",
        f"platform.deploy_lag={lag}",
        f"output.checkpoint_every={checkpoint_every}",
        "execution.backend=ray",
        "execution.shards=2",
    ]
    sc = make_small(*over, agents=_agents(agent))
    pg = placement_group([{"CPU": 1}, {"CPU": 1}])
    pg.wait(60)
    trial = _TrialActor(sc, 0, 0, [f"sub-{agent}-{lag}-{k}" for k in range(2)], pg, None)
    trial.start()
    world, out = trial.world, {}
    try:
        for t in range(10):
            world.step(t)
            taken = [s + lag for s in range(t + 1) if sc.platform.retrain_due(s)]
            waiting = {at for at, _ in world.platform._pending}
            out[t] = [at for at in taken if at not in waiting]
    finally:
        import ray

        for actor in [*trial.shards, trial.world.population.learner_actor]:
            ray.kill(actor, no_restart=True)
        remove_placement_group(pg)
    return out


@pytest.mark.parametrize(
    ("agent", "lag", "every", "expected"),
    [
        # mf neither learns online nor keeps served records: handed over at the snapshot
        ("mf", 3, 0, {2: [5], 5: [5, 8], 8: [5, 8, 11]}),
        ("mf", 1, 0, {2: [3], 5: [3, 6], 8: [3, 6, 9]}),
        # a checkpoint at 4 (between the snapshot after step 2 and the deploy at 5): after it
        ("mf", 3, 4, {2: [], 3: [], 4: [5], 5: [5], 7: [5], 8: [5, 8, 11]}),
        # two-tower keeps served records: handed over after the step before the deploy
        ("two-tower", 3, 0, {2: [], 3: [], 4: [5], 6: [5], 7: [5, 8]}),
    ],
)
def test_retrains_reach_the_learner_as_early_as_the_agent_allows(
    ray_local, agent, lag, every, expected
):
    """The retrain overlaps serving for agents that cannot change before the deploy step."""
    got = _submissions(ray_local, agent, lag, every)
    for step, handed in expected.items():
        assert got[step] == handed, (step, got)


@pytest.mark.parametrize("agent", [*_agents("mf", "two-tower"), {"model": "linucb"}])
def test_a_killed_learner_is_recovered_from_the_last_checkpoint(ray_local, agent, tmp_path):
    """Acceptance: kill the learner actor mid-run; the rows equal an uninterrupted run's.

    (two-tower failed two steps after the restore: the learner kept the object store's
    read-only arrays and wrote into them.) The restart's reason is the cause, in plain text.
    """
    over = ["users.drift_rate=0.05", "output.checkpoint_every=5", "steps=20"]
    reference = run_scenario(make_small(*over, agents=[agent]), out_dir=tmp_path / "ref")
    sc = make_small(*over, "execution.backend=ray", "execution.shards=2", agents=[agent])
    on_step, done = _killer("learner", 12, "faulty")
    store = run_scenario(sc, out_dir=tmp_path, run_id="faulty", progress=on_step)
    assert done["killed"]
    trial = store.manifest["trials"][0]
    assert trial["placement"]["learning"] == "learner actor"
    assert trial["restarts"] == 1
    reason = trial["last_restart"]
    assert "\x1b" not in reason and re.match(r"[A-Za-z]+(Error|Lost): ", reason), reason
    df = store.read_metrics()
    assert sorted(df["step"]) == list(range(20))
    assert_same_metrics(df, reference.read_metrics(), store.manifest["metric_columns"])


def test_a_trial_out_of_restarts_is_failed_with_its_restarts_recorded(ray_local, tmp_path):
    """``max_restarts`` used up: the run fails naming the cause; the trial is ``failed``.

    (It was recorded ``interrupted``, without its restarts.)
    """
    over = ["output.checkpoint_every=5", "steps=20", "execution.max_restarts=0"]
    sc = make_small(*over, "execution.backend=ray", "execution.shards=2", agents=_agents("mf"))
    on_step, done = _killer("shard-0", 12, "out-of-restarts")
    with pytest.raises(ClusterError, match=r"lost an actor 1 times \(execution.max_restarts=0\)"):
        run_scenario(sc, out_dir=tmp_path, run_id="out-of-restarts", progress=on_step)
    from simlab.store import open_run

    store = open_run(tmp_path / "out-of-restarts")
    trial = store.manifest["trials"][0]
    assert (store.status, trial["status"], trial["restarts"]) == ("failed", "failed", 1)
    assert "\x1b" not in trial["last_restart"] and "\x1b" not in store.manifest["error"]


def test_each_shard_checkpoints_its_users_log_and_any_sharding_continues(ray_local, tmp_path):
    """The checkpoint holds each shard's users' log window and pending snapshots apart.

    Forked from it with the same shards, other shards, the learner off, or locally, the run
    gives the uninterrupted local run's rows; a local checkpoint continues on the learner.
    """
    over = [*WORLD, "steps=10", "platform.deploy_lag=2", "output.checkpoint_every=3"]
    agents = _agents("mf")
    local = run_scenario(make_small(*over, agents=agents), out_dir=tmp_path, run_id="local")
    ray = ["execution.backend=ray"]
    src = run_scenario(
        make_small(*over, *ray, "execution.shards=2", agents=agents), out_dir=tmp_path, run_id="src"
    )
    assert checkpoint_steps(src.path, 0) == [3, 6, 9]
    state = read_checkpoint(src.path, 0, 6)["platform"]
    assert [(s["lo"], s["hi"]) for s in state["shards"]] == [(0, 60), (60, 120)]
    assert all("feedback" not in e for e in state["log"])  # the central part: items only
    assert [at for at, _ in state["pending"]] == [7]  # snapshot after step 5, deploy at 7
    for part in state["shards"]:
        assert len(part["log"]) == 6 and [at for at, _ in part["pending"]] == [7]
        ids = np.concatenate([f["user_ids"] for f in part["log"]])
        assert ids.size and ((ids >= part["lo"]) & (ids < part["hi"])).all()
    cols = local.manifest["metric_columns"]
    for name, extra in [
        ("same", [*ray, "execution.shards=2"]),
        ("three", [*ray, "execution.shards=3"]),
        ("off", [*ray, "execution.shards=1", "execution.learner.actor=false"]),
        ("local", []),
    ]:
        fork = run_scenario(
            make_small(*over, *extra, agents=agents),
            out_dir=tmp_path,
            run_id=f"from-ray-{name}",
            fork=(src.path, 6),
        )
        assert_same_metrics(fork.read_metrics(), local.read_metrics(), cols)
    back = run_scenario(
        make_small(*over, *ray, "execution.shards=4", agents=agents),
        out_dir=tmp_path,
        run_id="back",
        fork=(local.path, 6),
    )
    assert_same_metrics(back.read_metrics(), local.read_metrics(), cols)


# ---------------------------------------------------------------------- no Ray needed
def _oom():
    from ray.exceptions import OutOfMemoryError

    return OutOfMemoryError("Task was killed due to the node running low on memory.")


@pytest.mark.parametrize(
    ("make", "lost"),
    [
        (_oom, True),  # Ray's memory monitor killed the process: restore it (docs: Faults)
        (lambda: WorkerLost("gone"), True),
        (lambda: ValueError("a model's bug"), False),
        (lambda: ClusterError("an actor could not start"), False),
    ],
)
def test_what_counts_as_a_lost_actor(make, lost):
    """An out-of-memory kill is a lost actor (the trial restarts), a model's error is not."""
    from simlab.execution.ray import _is_lost
    from simlab.execution.ray_population import _lost

    assert _is_lost(make()) is lost

    def calls_a_killed_shard():
        raise _oom()

    with pytest.raises(WorkerLost, match="OutOfMemoryError: Task was killed"):
        _lost(calls_a_killed_shard)()


def _step(t: int, users: np.ndarray, width: int, gen) -> Feedback:
    b = users.shape[0]
    return Feedback(
        t,
        users,
        gen.integers(0, 500, (b, width)),
        gen.integers(-1, width, b),
        gen.random(b).astype(np.float32),
    )


@pytest.mark.parametrize("bounds", [[(0, 50)], [(0, 20), (20, 50)], [(0, 7), (7, 8), (8, 50)]])
@pytest.mark.parametrize("widths", [[3, 3, 3, 3], [2, 4, 3, 4]])
def test_log_forms_convert_into_each_other_for_any_shard_bounds(bounds, widths):
    """Whole -> partitioned (any bounds, empty shards too) -> whole gives the same log."""
    from simlab.log_partition import feedback_state

    gen = np.random.default_rng(len(bounds) + sum(widths))
    section = make_small(
        "platform.log_window=3", "platform.retrain_every=2", "platform.deploy_lag=2"
    ).platform
    logs = [ShardLog(section) for _ in bounds]
    central = []
    for t, w in enumerate(widths):
        users = np.sort(gen.choice(50, 30, replace=False))
        f = _step(t, users, w, gen)
        for log, (lo, hi) in zip(logs, bounds, strict=True):
            keep = (users >= lo) & (users < hi)
            log.record(
                Feedback(t, users[keep], f.slates[keep], f.clicked_pos[keep], f.engagement[keep])
            )
        central.append({"step": t, "shown": np.arange(5) + t, "features": gen.random((5, 2))})
    state = {
        "log": central[-3:],
        "pending": [(3, {"central": central[:2]}), (5, {"central": central[1:4]})],
        "shards": [
            {"lo": lo, "hi": hi, **g.state_dict()} for g, (lo, hi) in zip(logs, bounds, strict=True)
        ],
    }
    log, pending = whole_form(state)
    assert [f.step for f, _, _ in log] == [1, 2, 3] and [at for at, _ in pending] == [3, 5]
    assert [int(p.step.max()) for _, p in pending] == [1, 3]
    np.testing.assert_array_equal(pending[1][1].feature_ids, np.arange(1, 8))
    whole = {
        "log": [{"feedback": feedback_state(f), "shown": s, "features": x} for f, s, x in log],
        "pending": [(at, feedback_state(p)) for at, p in pending],
    }
    for other in ([(0, 50)], [(0, 25), (25, 50)], [(0, 1), (1, 49), (49, 50)]):
        c, waits, parts = partitioned_form(whole, other)
        again = {
            "log": [{"step": t, "shown": s, "features": x} for t, s, x in c],
            "pending": [
                (at, {"central": [{"step": t, "shown": s, "features": x} for t, s, x in w]})
                for at, w in waits
            ],
            "shards": parts,
        }
        log2, pending2 = whole_form(again)
        for (f, _, _), (g, _, _) in zip(log, log2, strict=True):
            for k in ("user_ids", "slates", "clicked_pos", "engagement"):
                np.testing.assert_array_equal(getattr(f, k), getattr(g, k))
        for (_, p), (_, q) in zip(pending, pending2, strict=True):
            for k in (
                "step",
                "user_ids",
                "slates",
                "clicked_pos",
                "engagement",
                "feature_ids",
                "features",
            ):
                np.testing.assert_array_equal(getattr(p, k), getattr(q, k), err_msg=k)
        assert pending2[0][1].slates.shape[1] == max(widths[:2])  # narrower steps: PAD
        assert (pending2[0][1].slates == PAD).any() == (widths[0] != widths[1])


@pytest.mark.parametrize(
    ("overrides", "agents", "reason"),
    [
        (["execution.learner.actor=false"], [{"model": "mf"}], "execution.learner.actor"),
        ([], [{"model": "random"}], "learns nothing"),
        ([], [{"model": "mf", "source_debias": 0.5}], "source_debias"),
        ([], [{"model": "two-tower", "source_debias": 0.5}], "source_debias"),
        ([], [{"model": "content-filtering"}], "user representation"),
        ([], [{"model": "mf"}], None),
        ([], [{"model": "linucb"}], None),
        ([], [{"model": "popularity", "signal": "engagement"}], None),
    ],
)
def test_the_learner_actor_is_skipped_with_a_reason(overrides, agents, reason):
    """Agents whose learning reads the world (or that learn nothing) learn in the trial actor."""
    why = learner_blocker(World(make_small(*overrides, agents=agents), 0, 0))
    if reason is None:
        assert why is None
    else:
        assert why is not None and reason in why, why


def test_popularity_reads_the_log_partitioned_only_where_sums_are_exact():
    """Counts of clicks or impressions combine from the shards; engagement sums do not."""
    from simlab.serving import retrain_log_mode

    def mode(**params) -> str:
        return retrain_log_mode(
            World(make_small(agents=[{"model": "popularity", **params}]), 0, 0).agent
        )

    assert mode() == mode(signal="impressions") == "partitioned"
    assert mode(signal="engagement") == mode(cumulative=True) == "whole"
    assert retrain_log_mode(World(make_small(agents=[{"model": "linucb"}]), 0, 0).agent) == "none"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["execution.learner.num_cpus=-1"], "execution.learner.num_cpus"),
        (["execution.learner.num_gpus=100"], "execution.learner.num_gpus"),
        (["execution.learner.cpus=1"], "execution.learner.cpus"),
        (["execution.learner.actor=maybe"], "execution.learner.actor"),
        (
            ["execution.learner.actor=false", "execution.learner.num_gpus=1"],
            "execution.learner.num_gpus: 1 GPU for a learner actor, but",
        ),
    ],
)
def test_bad_learner_settings_are_clear_errors(overrides, message):
    """Each bad value of the ``learner`` section is one error line naming the field."""
    from conftest import SMALL

    with pytest.raises(ScenarioError) as info:
        parse_scenario({**SMALL, "execution": {"backend": "ray"}}, overrides)
    assert any(
        line.startswith(message) or message in line for line in str(info.value).splitlines()
    ), str(info.value)
