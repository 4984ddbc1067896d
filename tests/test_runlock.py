"""The run directory's writer lock (``simlab.runlock``), per class of situation.

Classes: a free lock is taken and names its holder in the lock file (whatever the file held
before); a held lock refuses a second writer, naming the directory and the holder (or "pid
unknown" when the file names nobody), at once or after the wait; a lock freed during the
wait is taken; releasing is idempotent and frees the lock for the next writer; readers see
no lock file, a held lock and a free one; a lock file that cannot be created is a clear
error.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading

import pytest

from simlab.errors import RunStoreError
from simlab.runlock import LOCK, RunLock, is_locked


def _holder_line() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}\n"


@pytest.mark.parametrize("before", [None, "", "x" * 500 + "\n", "pid 1 on elsewhere\n"])
def test_a_free_lock_is_taken_and_names_its_holder(tmp_path, before):
    """The lock file holds exactly this process's pid and host, whatever it held before."""
    if before is not None:
        (tmp_path / LOCK).write_text(before)
    lock = RunLock(tmp_path)
    assert not lock.held
    lock.acquire(wait=0)
    try:
        assert lock.held and is_locked(tmp_path) is True
        assert (tmp_path / LOCK).read_text() == _holder_line()
    finally:
        lock.release()


@pytest.mark.parametrize("wait", [0, 0.1])
def test_a_held_lock_refuses_a_second_writer_naming_the_holder(tmp_path, wait):
    """Another writer (another descriptor, as another process would be) is refused."""
    first = RunLock(tmp_path)
    first.acquire()
    try:
        second = RunLock(tmp_path)
        with pytest.raises(RunStoreError) as e:
            second.acquire(wait=wait)
        assert str(e.value) == (
            f"{tmp_path}: the run is being written by another process "
            f"({_holder_line().strip()}); wait for it to end or stop it first"
        )
        assert not second.held and first.held
    finally:
        first.release()


def test_a_holder_that_wrote_nothing_is_named_pid_unknown(tmp_path):
    """A lock taken without a pid line (an older writer): the message says so."""
    fd = os.open(tmp_path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(RunStoreError, match=r"another process \(pid unknown\)"):
            RunLock(tmp_path).acquire(wait=0)
    finally:
        os.close(fd)


def test_release_is_idempotent_and_frees_the_lock(tmp_path):
    """Released twice without error; the next writer takes it; acquiring twice is a no-op."""
    lock = RunLock(tmp_path)
    lock.acquire()
    lock.acquire()  # already held: nothing happens
    assert lock.held
    lock.release()
    lock.release()
    assert not lock.held and is_locked(tmp_path) is False
    other = RunLock(tmp_path)
    other.acquire(wait=0)
    assert other.held
    other.release()
    lock.acquire(wait=0)  # the first object takes it again
    assert lock.held
    lock.release()


def test_readers_tell_no_lock_file_a_held_lock_and_a_free_one(tmp_path):
    """None without a lock file (runs from before the lock), True while held, False after."""
    assert is_locked(tmp_path) is None
    assert is_locked(tmp_path / "missing") is None
    (tmp_path / "file").write_text("x")
    assert is_locked(tmp_path / "file") is None  # under a file: no lock file can exist
    lock = RunLock(tmp_path)
    lock.acquire()
    assert is_locked(tmp_path) is True
    lock.release()
    assert is_locked(tmp_path) is False
    lock.acquire(wait=0)  # a reader's test never keeps the writer out
    assert lock.held
    lock.release()


def test_a_lock_file_that_cannot_be_created_is_a_clear_error(tmp_path):
    """No run directory: the lock file's path and the reason are named."""
    lock = RunLock(tmp_path / "gone")
    with pytest.raises(RunStoreError) as e:
        lock.acquire(wait=0)
    assert str(e.value).startswith(f"{tmp_path / 'gone' / LOCK}: cannot create the run's lock")
    assert not lock.held


@pytest.mark.parametrize(("leaves_after", "wait"), [(0.2, 10.0), (0.01, 0.95)])
def test_a_lock_freed_during_the_wait_is_taken(tmp_path, leaves_after, wait):
    """The writer retries until its wait ends, under a second of wait too.

    A holder that leaves meanwhile lets it in.
    """
    first = RunLock(tmp_path)
    first.acquire()
    timer = threading.Timer(leaves_after, first.release)
    timer.start()
    second = RunLock(tmp_path)
    try:
        second.acquire(wait=wait)
        assert second.held and not first.held
    finally:
        timer.join()
        second.release()


def test_the_lock_file_is_readable_by_all_and_writable_by_its_owner(tmp_path):
    """Mode 0o644 (less the umask): readers of other users can test it; nobody executes it."""
    umask = os.umask(0)
    os.umask(umask)
    lock = RunLock(tmp_path)
    lock.acquire(wait=0)
    lock.release()
    assert os.stat(tmp_path / LOCK).st_mode & 0o777 == 0o644 & ~umask
