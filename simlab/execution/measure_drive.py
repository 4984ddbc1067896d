"""Driving one Ray trial in this process to measure it (``benchmarks/scaling.py``).

Kept apart from :mod:`simlab.execution.measure` (the counters the Ray path reads), which the
actors import: this module imports the actors.
"""

from __future__ import annotations

from typing import Any

from simlab.execution.measure import peak_rss_mb, start_measuring

__all__ = ["drive_in_process"]


def drive_in_process(
    scenario: Any,
    steps: int,
    seed: int = 0,
    memory: dict[str, Any] | None = None,
    learner: dict[str, float] | None = None,
) -> list[dict[str, float]]:
    """Run ``steps`` steps of agent 0's world with this process as the trial actor.

    The user shards are Ray actors in a placement group, as ``simlab run`` places them;
    the loop (content, platform, agent, metrics) runs here so that what crosses between
    this coordinator and the shards can be measured. Needs ``ray.init`` done.

    Returns:
        Per step: ``seconds`` (wall time), ``wait_s`` (waiting on the shards; the rest is the
        coordinator's serial time), ``users`` (active users) and the serialized bytes
        ``model`` (a newly published serving state), ``content`` (put once per step),
        ``to_shards`` and ``from_shards`` (call arguments and results), and with the learner
        actor ``to_learner`` (what the coordinator sends it). ``memory``, when given,
        receives ``shards_peak_rss_mb`` (a list) and ``coordinator_peak_rss_mb``;
        ``learner``, when given and the agent learns in a learner actor (started outside
        the shards' placement group here), receives its ``busy_s`` (seconds spent
        learning), ``model_bytes`` (the models it published, all steps) and
        ``peak_rss_mb``.
    """
    import time

    from ray.util.placement_group import placement_group, remove_placement_group

    from simlab.execution.ray_actors import _TrialActor
    from simlab.execution.threads import ThreadLimit

    ex = scenario.execution
    pg = placement_group([{"CPU": ex.shard_cpus} for _ in range(ex.shards)], strategy="PACK")
    pg.wait(120)
    names = [f"measure-{id(pg)}/shard-{k}" for k in range(ex.shards)]
    # as many BLAS/torch threads as the trial actor (Ray gives an actor num_cpus threads)
    limit = ThreadLimit(max(1, int(scenario.execution.agent_resources.num_cpus)))
    limit.__enter__()
    trial = _TrialActor(scenario, 0, seed, names, pg, None)
    limit.settle()
    trial.start()
    pop = trial.world.population
    start_measuring()
    rows = []
    try:
        for t in range(steps):
            pop.wait_s = 0.0
            began = time.perf_counter()
            row = trial.world.step(t)
            rows.append(
                {
                    "seconds": time.perf_counter() - began,
                    "wait_s": pop.wait_s,
                    "users": float(row.get("users/active", 0.0)),
                    **{k: float(v) for k, v in pop.last_bytes.items()},
                    **{
                        k: float(v)
                        for k, v in getattr(trial.world.replicas, "last_bytes", {}).items()
                    },
                }
            )
        if learner is not None and pop.learner_actor is not None:
            import ray

            learner.update(ray.get(pop.learner_actor.stats.remote()))
            learner["peak_rss_mb"] = ray.get(pop.learner_actor.peak_rss_mb.remote())
        if memory is not None:
            import ray

            memory["shards_peak_rss_mb"] = ray.get([s.peak_rss_mb.remote() for s in trial.shards])
            memory["coordinator_peak_rss_mb"] = peak_rss_mb()
    finally:
        limit.__exit__(None, None, None)
        start_measuring(False)
        import ray

        for actor in [*trial.shards, pop.learner_actor]:
            if actor is not None:
                ray.kill(actor, no_restart=True)
        remove_placement_group(pg)
    return rows
