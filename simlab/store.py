"""Run directories: manifest, resolved scenario, metrics, event log.

Layout of ``<out>/<run-id>/``::

    scenario.yaml        the fully resolved scenario (every default filled in)
    manifest.json        versions, seeds, trials, status, timings (rewritten atomically)
    metrics.parquet/     a Parquet dataset: part-<trial>-<seq>.parquet files, one row per
                         trial x step (``pandas.read_parquet`` reads the folder)
    metrics.journal/     rows of each trial not yet in a part (JSON lines, one per step)
    events/              optional impression/response log, Parquet, partitioned by trial

Every finished step is appended to the trial's journal at once, and buffered rows become
a Parquet part every ``flush_seconds`` and when the trial ends. A run killed mid-way thus
keeps every finished step: :func:`read_metrics` merges the parts with any journal rows not
yet in a part, and :meth:`RunStore.recover` folds them into Parquet. Status is
``starting`` (the manifest is written before any heavy import or allocation), ``running``,
``completed``, ``failed`` or ``interrupted``; a ``starting`` or ``running`` run whose writer
no longer holds the directory's lock (:mod:`simlab.runlock`) is reported as ``crashed``.
A directory read from disk is checked first (:mod:`simlab.manifest`), so a damaged one gives
a :class:`~simlab.errors.RunStoreError` naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simlab.errors import RunStoreError
from simlab.events import EventsWriter
from simlab.manifest import (
    EVENTS,
    ID_COLUMNS,
    MANIFEST,
    SCENARIO,
    check_layout,
    check_manifest,
)
from simlab.rows import MetricsWriter
from simlab.runlock import RunLock
from simlab.store_read import RunReader
from simlab.store_summary import stopped_note, summarize, trial_warmups, warmup_note
from simlab.store_write import RunWriter, TrialInfo
from simlab.store_write import _now as _now  # the runner's clock for manifests

__all__ = [
    "RunStore",
    "TrialInfo",
    "MetricsWriter",
    "EventsWriter",
    "RunSummary",
    "list_runs",
    "open_run",
    "read_metrics",
    "summarize",
    "trial_warmups",
    "warmup_note",
    "stopped_note",
    "ID_COLUMNS",
]


class RunStore(RunWriter, RunReader):
    """A run directory being written (create) or read (open).

    Use :meth:`create` to start a run and :func:`open_run` to read one. Writing comes from
    :class:`~simlab.store_write.RunWriter`, reading from :class:`~simlab.store_read.RunReader`.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self._saved_at = 0.0  # monotonic time of the last manifest write
        self.lock = RunLock(path)

    @property
    def run_id(self) -> str:
        """The run id (the directory name)."""
        return str(self.manifest["run_id"])

    def metrics_writer(self, trial: TrialInfo, flush_seconds: float) -> MetricsWriter:
        """A writer for one trial's metric rows."""
        return MetricsWriter(self, trial, flush_seconds)

    def events_writer(
        self,
        trial: TrialInfo,
        flush_seconds: float,
        logging_policy: str | None = None,
        start: int = 0,
    ) -> EventsWriter:
        """A writer for one trial's impression/response events, from step ``start`` on.

        ``logging_policy`` (``sampled``, ``deterministic`` or ``unknown``, see
        :mod:`simlab.logged`) is recorded in the trial's manifest entry: it says what the
        ``propensity`` column holds. So is ``events_from``, the step the trial's log starts
        at (``start`` when the log is new), which :func:`simlab.events.log_problem` checks.
        """
        record = self.manifest["trials"][trial.index]
        facts: dict[str, Any] = {}
        if logging_policy is not None:
            facts["logging_policy"] = logging_policy
        writer = EventsWriter(self.events_folder(trial.index), flush_seconds)
        if "events_from" not in record and writer.is_new:
            facts["events_from"] = int(start)
        self.trial_facts(trial.index, facts)
        return writer

    def events_folder(self, trial: int) -> Path:
        """The folder of one trial's event log."""
        return self.path / EVENTS / f"trial={trial}"


# ---------------------------------------------------------------------- reading runs
def open_run(path: str | Path, runs_dir: str | Path | None = None) -> RunStore:
    """Open a run directory (a path, or a run id under ``runs_dir``) for reading.

    The manifest's schema and the directory's layout are checked first.

    Raises:
        RunStoreError: the directory is missing or is not a readable run; the message has one
            line per problem, each naming the file.
    """
    text = str(path)
    if "\x00" in text:
        raise RunStoreError(f"{text!r}: a path cannot contain a NUL byte")
    p = Path(path)
    try:
        if not p.exists() and runs_dir is not None and (Path(runs_dir) / text).exists():
            p = Path(runs_dir) / text
        if not p.is_dir():
            if p.exists():
                raise RunStoreError(f"{path}: is a file, not a run directory")
            raise RunStoreError(f"{path}: no such run directory")
        mpath = p / MANIFEST
        if not mpath.exists():
            raise RunStoreError(f"{p}: not a run directory (no {MANIFEST})")
        if not mpath.is_file():
            raise RunStoreError(f"{mpath}: expected a file, found a folder")
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        where = p / MANIFEST if p.is_dir() else p
        raise RunStoreError(f"{where}: corrupt manifest ({type(e).__name__}: {e})") from None
    problems = check_manifest(manifest)
    if problems:
        # the historical one-line form: "corrupt manifest, missing a, b; malformed c (...)"
        raise RunStoreError(f"{mpath}: corrupt manifest, " + "; ".join(problems))
    layout = check_layout(p)
    if layout:
        raise RunStoreError("\n".join(layout))
    return RunStore(p, manifest)


def read_metrics(path: str | Path):
    """The metrics of a run directory as a DataFrame (including a crashed run's journal)."""
    return open_run(path).read_metrics()


@dataclass(frozen=True)
class RunSummary:
    """One line of ``simlab runs``."""

    run_id: str
    status: str
    scenario: str
    agents: list[str]
    seeds: list[int]
    steps_done: int
    steps_total: int
    started: str
    path: Path
    problem: str | None = None


def list_runs(parent: str | Path) -> list[RunSummary]:
    """Every run directory under ``parent``, newest first; corrupt ones say what is wrong."""
    parent = Path(parent)
    if parent.exists() and not parent.is_dir():
        raise RunStoreError(f"{parent}: is a file, not a folder of run directories")
    if not parent.is_dir():
        return []
    out = []
    try:
        entries = sorted(parent.iterdir())
    except OSError as e:
        raise RunStoreError(f"{parent}: cannot list run directories ({e})") from None
    for p in entries:
        if not p.is_dir() or p.name.startswith("."):
            continue
        try:
            run = open_run(p)
        except RunStoreError as e:
            problem = str(e).replace("\n", "; ")
            out.append(RunSummary(p.name, "corrupt", "?", [], [], 0, 0, "", p, problem))
            continue
        m = run.manifest
        trials = m["trials"]
        steps_total = _scenario_steps(p) * len(trials)
        out.append(
            RunSummary(
                run_id=p.name,  # the folder name is what `simlab show` accepts
                status=run.status,
                scenario=str(m.get("scenario", "?")),
                agents=list(m.get("agents", [])),
                seeds=list(m.get("seeds", [])),
                steps_done=sum(int(t.get("steps_done", 0)) for t in trials),
                steps_total=steps_total,
                started=str(m.get("started", "")),
                path=p,
            )
        )
    return sorted(out, key=lambda r: r.started, reverse=True)


def _scenario_steps(path: Path) -> int:
    import yaml

    try:
        data = yaml.safe_load((path / SCENARIO).read_text(encoding="utf-8"))
        return int(data["steps"])
    except Exception:  # a corrupt scenario only loses the total, not the listing
        return 0
