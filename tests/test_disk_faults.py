"""A disk that refuses a write (full, over quota, a file too large, read-only, failing).

The fault is real: each faulty command is a process whose file-size limit (RLIMIT_FSIZE,
SIGXFSZ ignored) makes the write that crosses it fail with EFBIG, wherever it falls: the
manifest at creation, a metrics part, an event part, or a checkpoint at step 4, 8 or 12 of
trial 0 or 1, depending on the limit. Each must end with one ``error:`` line naming the
reason and what to do (exit 2, never a traceback); the run keeps what it wrote, and
``simlab resume`` without the limit finishes it with the rows and events of an undisturbed
run. A full disk (ENOSPC) takes the same path: ``disk_failure`` tells these errors from bugs.
"""

from __future__ import annotations

import copy
import errno
import resource
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from conftest import SMALL
from test_faults import _same_as_reference

from simlab.cli import main
from simlab.errors import SimlabWarning, describe_disk_failure, disk_failure
from simlab.store import open_run

# Sizes in this run (bytes): manifest ~6.6k, metrics parts ~14k, event parts ~50-60k,
# checkpoints 400-670k growing with the step. Each limit fails a different write.
LIMITS = {
    "manifest": 3_000,
    "metrics part": 10_000,
    "event part": 30_000,
    "first checkpoint": 100_000,
    "trial 0, step 8 checkpoint": 500_000,
    "trial 0, step 12 checkpoint": 600_000,
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The scenario file and an undisturbed run of it."""
    tmp = tmp_path_factory.mktemp("disk")
    data = copy.deepcopy(SMALL)
    data.update(steps=16)
    data["output"] = {"flush_seconds": 0.0, "checkpoint_every": 4, "events": True}
    scenario = tmp / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(data))
    assert main(["run", str(scenario), "--out", str(tmp), "--run-id", "ref", "--no-progress"]) == 0
    return scenario, tmp / "ref"


def _limited(limit: int, *args: str) -> subprocess.CompletedProcess:
    """``simlab ARGS`` in a process that cannot write a file past ``limit`` bytes."""

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "simlab", *args],
        capture_output=True,
        text=True,
        preexec_fn=cap,
        timeout=300,
    )


def _clean_error(proc: subprocess.CompletedProcess) -> str:
    """The command failed with a message, not a traceback; return its ``error:`` lines."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors, proc.stderr
    assert "File too large (errno 27)" in proc.stderr
    return "\n".join(errors)


@pytest.mark.parametrize("where", list(LIMITS))
def test_a_refused_write_stops_the_run_cleanly_and_resume_finishes_it(reference, tmp_path, where):
    """Each refused write: exit 2 with the reason and the resume command; resume is exact."""
    scenario, ref = reference
    run = tmp_path / "r"
    args = ["run", str(scenario), "--out", str(tmp_path), "--run-id", "r", "--no-progress"]
    message = _clean_error(_limited(LIMITS[where], *args))
    if not (run / "manifest.json").exists():  # refused at creation: nothing to resume
        assert "a file could not be written" in message
        assert main(args) == 0
    else:
        assert f"simlab resume {run}" in message
        status = open_run(run).status
        assert status in ("failed", "crashed")  # crashed: the manifest was refused too
        if status == "failed":
            assert "File too large" in open_run(run).manifest["error"]
        assert not list(run.rglob(".*tmp*")), "a refused write left its temporary file"
        assert main(["resume", str(run), "--no-progress"]) == 0
    _same_as_reference(run, ref)


def test_the_limits_fail_at_different_steps(reference, tmp_path):
    """The cases above are different faults: rows kept before the refusal differ by limit."""
    scenario, _ = reference
    kept = {}
    for n, where in enumerate(
        ["first checkpoint", "trial 0, step 8 checkpoint", "trial 0, step 12 checkpoint"]
    ):
        args = ["run", str(scenario), "--out", str(tmp_path), "--run-id", f"s{n}"]
        _clean_error(_limited(LIMITS[where], *args, "--no-progress"))
        kept[where] = len(open_run(tmp_path / f"s{n}").read_metrics().query("trial == 0"))
    assert kept["first checkpoint"] < kept["trial 0, step 8 checkpoint"]
    assert kept["trial 0, step 8 checkpoint"] < kept["trial 0, step 12 checkpoint"]


@pytest.mark.parametrize("command", ["report", "export"])
def test_report_and_export_onto_a_refusing_disk_say_so(reference, tmp_path, command):
    """Commands that write elsewhere than a run (plots, datasets) say so too."""
    _, ref = reference
    out = tmp_path / "out"
    extra = ["--format", "parquet"] if command == "export" else []
    message = _clean_error(_limited(20_000, command, str(ref), *extra, "--out", str(out)))
    assert message.startswith("error: a file could not be written: File too large (errno 27)")


# ---------------------------------------------------------------------- the pieces
def _chained(*excs: BaseException) -> BaseException:
    """``excs[0]`` raised while handling ``excs[1]``, raised while handling ``excs[2]``..."""
    for outer, inner in zip(excs, excs[1:], strict=False):
        outer.__context__ = inner
    return excs[0]


class _RayTaskError(RuntimeError):
    """Like Ray's task error: the worker's exception is its ``cause``."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__("task failed")
        self.cause = cause


@pytest.mark.parametrize(
    "code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EACCES]
)
@pytest.mark.parametrize(
    "wrap",
    [
        lambda e: e,
        lambda e: _chained(RuntimeError("while closing"), e),
        lambda e: _chained(ValueError("a"), KeyError("b"), e),
        lambda e: _RayTaskError(e),
        lambda e: _chained(OSError(errno.ENOENT, "gone"), _RayTaskError(e)),
    ],
    ids=["bare", "context", "deep context", "ray cause", "ray behind another OSError"],
)
def test_disk_failure_finds_the_refused_write_behind_other_errors(code, wrap):
    """Each refusing errno is found, bare or behind contexts and a Ray task error."""
    refused = OSError(code, "refused", "/runs/x/part.parquet")
    assert disk_failure(wrap(refused)) is refused


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("a bug"),
        OSError(errno.ENOENT, "no such file"),
        OSError(errno.EEXIST, "exists"),
        OSError("no errno at all"),
        KeyboardInterrupt(),
        _RayTaskError(ValueError("a bug in the worker")),
    ],
)
def test_other_errors_are_not_disk_failures(exc):
    """Bugs and other OS errors stay what they are (a traceback, not a disk message)."""
    assert disk_failure(exc) is None


def test_disk_failure_stops_on_cycles():
    """Exceptions whose contexts point at each other do not loop."""
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert disk_failure(a) is None


def test_describe_names_reason_code_and_file():
    """The message: the OS's reason, the errno and the file when known."""
    e = OSError(errno.ENOSPC, "whatever", "/runs/x/manifest.json")
    assert describe_disk_failure(e) == (
        "No space left on device (errno 28) at /runs/x/manifest.json"
    )
    assert describe_disk_failure(OSError(errno.EROFS, "ro")).endswith("(errno 30)")


class _FullStore:
    """A store whose manifest cannot be saved (``error``) when finishing."""

    path = Path("/runs/x")

    def __init__(self, error: OSError) -> None:
        self.error = error

    def finish(self, status: str, error: str) -> None:
        raise self.error


def test_a_manifest_the_disk_refuses_is_warned_not_raised():
    """Marking a stopped run on a full disk warns (it reads as crashed); other errors raise."""
    from simlab.runner import _finish

    with pytest.warns(SimlabWarning, match="could not mark the run failed .*continues it"):
        _finish(_FullStore(OSError(errno.ENOSPC, "full")), "failed", "x")
    with pytest.raises(OSError, match="not a disk"), warnings.catch_warnings():
        warnings.simplefilter("error")
        _finish(_FullStore(OSError(errno.ENOENT, "not a disk")), "failed", "x")


def _refused_replace(src, dst):
    raise OSError(errno.ENOSPC, "full")


def _write_manifest(folder):
    from simlab.atomic import write_text  # how the run store writes its manifest

    write_text(folder / "manifest.json", "{}")


def _write_part(folder):
    import pyarrow as pa

    from simlab.rows import write_parquet

    write_parquet(pa.table({"a": [1, 2]}), folder / "part-000001.parquet")


def _write_snapshot(folder):
    import numpy as np

    from simlab.snapshots import write_snapshot

    write_snapshot(folder, 0, 3, {"x": np.zeros(4)})


@pytest.mark.parametrize("write", [_write_manifest, _write_part, _write_snapshot])
def test_a_refused_write_leaves_no_temporary_file(tmp_path, monkeypatch, write):
    """The manifest, a metrics or event part, a snapshot: the temporary goes with the failure."""
    import os

    monkeypatch.setattr(os, "replace", _refused_replace)
    with pytest.raises(OSError, match="full"):
        write(tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
