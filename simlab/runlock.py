"""The OS file lock that says which process writes a run directory.

The process that runs or resumes a run holds an exclusive ``flock`` on ``<run>/.lock`` for as
long as it writes the directory. The operating system releases it when that process ends,
however it ends (``kill -9``, a crash, a lost container), so:

- a second ``simlab run``/``simlab resume`` of the same run cannot take it, and is refused;
- a run whose manifest still says ``starting`` or ``running`` but whose lock is free has
  lost its process: it is reported as ``crashed`` (whatever its recorded pid and host say,
  so a copied directory or a new container does not look "still running" forever).

Readers (``simlab show``, ``runs``, the dashboard) test the lock with a shared, non-blocking
request that they drop at once; a writer retries its exclusive request for a moment, so a
reader's test never makes a writer fail. ``flock`` locks are per open file: a second lock
request from the same process on another descriptor conflicts too, as one from another
process would. On network file systems without ``flock`` support the lock may not hold
across machines.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from simlab.errors import RunStoreError

__all__ = ["LOCK", "RunLock", "is_locked"]

LOCK = ".lock"


class RunLock:
    """An exclusive lock on one run directory, held until :meth:`release` or process exit."""

    def __init__(self, run_path: str | Path) -> None:
        self.path = Path(run_path) / LOCK
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self, wait: float = 2.0) -> None:
        """Take the lock, retrying for ``wait`` seconds; write our pid and host into it.

        Raises:
            RunStoreError: another process holds it (the message names it) or the lock
                file cannot be created.
        """
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise RunStoreError(f"{self.path}: cannot create the run's lock file ({e})") from e
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise RunStoreError(
                        f"{self.path.parent}: the run is being written by another process "
                        f"({holder}); wait for it to end or stop it first"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the flock


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "pid unknown"


def is_locked(run_path: str | Path) -> bool | None:
    """Whether some process holds the lock of ``run_path``; None when it has no lock file.

    Runs written before the lock existed have no lock file; the caller then falls back to
    the pid and host recorded in the manifest.
    """
    path = Path(run_path) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
