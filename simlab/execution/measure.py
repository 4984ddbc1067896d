"""Counting what crosses between a trial's actors (for ``benchmarks/scaling.py``).

Off by default: :func:`start_measuring` turns it on in the process that runs a world's loop
(the benchmark runs that loop in the driver), and :class:`RayPopulation` then records the
serialized size of each step's calls and results and the time it waited on the shards.
"""

from __future__ import annotations

import pickle
from typing import Any

__all__ = ["measuring", "start_measuring", "serialized_size", "peak_rss_mb", "drive_in_process"]

_ON = [False]


def measuring() -> bool:
    """Whether the calls of this process are being measured."""
    return _ON[0]


def start_measuring(on: bool = True) -> None:
    """Measure (or stop measuring) the calls of this process."""
    _ON[0] = on


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serialized_size(obj: Any) -> int:
    """Bytes of ``obj`` pickled with protocol 5, its out-of-band buffers included.

    What Ray's serializer ships for numpy arrays and dataclasses of them (within a few
    bytes of framing): the pickle stream plus each array's raw buffer.
    """
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return len(data) + sum(memoryview(b).nbytes for b in buffers)


def drive_in_process(
    scenario: Any, steps: int, seed: int = 0, memory: dict[str, Any] | None = None
) -> list[dict[str, float]]:
    """Run ``steps`` steps of agent 0's world with this process as the trial actor.

    The user shards are Ray actors in a placement group, as ``simlab run`` places them;
    the loop (content, platform, agent, metrics) runs here so that what crosses between
    this coordinator and the shards can be measured. Needs ``ray.init`` done.

    Returns:
        Per step: ``seconds`` (wall time), ``wait_s`` (waiting on the shards; the rest is the
        coordinator's serial time), ``users`` (active users) and the serialized bytes
        ``model`` (a newly published serving state), ``content`` (put once per step),
        ``to_shards`` and ``from_shards`` (call arguments and results). ``memory``, when
        given, receives ``shards_peak_rss_mb`` (a list) and ``coordinator_peak_rss_mb``.
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
                }
            )
        if memory is not None:
            import ray

            memory["shards_peak_rss_mb"] = ray.get([s.peak_rss_mb.remote() for s in trial.shards])
            memory["coordinator_peak_rss_mb"] = peak_rss_mb()
    finally:
        limit.__exit__(None, None, None)
        start_measuring(False)
        import ray

        for shard in trial.shards:
            ray.kill(shard, no_restart=True)
        remove_placement_group(pg)
    return rows
