"""The RecSim NG workers at interpreter exit: a Ctrl-C while simlab waits for them to stop.

A run that finished (or was stopped) waits at exit for its workers to shut down; a second
Ctrl-C in that wait printed a traceback ("Exception ignored in atexit callback") after the
run's results were already written. The workers here are stand-ins that answer the
handshake and then either stop when their input closes (polite) or ignore the shutdown
request until killed (stubborn); no RecSim NG environment is needed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from simlab.environments.recsim_ng import bridge
from simlab.environments.recsim_ng.bridge import WorkerProcess

# Answers the handshake; then a polite one reads until its input closes and exits, a
# stubborn one ignores everything (shutdown included) until killed.
STAND_IN = textwrap.dedent(
    """
    import json, struct, sys, time
    raw = json.dumps({"op": "ready", "protocol": %d, "versions": {}, "arrays": []}).encode()
    sys.stdout.buffer.write(struct.pack("<Q", len(raw)) + raw)
    sys.stdout.buffer.flush()
    if %r:
        time.sleep(120)
    sys.stdin.buffer.read()
    """
)


def _stand_in(path, stubborn: bool):
    """A fake `python` for :class:`WorkerProcess` that runs the stand-in worker."""
    path.write_text(
        f"#!/bin/sh\nexec {sys.executable} -c '{STAND_IN % (bridge.PROTOCOL, stubborn)}'\n"
    )
    path.chmod(0o755)
    return path


@pytest.fixture
def workers(tmp_path):
    """A factory of stand-in workers (``stubborn`` or polite); all are killed afterwards."""
    scripts = {s: _stand_in(tmp_path / f"python-{s}", s) for s in (True, False)}
    made: list[WorkerProcess] = []

    def make(stubborn: bool) -> WorkerProcess:
        w = WorkerProcess(python=scripts[stubborn], startup_timeout=30)
        made.append(w)
        return w

    yield make
    for w in made:
        if w._proc.poll() is None:
            w._proc.kill()
            w._proc.wait()


def _interrupt_waits(worker: WorkerProcess, times: int) -> list[float | None]:
    """Make ``worker``'s first ``times`` waits with a timeout raise KeyboardInterrupt."""
    seen: list[float | None] = []
    real = worker._proc.wait

    def wait(timeout=None):
        seen.append(timeout)
        if timeout is not None and len(seen) <= times:
            raise KeyboardInterrupt
        return real(timeout)

    worker._proc.wait = wait
    return seen


@pytest.mark.parametrize("victim", [0, 1, 2])
@pytest.mark.parametrize("shared", [True, False])
def test_ctrl_c_at_exit_kills_the_workers_without_a_traceback(workers, monkeypatch, victim, shared):
    """Whichever worker's wait is interrupted, `_close_all` returns and no worker is left."""
    monkeypatch.setattr(bridge, "_SHARED", {})
    monkeypatch.setattr(bridge, "_LIVE", type(bridge._LIVE)())
    made = [workers(stubborn=i == victim) for i in range(3)]
    for w in made:
        bridge._LIVE.add(w)
    if shared:
        bridge._SHARED.update({("py", i): w for i, w in enumerate(made)})
    seen = _interrupt_waits(made[victim], times=1)
    bridge._close_all()  # must not raise
    assert all(w._proc.poll() is not None for w in made)
    assert not bridge._SHARED
    assert seen[0] is not None  # the interrupt came in a wait with a timeout
    assert seen[-1] is None  # and the worker was then killed and reaped


@pytest.mark.parametrize("shared", [True, False])
def test_without_an_interrupt_a_stubborn_worker_is_killed_after_the_wait(
    workers, monkeypatch, shared
):
    """The normal exit path is unchanged: shared workers get 10 s, the others 2 s."""
    monkeypatch.setattr(bridge, "_SHARED", {})
    monkeypatch.setattr(bridge, "_LIVE", type(bridge._LIVE)())
    polite, stubborn = workers(stubborn=False), workers(stubborn=True)
    for w in (polite, stubborn):
        bridge._LIVE.add(w)
    if shared:
        bridge._SHARED[("py", 0)] = polite
    stubborn._proc.wait = _no_patience(stubborn._proc.wait)  # don't sit through the timeout
    timeouts = _interrupt_waits(polite, times=0), _interrupt_waits(stubborn, times=0)
    bridge._close_all()
    assert timeouts[0][0] == (10.0 if shared else 2.0) and polite._proc.returncode == 0
    assert timeouts[1][0] == 2.0 and stubborn._proc.returncode == -9


def _no_patience(wait):
    """``wait`` that gives up at once however long it was told to wait."""

    def hurried(timeout=None):
        return wait(None if timeout is None else 0.0)

    return hurried


def test_a_process_interrupted_at_exit_prints_no_traceback(tmp_path):
    """End to end: a process whose exit wait is interrupted exits without a traceback."""
    code = textwrap.dedent(
        f"""
        from simlab.environments.recsim_ng import bridge
        from simlab.environments.recsim_ng.bridge import WorkerProcess
        w = WorkerProcess(python={str(tmp_path / "python")!r}, startup_timeout=30)
        bridge._SHARED[("py", 1)] = w
        real = w._proc.wait
        calls = []
        def wait(timeout=None):
            calls.append(timeout)
            if len(calls) == 1:
                raise KeyboardInterrupt
            return real(timeout)
        w._proc.wait = wait
        print(w._proc.pid, flush=True)
        """
    )
    _stand_in(tmp_path / "python", stubborn=True)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "KeyboardInterrupt" not in out.stderr
    pid = int(out.stdout.split()[0])
    gone = subprocess.run(["ps", "-p", str(pid), "-o", "stat="], capture_output=True, text=True)
    assert gone.stdout.strip() in ("", "Z"), f"worker {pid} left running: {gone.stdout!r}"
