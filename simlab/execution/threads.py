"""Threads of the numeric libraries in a process that runs trials.

BLAS (numpy's OpenBLAS) and torch each keep a pool of worker threads. On a small machine
running anything else, several spinning pools make numeric code several times slower (an
ALS refit took 5x longer with two BLAS threads on a loaded 2-core machine than with one).
simlab therefore runs trials with ``execution.threads`` threads per library (1 by default)
and uses more cores on purpose, with more processes (``execution.workers``) or Ray shards.
:class:`ThreadLimit` sets that through ``threadpoolctl`` (BLAS, OpenMP) and torch, and,
for a library not imported yet (an agent that imports torch at its first step), through the
``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` variables those libraries read when they load.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["ThreadLimit", "torch_threads"]


@contextmanager
def torch_threads(torch: Any, threads: int) -> Iterator[None]:
    """Run torch on ``threads`` intra-op threads inside the block, then restore its setting.

    For one call that must not use the process's setting (cheap: no ``threadpoolctl``).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ThreadLimit:
    """``threads`` threads per numeric library inside a ``with`` block (0: unchanged).

    Libraries imported inside the block (an agent importing torch) are limited by
    :meth:`settle`, which the runner calls once the trial's world is built.
    """

    def __init__(self, threads: int) -> None:
        self.threads = int(threads)
        self._limits: list[Any] = []
        self._torch_before: int | None = None
        self._env_before: dict[str, str | None] = {}

    def __enter__(self) -> ThreadLimit:
        self.settle()
        return self

    def settle(self) -> None:
        """Apply the limit to every numeric library loaded so far."""
        if self.threads <= 0:
            return
        from threadpoolctl import threadpool_limits

        torch = sys.modules.get("torch")
        if torch is not None and self._torch_before is None:
            # read before OpenMP is limited: torch reports OpenMP's setting
            self._torch_before = torch.get_num_threads()
        self._limits.append(threadpool_limits(limits=self.threads))
        if torch is not None:
            torch.set_num_threads(self.threads)
        # libraries loaded later (torch imported lazily by an agent) read these at import
        for var in _ENV_VARS:
            if var not in self._env_before:
                self._env_before[var] = os.environ.get(var)
            os.environ[var] = str(self.threads)

    def __exit__(self, *exc: object) -> None:
        for lim in reversed(self._limits):
            lim.restore_original_limits()
        self._limits.clear()
        torch = sys.modules.get("torch")
        if torch is not None and self._torch_before is not None:
            torch.set_num_threads(self._torch_before)
        self._torch_before = None
        for var, value in self._env_before.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        self._env_before.clear()


_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""Thread-count variables numeric libraries read when they are first imported."""
