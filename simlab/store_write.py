"""Writing a run directory: create it, rewrite its manifest, record trial and run status.

Part of :mod:`simlab.store` (see its docstring for the layout): :class:`RunWriter` is the
writing half of :class:`~simlab.store.RunStore`; :class:`TrialInfo` is what the manifest
records of each trial.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from simlab.atomic import write_text
from simlab.errors import RunStoreError
from simlab.manifest import JOURNAL, MANIFEST, METRICS, SCENARIO
from simlab.runlock import is_locked

__all__ = ["RunWriter", "TrialInfo", "FINAL_STATUSES", "MANIFEST_INTERVAL"]

FINAL_STATUSES = ("completed", "failed", "interrupted")
MANIFEST_INTERVAL = 0.5
"""Seconds between rewrites of the manifest for trial status updates."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    """Versions of simlab and the libraries that shape its numbers, for the manifest."""
    import numpy
    import pandas
    import pydantic

    import simlab
    from simlab.rng import STREAM_VERSION

    out = {
        "simlab": simlab.__version__,
        "simlab_rng": str(STREAM_VERSION),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pa.__version__,
        "pydantic": pydantic.__version__,
    }
    with contextlib.suppress(ImportError):
        import torch

        out["torch"] = torch.__version__
    return out


@dataclass(frozen=True)
class TrialInfo:
    """One trial of a run: an agent, a seed and a sweep point.

    ``warmup`` is the number of steps before the first retrained model serves
    (``PlatformSection.warmup_steps``): summaries over steps leave them out.
    """

    index: int
    agent: str
    seed: int
    point: int
    params: dict[str, Any]
    warmup: int = 0


_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+=-]{0,199}$")


def run_id_problem(run_id: object) -> str | None:
    """Why ``run_id`` cannot name a run directory, or None when it can.

    A run id is one folder name under the runs folder: at most 200 letters, digits, ``_``,
    ``.``, ``@``, ``+``, ``=`` or ``-``, starting with a letter or digit (so no ``/``, no
    ``..``, no absolute path, nothing a shell or another system reads differently).
    """
    if not isinstance(run_id, str):
        return f"a run id is a str, actual type: {type(run_id).__name__}"
    if _RUN_ID.match(run_id) and run_id not in (".", ".."):
        return None
    shown = repr(run_id) if len(run_id) <= 60 else repr(run_id[:57]) + "..."
    return (
        f"{shown} is not a run id: use at most 200 letters, digits, '_', '.', '@', '+', "
        "'=' or '-', starting with a letter or digit (it names one folder under --out: "
        "no '/', no '..', no absolute path)"
    )


_W = TypeVar("_W", bound="RunWriter")


class RunWriter:
    """Writing a run directory (a mixin of :class:`~simlab.store.RunStore`).

    The host provides ``path``, ``manifest``, ``lock`` (its :class:`~simlab.runlock.RunLock`)
    and ``_saved_at`` (monotonic time of the last manifest write).
    """

    @classmethod
    def create(
        cls: type[_W],
        parent: str | Path,
        scenario_name: str,
        scenario_yaml: str,
        trials: Sequence[TrialInfo],
        metric_columns: Sequence[str],
        sweep_columns: Sequence[str] = (),
        run_id: str | None = None,
        metric_summary: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> _W:
        """Create ``<parent>/<run-id>/``, take its lock and write a ``starting`` manifest.

        The manifest is written first, before anything heavy is imported or allocated, so a
        run killed in its first second is still a run directory (``crashed``, resumable):
        its folders exist by then, and ``extra`` (what resume needs to know, such as a
        fork's ``forked_from``) is in it. The caller marks it ``running`` and later
        finishes it; an interrupt before that marks it ``interrupted``.
        """
        if run_id is not None and run_id != "":
            problem = run_id_problem(run_id)
            if problem:
                raise ValueError(f"Expects `run_id` to name one run directory: {problem}")
        parent = Path(parent)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        run_id = run_id or f"{scenario_name}-{stamp}-{secrets.token_hex(2)}"
        path = parent / run_id
        _make_run_dir(parent, path)
        manifest = {
            "run_id": run_id,
            "scenario": scenario_name,
            "status": "starting",
            "created": _now(),
            "started": _now(),
            "ended": None,
            "error": None,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "versions": {},
            "agents": sorted({t.agent for t in trials}, key=[t.agent for t in trials].index),
            "seeds": sorted({t.seed for t in trials}),
            "sweep_columns": list(sweep_columns),
            "metric_columns": list(metric_columns),
            "metric_summary": dict(metric_summary or {}),
            "trials": [
                {
                    "index": t.index,
                    "agent": t.agent,
                    "seed": t.seed,
                    "point": t.point,
                    "params": t.params,
                    "warmup": t.warmup,
                    "status": "pending",
                    "steps_done": 0,
                }
                for t in trials
            ],
            **(extra or {}),
        }
        store = cls(path, manifest)
        store.lock.acquire()
        try:
            # the scenario and folders first: a directory with a manifest can be resumed
            write_text(path / SCENARIO, scenario_yaml)
            store.make_folders()
            store.save_manifest()
            manifest["versions"] = library_versions()
            store.save_manifest()
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt) and (path / MANIFEST).is_file():
                manifest.update(status="interrupted", error="interrupted while starting")
                store.save_manifest()
            store.lock.release()
            raise
        return store

    def make_folders(self) -> None:
        """The folders the rows are written into (again: resume after a kill or a loss)."""
        (self.path / METRICS).mkdir(exist_ok=True)
        (self.path / JOURNAL).mkdir(exist_ok=True)

    def start(self) -> None:
        """Mark the run ``running`` (its trials are about to execute)."""
        self.manifest["status"] = "running"
        self.save_manifest()

    def release(self) -> None:
        """Drop the run directory's lock (after :meth:`finish`, or when giving up)."""
        self.lock.release()

    def save_manifest(self) -> None:
        """Rewrite ``manifest.json`` atomically."""
        write_text(self.path / MANIFEST, json.dumps(self.manifest, indent=2, default=str))
        self._saved_at = time.monotonic()

    def trial_status(self, index: int, status: str, steps_done: int | None = None) -> None:
        """Record a trial's status (and steps done) in the manifest.

        The file is rewritten at most every :data:`MANIFEST_INTERVAL` seconds (a run of
        thousands of short trials would otherwise spend its time rewriting it); the status
        of the run (:meth:`finish`) is always written, with every trial's latest state.
        """
        trial = self.manifest["trials"][index]
        trial["status"] = status
        if steps_done is not None:
            trial["steps_done"] = int(steps_done)
        if time.monotonic() - self._saved_at >= MANIFEST_INTERVAL:
            self.save_manifest()

    def trial_facts(self, index: int, facts: dict[str, Any]) -> None:
        """Record facts of a trial in its manifest entry (e.g. its ``logging_policy``), now."""
        self.manifest["trials"][index].update(facts)
        self.save_manifest()

    def finish(self, status: str, error: str | None = None) -> None:
        """Mark the run ``completed``, ``failed`` or ``interrupted`` and drop its lock."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"Expects a final status in {FINAL_STATUSES}, actual value: {status}")
        self.manifest.update(status=status, ended=_now(), error=error)
        try:
            self.save_manifest()
        finally:
            self.release()

    def clean_temporary(self) -> int:
        """Remove the temporary files of writes cut by a kill; return how many.

        Only the process holding the run's lock may call this (no write is in flight).
        """
        if not self.lock.held:
            raise RuntimeError("clean_temporary needs the run's lock")
        removed = 0
        for folder, _dirs, files in os.walk(self.path):
            for name in files:
                if name.startswith(".") and ".tmp" in name:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(folder, name))
                        removed += 1
        return removed


def _make_run_dir(parent: Path, path: Path) -> None:
    """Create a new run directory (reusing one that a kill left without a manifest)."""
    if parent.exists() and not parent.is_dir():
        raise RunStoreError(f"{parent}: the output folder is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=False)
        return
    except FileExistsError:
        leftovers = {p.name for p in path.iterdir()} if path.is_dir() else None
        # killed between mkdir and the manifest: nothing was written yet, so reuse it
        allowed = {".lock", SCENARIO, METRICS, JOURNAL}
        if leftovers is None or not leftovers <= allowed or is_locked(path):
            raise RunStoreError(f"{path}: run directory already exists") from None
    except OSError as e:
        raise RunStoreError(f"{path}: cannot create run directory ({e.strerror or e})") from e
    if not os.access(path, os.W_OK):
        raise RunStoreError(f"{path}: run directory is not writable")
