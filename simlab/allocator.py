"""The C allocator's handling of freed memory, set once in a process that runs worlds.

A step allocates and frees many arrays of a few hundred kilobytes to tens of megabytes
(scores, slates, metric temporaries). glibc's ``malloc`` serves blocks above its mmap
threshold with fresh ``mmap`` calls and gives freed memory at the top of the heap back to
the system once more than the trim threshold is free, so the next step's arrays fault their
pages in again: about 3,500 minor page faults per step of the 10,000-user popularity world,
a third of its CPU time. :func:`keep_freed_memory` raises both thresholds in this process
(through ``mallopt``), so freed blocks are reused; ``benchmarks/allocator.py`` measures the
gain. A process keeps at most ``TRIM_THRESHOLD`` of freed memory at the top of its heap,
and blocks larger than ``MMAP_THRESHOLD`` are still mapped and unmapped on their own.

:class:`simlab.world.World` calls it, so every process that runs a world (the CLI, worker
processes, Ray actors, a notebook) gets it. It does nothing where the C library is not
glibc, when the process's own ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_``
variables are set (glibc reads those at start; they win), or when ``SIMLAB_KEEP_FREED_MEMORY``
is ``0``.
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 32 << 20
"""Blocks from this size up are mapped on their own (glibc's documented maximum, 32 MiB)."""
TRIM_THRESHOLD = 256 << 20
"""Freed memory at the top of the heap kept for reuse, at most (256 MiB)."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_OWN_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")

_applied: dict[int, bool] = {}  # pid -> result (a forked child inherits the settings)


def keep_freed_memory() -> bool:
    """Raise this process's malloc thresholds (see the module docstring); once per process.

    Returns whether the thresholds are set by simlab in this process (False: not glibc, the
    process's own settings, or ``SIMLAB_KEEP_FREED_MEMORY=0``).
    """
    pid = os.getpid()
    if pid not in _applied:
        _applied[pid] = _apply()
    return _applied[pid]


def _apply() -> bool:
    if os.environ.get("SIMLAB_KEEP_FREED_MEMORY", "1").strip() == "0":
        return False
    if any(os.environ.get(var) for var in _OWN_SETTINGS):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # both or neither: setting one turns off glibc's adaptive thresholds, and either alone
    # made the popularity world slower (more faults), not faster
    if not mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
