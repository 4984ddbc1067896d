"""The simlab side of the bridge: a client for the RecSim NG worker process.

RecSim NG needs its own Python environment (``simlab extras recsim-ng``), so simlab runs
its models in a worker process (:mod:`simlab.environments.recsim_ng.worker`, started with
that environment's Python) and exchanges plain numpy arrays with it over pipes, in
``.npy`` frames (never pickles: simlab has numpy 2, the worker numpy 1.26).

:class:`WorkerProcess` owns one worker: it starts it, waits (with a timeout) until RecSim
NG is imported, sends requests and turns failures into :class:`RecSimNGError` with the
worker's traceback (a Python error in a request) or the tail of its stderr (a crash), and
stops it on :meth:`~WorkerProcess.close`, on garbage collection or at interpreter exit.
Importing TensorFlow takes seconds, so the components of one simlab process share one
worker (:func:`shared_worker`); each user population or shard holds a :class:`Session`
in it.

Example (needs the environment)::

    >>> from simlab.environments.recsim_ng.bridge import shared_worker
    >>> worker = shared_worker()  # doctest: +SKIP
    >>> worker.versions["recsim_ng"]  # doctest: +SKIP
    '0.1.2'
"""

from __future__ import annotations

import atexit
import os
import subprocess
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from simlab.errors import PeerSimulatorError

from .framing import PROTOCOL, read_message, write_message

__all__ = ["RecSimNGError", "WorkerProcess", "Session", "shared_worker", "close_shared"]

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
_TAIL_LINES = 25
_LIVE: weakref.WeakSet[WorkerProcess] = weakref.WeakSet()
_SHARED: dict[tuple[str, int], WorkerProcess] = {}
_SHARED_LOCK = threading.Lock()


#: Raised when the RecSim NG worker fails a request, crashes or does not start.
RecSimNGError = PeerSimulatorError


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class WorkerProcess:
    """One RecSim NG worker subprocess (see the module docstring).

    Args:
        python: the RecSim NG environment's interpreter (default:
            ``simlab.extras.require("recsim-ng")``, which raises ``DependencyNotInstalled``
            naming ``simlab extras recsim-ng`` when the environment is missing).
        threads: TensorFlow intra- and inter-op threads in the worker (0: TensorFlow's
            default, one per core).
        startup_timeout: seconds to wait for the worker to import RecSim NG.

    Raises:
        DependencyNotInstalled: the RecSim NG environment is not installed.
        RecSimNGError: the worker exited or did not answer within ``startup_timeout``.
    """

    python: Path
    threads: int
    versions: dict[str, str]

    def __init__(
        self, python: Path | str | None = None, threads: int = 1, startup_timeout: float = 300.0
    ) -> None:
        if python is None:
            from simlab.extras import require

            python = require("recsim-ng")
        self.python = Path(python)
        self.threads = int(threads)
        self.versions = {}
        self._lock = threading.Lock()
        self._released: list[int] = []  # sessions to free before the next request
        self._owner = os.getpid()
        fd, path = tempfile.mkstemp(prefix="simlab-recsim-ng-", suffix=".log")
        os.close(fd)
        # A clean environment: simlab's PYTHONPATH would put numpy 2 in front of the worker.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONNOUSERSITE="1", PYTHONUNBUFFERED="1")
        cmd = [str(self.python), str(WORKER_SCRIPT), "--threads", str(self.threads)]
        # The child appends to the log; we keep a reader on it and unlink it at once, so
        # no file is left behind however either process ends.
        self._stderr = open(path, "rb")  # closed in close()
        try:
            with open(path, "ab") as err:
                self._proc = subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env
                )
        except OSError as e:
            raise RecSimNGError(
                f"Could not start the RecSim NG worker `{' '.join(cmd)}`: {e}; "
                "recreate the environment with `simlab extras recsim-ng --force`"
            ) from e
        finally:
            Path(path).unlink(missing_ok=True)
        _LIVE.add(self)
        self._handshake(startup_timeout)

    # ---------------------------------------------------------------- lifecycle
    def _handshake(self, timeout: float) -> None:
        box: list[Any] = []
        reader = threading.Thread(target=lambda: box.append(self._read()), daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive():
            self._kill()
            raise RecSimNGError(
                f"The RecSim NG worker did not start within {timeout:.0f} s "
                f"(startup_timeout); its stderr ends with:\n{self.stderr_tail()}"
            )
        msg = box[0] if box else None
        if msg is None:
            raise self._died("while starting")
        header = msg[0]
        if header.get("op") != "ready" or header.get("protocol") != PROTOCOL:
            self._kill()
            raise RecSimNGError(
                f"The RecSim NG worker answered {header!r} instead of protocol {PROTOCOL}'s "
                "ready message; is it this simlab's worker.py?"
            )
        self.versions = dict(header.get("versions", {}))

    @property
    def alive(self) -> bool:
        """Whether the worker process is running (and was started by this process)."""
        return self._owner == os.getpid() and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self._proc.pid

    def stderr_tail(self, lines: int = _TAIL_LINES) -> str:
        """The last ``lines`` lines the worker wrote to stderr."""
        try:
            self._stderr.seek(0)
            return _tail(self._stderr.read().decode(errors="replace"), lines)
        except (OSError, ValueError):
            return "(no stderr captured)"

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker (a shutdown request, then a kill after ``timeout`` seconds)."""
        if self._owner != os.getpid():  # a forked child must not stop its parent's worker
            return
        if self._proc.poll() is None:
            try:
                with self._lock:
                    write_message(self._proc.stdin, {"op": "shutdown"})
                    self._proc.stdin.close()
                self._proc.wait(timeout)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self._kill()
        for stream in (self._proc.stdin, self._proc.stdout, self._stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close(timeout=2.0)
        except Exception:  # nothing useful to do at collection time
            pass

    # ---------------------------------------------------------------- requests
    def _read(self) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        try:
            return read_message(self._proc.stdout)
        except (OSError, ValueError):
            return None

    def _died(self, when: str) -> RecSimNGError:
        try:
            code = self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._kill()
            code = self._proc.returncode
        return RecSimNGError(
            f"The RecSim NG worker (pid {self._proc.pid}) exited {when} with code {code}; "
            f"its stderr ends with:\n{self.stderr_tail()}"
        )

    def request(
        self, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Send one request; return the reply's ``(header, arrays)``.

        Raises:
            RecSimNGError: the request failed in the worker (its traceback's tail is in
                the message), or the worker is gone (the tail of its stderr is).
        """
        op = header.get("op")
        if self._owner != os.getpid():
            raise RecSimNGError(
                "this RecSim NG worker belongs to another process (fork); use shared_worker()"
            )
        with self._lock:
            if self._released and op != "release":
                self._send({"op": "release", "sessions": self._take_released()}, None)
            return self._send(header, arrays)

    def _take_released(self) -> list[int]:
        ids, self._released[:] = list(self._released), []
        return ids

    def _send(
        self, header: dict[str, Any], arrays: dict[str, np.ndarray] | None
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """One request and its reply (the caller holds the lock)."""
        op = header.get("op")
        try:
            write_message(self._proc.stdin, header, arrays)
        except (OSError, ValueError):
            raise self._died(f"before request '{op}'") from None
        reply = self._read()
        if reply is None:
            raise self._died(f"during request '{op}'")
        if not reply[0].get("ok"):
            raise RecSimNGError(
                f"RecSim NG failed on request '{op}':\n{_tail(reply[0].get('error', ''))}"
            )
        return reply

    def release(self, session: int, now: bool = True) -> None:
        """Free ``session`` in the worker, now or (``now=False``) before the next request.

        ``now=False`` does no I/O, so it is safe in ``__del__``, which garbage collection
        may run in the middle of a request.
        """
        self._released.append(int(session))
        if now and self.alive:
            with self._lock:
                self._send({"op": "release", "sessions": self._take_released()}, None)


def shared_worker(
    python: Path | str | None = None, threads: int = 1, startup_timeout: float = 300.0
) -> WorkerProcess:
    """This process's worker for ``(python, threads)``, started (or restarted) when needed."""
    if python is None:
        from simlab.extras import require

        python = require("recsim-ng")
    key = (str(python), int(threads))
    with _SHARED_LOCK:
        worker = _SHARED.get(key)
        if worker is None or not worker.alive:
            worker = WorkerProcess(python, threads, startup_timeout)
            _SHARED[key] = worker
        return worker


def close_shared() -> None:
    """Stop this process's shared workers (also run at interpreter exit)."""
    with _SHARED_LOCK:
        workers = list(_SHARED.values())
        _SHARED.clear()
    for w in workers:
        w.close()


@atexit.register
def _close_all() -> None:
    """Stop every worker at exit; a Ctrl-C while waiting for one kills the rest at once.

    (An interrupt here would otherwise print a traceback after the run had finished.)
    """
    try:
        close_shared()
        for w in list(_LIVE):
            w.close(timeout=2.0)
    except KeyboardInterrupt:
        for w in list(_LIVE):  # the exception's frames keep the shared ones referenced
            w.close(timeout=0.0)


class Session:
    """A handle on one user session (a population or shard) inside a worker.

    Args:
        worker: the worker holding it.
        header: the ``open`` request's parameters (see ``worker.UserSession``).
        arrays: its arrays (``initial_normal``).
    """

    def __init__(
        self, worker: WorkerProcess, header: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> None:
        self.worker = worker
        reply, self.initial_state = worker.request(dict(header, op="open"), arrays)
        self.id = int(reply["session"])

    def request(
        self, op: str, arrays: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """The reply arrays of request ``op`` on this session."""
        return self.worker.request({"op": op, "session": self.id}, arrays)[1]

    def release(self, now: bool = True) -> None:
        """Free the session in the worker (see :meth:`WorkerProcess.release`; no-op when gone)."""
        sid, self.id = self.id, 0
        if sid and self.worker.alive:
            try:
                self.worker.release(sid, now)
            except RecSimNGError:
                pass
