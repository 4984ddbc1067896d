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

import contextlib
import json
import os
import platform
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from simlab.errors import RunStoreError
from simlab.events import EventsWriter
from simlab.manifest import (
    EVENTS,
    JOURNAL,
    MANIFEST,
    METRICS,
    SCENARIO,
    check_layout,
    check_manifest,
)
from simlab.rows import MetricsWriter, read_journal, write_parquet
from simlab.runlock import RunLock, is_locked

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
    "ID_COLUMNS",
]

ID_COLUMNS = ("run_id", "trial", "agent", "seed", "step")
FINAL_STATUSES = ("completed", "failed", "interrupted")
MANIFEST_INTERVAL = 0.5
"""Seconds between rewrites of the manifest for trial status updates."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _versions() -> dict[str, str]:
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


class RunStore:
    """A run directory being written (create) or read (open).

    Use :meth:`create` to start a run and :func:`open_run` to read one.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self._saved_at = 0.0  # monotonic time of the last manifest write
        self.lock = RunLock(path)

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(
        cls,
        parent: str | Path,
        scenario_name: str,
        scenario_yaml: str,
        trials: Sequence[TrialInfo],
        metric_columns: Sequence[str],
        sweep_columns: Sequence[str] = (),
        run_id: str | None = None,
        metric_summary: dict[str, str] | None = None,
    ) -> RunStore:
        """Create ``<parent>/<run-id>/``, take its lock and write a ``starting`` manifest.

        The manifest is written first, before anything heavy is imported or allocated, so a
        run killed in its first second is still a run directory (``crashed``, resumable).
        The caller marks it ``running`` and later finishes it.
        """
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
        }
        store = cls(path, manifest)
        store.lock.acquire()
        try:
            # the scenario first: a directory with a manifest can always be resumed
            _atomic_write(path / SCENARIO, scenario_yaml)
            store.save_manifest()
            (path / METRICS).mkdir(exist_ok=True)
            (path / JOURNAL).mkdir(exist_ok=True)
            manifest["versions"] = _versions()
            store.save_manifest()
        except BaseException:
            store.lock.release()
            raise
        return store

    def start(self) -> None:
        """Mark the run ``running`` (its trials are about to execute)."""
        self.manifest["status"] = "running"
        self.save_manifest()

    def release(self) -> None:
        """Drop the run directory's lock (after :meth:`finish`, or when giving up)."""
        self.lock.release()

    def save_manifest(self) -> None:
        """Rewrite ``manifest.json`` atomically."""
        _atomic_write(self.path / MANIFEST, json.dumps(self.manifest, indent=2, default=str))
        self._saved_at = time.monotonic()

    @property
    def run_id(self) -> str:
        """The run id (the directory name)."""
        return str(self.manifest["run_id"])

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

    def finish(self, status: str, error: str | None = None) -> None:
        """Mark the run ``completed``, ``failed`` or ``interrupted`` and drop its lock."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"Expects a final status in {FINAL_STATUSES}, actual value: {status}")
        self.manifest.update(status=status, ended=_now(), error=error)
        try:
            self.save_manifest()
        finally:
            self.release()

    def metrics_writer(self, trial: TrialInfo, flush_seconds: float) -> MetricsWriter:
        """A writer for one trial's metric rows."""
        return MetricsWriter(self, trial, flush_seconds)

    def events_writer(
        self, trial: TrialInfo, flush_seconds: float, logging_policy: str | None = None
    ) -> EventsWriter:
        """A writer for one trial's impression/response events.

        ``logging_policy`` (``sampled``, ``deterministic`` or ``unknown``, see
        :mod:`simlab.logged`) is recorded in the trial's manifest entry: it says what the
        ``propensity`` column holds.
        """
        if logging_policy is not None:
            self.manifest["trials"][trial.index]["logging_policy"] = logging_policy
            self.save_manifest()
        return EventsWriter(self.events_folder(trial.index), flush_seconds)

    def events_folder(self, trial: int) -> Path:
        """The folder of one trial's event log."""
        return self.path / EVENTS / f"trial={trial}"

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

    # ------------------------------------------------------------------ reading
    @property
    def status(self) -> str:
        """Manifest status; ``crashed`` for a started run whose writer has gone.

        The directory's lock decides (:func:`simlab.runlock.is_locked`); runs written before
        the lock existed fall back to the recorded pid on this host.
        """
        status = str(self.manifest.get("status"))
        if status not in ("starting", "running"):
            return status
        if self.lock.held:
            return status
        locked = is_locked(self.path)
        if locked is not None:
            return status if locked else "crashed"
        if self.manifest.get("host") == socket.gethostname():
            pid = self.manifest.get("pid")
            if isinstance(pid, int) and not _pid_alive(pid):
                return "crashed"
        return status

    def schema(self) -> pa.Schema:
        """The Arrow schema of the metrics table."""
        fields = [
            pa.field("run_id", pa.string()),
            pa.field("trial", pa.int64()),
            pa.field("agent", pa.string()),
            pa.field("seed", pa.int64()),
            pa.field("step", pa.int64()),
        ]
        trials = self.manifest["trials"]
        for col in self.manifest.get("sweep_columns", []):
            values = [t["params"].get(col) for t in trials]
            try:
                fields.append(pa.field(col, pa.array(values).type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
                raise RunStoreError(
                    f"{self.path / MANIFEST}: corrupt manifest, sweep column {col!r} has "
                    f"values of mixed types in trials[].params ({e})"
                ) from None
        fields += [pa.field(c, pa.float64()) for c in self.manifest["metric_columns"]]
        return pa.schema(fields)

    def read_metrics(self):
        """All metric rows written so far (Parquet parts plus journal rows) as a DataFrame."""
        schema = self.schema()
        parts = sorted((self.path / METRICS).glob("part-*.parquet"))
        tables = []
        for part in parts:
            if not part.is_file():
                raise RunStoreError(f"{part}: expected a Parquet file, found a folder")
            try:
                tables.append(pq.read_table(part, schema=schema))
            except Exception as e:  # pyarrow raises several types for a damaged file
                raise RunStoreError(f"{part}: corrupt metrics part ({e})") from e
        rows = self._journal_rows({p.stem for p in parts})
        if rows:
            tables.append(self._rows_table(rows))
        if not tables:
            return schema.empty_table().to_pandas()
        df = pa.concat_tables(tables).to_pandas()
        return df.sort_values(["trial", "step"], kind="stable").reset_index(drop=True)

    def _rows_table(self, rows: list[dict[str, Any]]) -> pa.Table:
        try:
            return pa.Table.from_pylist(rows, schema=self.schema())
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
            raise RunStoreError(
                f"{self.path / JOURNAL}: a journal row does not fit the metrics table ({e})"
            ) from None

    def _journal_rows(self, done_parts: set[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for j in sorted((self.path / JOURNAL).glob("part-*.jsonl")):
            if j.stem in done_parts:
                continue  # flushed, the journal was just not removed yet
            rows.extend(read_journal(j))
        for r in rows:
            for k, v in r.items():
                if v is None and k in self.manifest["metric_columns"]:
                    r[k] = float("nan")
        return rows

    def recover(self) -> int:
        """Fold leftover journal rows of a stopped run into Parquet; return how many."""
        parts = {p.stem for p in (self.path / METRICS).glob("part-*.parquet")}
        journals = sorted((self.path / JOURNAL).glob("part-*.jsonl"))
        rows = self._journal_rows(parts)
        if rows:
            table = self._rows_table(rows)
            n = len(list((self.path / METRICS).glob("part-recovered-*.parquet")))
            write_parquet(table, self.path / METRICS / f"part-recovered-{n:04d}.parquet")
        for j in journals:
            j.unlink()
        return len(rows)


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


def summarize(df, manifest: dict[str, Any]):
    """Per agent (and sweep point): each metric summarised over steps, then over seeds.

    A metric's step summary is its mean over the steps after the trial's warm-up (the steps
    before its first retrained model serves, ``warmup`` in the manifest's trial records), or
    its last value for cumulative measures (``metric_summary`` in the manifest says which).
    Returns a DataFrame with one row per (agent, sweep point) and, per metric, ``<metric>``
    (mean over seeds) and ``<metric> sd`` (standard deviation over seeds).
    """
    import pandas as pd

    metrics = [c for c in manifest["metric_columns"] if c in df.columns]
    kinds = manifest.get("metric_summary", {})
    sweep = [c for c in manifest.get("sweep_columns", []) if c in df.columns]
    if df.empty:
        return pd.DataFrame(columns=["agent", *sweep, "seeds", "steps", *metrics])
    warmup = {int(t["index"]): int(t.get("warmup", 0)) for t in manifest.get("trials", [])}
    per_trial = []
    for trial, g in df.groupby("trial", sort=True):
        g = g.sort_values("step")
        row = {"trial": trial, "agent": g["agent"].iloc[0], "seed": g["seed"].iloc[0]}
        row["steps"] = len(g)
        row.update({c: g[c].iloc[0] for c in sweep})
        after = g["step"] >= warmup.get(int(trial), 0)
        for c in metrics:
            last = kinds.get(c) == "last"
            col = (g[c] if last else g.loc[after, c]).dropna()
            if col.empty:
                row[c] = float("nan")
            else:
                row[c] = col.iloc[-1] if last else col.mean()
        per_trial.append(row)
    trials = pd.DataFrame(per_trial)
    order = list(dict.fromkeys(trials["agent"]))
    out = []
    keys = ["agent", *sweep]
    for key, g in trials.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key, strict=False))
        row["seeds"] = len(g)
        row["steps"] = int(g["steps"].min())
        for c in metrics:
            row[c] = g[c].mean()
            row[f"{c} sd"] = g[c].std(ddof=0)
        out.append(row)
    res = pd.DataFrame(out)
    # agents, then sweep points, in the scenario's order (the trials' order)
    res["_o"] = res["agent"].map(order.index)
    keys = ["_o"]
    for i, c in enumerate(sweep):
        seen = list(dict.fromkeys(trials.sort_values("trial")[c]))
        res[f"_s{i}"] = res[c].map({v: j for j, v in enumerate(seen)})
        keys.append(f"_s{i}")
    res = res.sort_values(keys, kind="stable")
    return res.drop(columns=keys).reset_index(drop=True)


def _scenario_steps(path: Path) -> int:
    import yaml

    try:
        data = yaml.safe_load((path / SCENARIO).read_text(encoding="utf-8"))
        return int(data["steps"])
    except Exception:  # a corrupt scenario only loses the total, not the listing
        return 0
