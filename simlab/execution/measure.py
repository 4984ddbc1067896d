"""Counting what crosses between a trial's actors (for ``benchmarks/scaling.py``).

Off by default: :func:`start_measuring` turns it on in the process that runs a world's loop
(the benchmark runs that loop in the driver), and :class:`RayPopulation` then records the
serialized size of each step's calls and results and the time it waited on the shards.
"""

from __future__ import annotations

import pickle
from typing import Any

__all__ = ["measuring", "start_measuring", "serialized_size", "peak_rss_mb"]

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
