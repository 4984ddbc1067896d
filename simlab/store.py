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
``running``, ``completed``, ``failed`` or ``interrupted``; a ``running`` run whose process
is gone is reported as ``crashed``.
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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simlab.errors import RunStoreError

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
MANIFEST = "manifest.json"
SCENARIO = "scenario.yaml"
METRICS = "metrics.parquet"
JOURNAL = "metrics.journal"
EVENTS = "events"
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

    out = {
        "simlab": simlab.__version__,
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
        """Create ``<parent>/<run-id>/`` with the scenario and a ``running`` manifest."""
        parent = Path(parent)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        run_id = run_id or f"{scenario_name}-{stamp}-{secrets.token_hex(2)}"
        path = parent / run_id
        try:
            path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise RunStoreError(f"{path}: run directory already exists") from None
        except OSError as e:
            raise RunStoreError(f"{path}: cannot create run directory ({e})") from e
        (path / METRICS).mkdir()
        (path / JOURNAL).mkdir()
        _atomic_write(path / SCENARIO, scenario_yaml)
        manifest = {
            "run_id": run_id,
            "scenario": scenario_name,
            "status": "running",
            "created": _now(),
            "started": _now(),
            "ended": None,
            "error": None,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "versions": _versions(),
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
        store.save_manifest()
        return store

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
        """Mark the run ``completed``, ``failed`` or ``interrupted``."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"Expects a final status in {FINAL_STATUSES}, actual value: {status}")
        self.manifest.update(status=status, ended=_now(), error=error)
        self.save_manifest()

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
        return EventsWriter(self.path / EVENTS / f"trial={trial.index}", flush_seconds)

    # ------------------------------------------------------------------ reading
    @property
    def status(self) -> str:
        """Manifest status; ``crashed`` for a ``running`` run whose process has gone."""
        status = str(self.manifest.get("status"))
        if status == "running" and self.manifest.get("host") == socket.gethostname():
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
            fields.append(pa.field(col, pa.array(values).type))
        fields += [pa.field(c, pa.float64()) for c in self.manifest["metric_columns"]]
        return pa.schema(fields)

    def read_metrics(self):
        """All metric rows written so far (Parquet parts plus journal rows) as a DataFrame."""
        schema = self.schema()
        parts = sorted((self.path / METRICS).glob("part-*.parquet"))
        tables = []
        for part in parts:
            try:
                tables.append(pq.read_table(part, schema=schema))
            except Exception as e:  # pyarrow raises several types for a damaged file
                raise RunStoreError(f"{part}: corrupt metrics part ({e})") from e
        rows = self._journal_rows({p.stem for p in parts})
        if rows:
            tables.append(pa.Table.from_pylist(rows, schema=schema))
        if not tables:
            return schema.empty_table().to_pandas()
        df = pa.concat_tables(tables).to_pandas()
        return df.sort_values(["trial", "step"], kind="stable").reset_index(drop=True)

    def _journal_rows(self, done_parts: set[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for j in sorted((self.path / JOURNAL).glob("part-*.jsonl")):
            if j.stem in done_parts:
                continue  # flushed, the journal was just not removed yet
            with open(j, encoding="utf-8") as f:
                for line in f:
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        break  # a line cut by a kill: everything before it is intact
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
            table = pa.Table.from_pylist(rows, schema=self.schema())
            n = len(list((self.path / METRICS).glob("part-recovered-*.parquet")))
            _write_parquet(table, self.path / METRICS / f"part-recovered-{n:04d}.parquet")
        for j in journals:
            j.unlink()
        return len(rows)


def _write_parquet(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _clean(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if np.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _next_seq(path: Path, trial: int) -> int:
    """The first part number of ``trial`` not used by a part or journal in ``path``."""
    used = [-1]
    for folder, suffix in ((METRICS, ".parquet"), (JOURNAL, ".jsonl")):
        for p in (path / folder).glob(f"part-{trial:05d}-*{suffix}"):
            tail = p.name[len(f"part-{trial:05d}-") : -len(suffix)]
            if tail.isdigit():
                used.append(int(tail))
    return max(used) + 1


class MetricsWriter:
    """Streams one trial's metric rows: journal per step, Parquet part per flush."""

    def __init__(self, store: RunStore, trial: TrialInfo, flush_seconds: float) -> None:
        self.store = store
        self.trial = trial
        self.flush_seconds = flush_seconds
        self.schema = store.schema()
        self._buffer: list[dict[str, Any]] = []
        self._seq = _next_seq(store.path, trial.index)  # after parts of an earlier attempt
        self._last_flush = time.monotonic()
        self._journal = None
        # steps already on disk (a resumed or restored trial continues after them)
        trials = store.manifest.get("trials", [])
        record = trials[trial.index] if 0 <= trial.index < len(trials) else {}
        self.steps_done = int(record.get("steps_done", 0))

    def _name(self) -> str:
        return f"part-{self.trial.index:05d}-{self._seq:06d}"

    def add(self, step: int, metrics: dict[str, float]) -> None:
        """Append one finished step's row."""
        t = self.trial
        row = {"run_id": self.store.run_id, "trial": t.index, "agent": t.agent, "seed": t.seed}
        row["step"] = int(step)
        row.update(t.params)
        row.update({k: _clean(v) for k, v in metrics.items()})
        if self._journal is None:
            self._journal = open(self.store.path / JOURNAL / f"{self._name()}.jsonl", "a")  # noqa: SIM115
        self._journal.write(json.dumps(row) + "\n")
        self._journal.flush()
        self._buffer.append(row)
        self.steps_done = int(step) + 1
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows as a Parquet part and drop their journal."""
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        name = self._name()
        table = pa.Table.from_pylist(self._buffer, schema=self.schema)
        _write_parquet(table, self.store.path / METRICS / f"{name}.parquet")
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        (self.store.path / JOURNAL / f"{name}.jsonl").unlink(missing_ok=True)
        self._buffer = []
        self._seq += 1
        self.store.trial_status(self.trial.index, "running", self.steps_done)

    def close(self) -> None:
        """Flush what is left."""
        self.flush()
        if self._journal is not None:
            self._journal.close()
            self._journal = None


def _fixed_lists(values: np.ndarray) -> pa.FixedSizeListArray:
    """``(n, m)`` values as a fixed-size list column of ``m`` entries per row."""
    flat = pa.array(np.ascontiguousarray(values).ravel())
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


class EventsWriter:
    """Buffers impressions and responses and writes them as Parquet parts.

    One row per impression: ``step``, ``user_id``, ``position``, ``item_id``, ``clicked``,
    ``engagement`` and, when the step's :class:`~simlab.logged.LoggedContext` is given,
    ``propensity`` (float64), ``user_features`` (``f`` float32) and ``item_features``
    (``d`` float32) as fixed-size lists.
    """

    def __init__(self, folder: Path, flush_seconds: float) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.flush_seconds = flush_seconds
        self._chunks: list[dict[str, np.ndarray]] = []
        self._seq = 0
        self._last_flush = time.monotonic()

    def add(self, feedback, logged=None) -> None:
        """Buffer one step's feedback (and its logged context) as one row per impression."""
        b, k = feedback.slates.shape
        pos = np.tile(np.arange(k, dtype=np.int64), b)
        chunk = {
            "step": np.full(b * k, feedback.step, np.int64),
            "user_id": np.repeat(feedback.user_ids, k),
            "position": pos,
            "item_id": np.ascontiguousarray(feedback.slates).ravel(),
            "clicked": np.repeat(feedback.clicked_pos, k) == pos,
            "engagement": np.where(
                np.repeat(feedback.clicked_pos, k) == pos,
                np.repeat(feedback.engagement, k),
                0.0,
            ).astype(np.float32),
        }
        if logged is not None:
            chunk["propensity"] = np.ascontiguousarray(logged.propensity, np.float64).ravel()
            chunk["user_features"] = np.repeat(logged.user_features, k, axis=0)
            chunk["item_features"] = logged.item_features.reshape(b * k, -1)
        self._chunks.append(chunk)
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write buffered events as one Parquet part."""
        self._last_flush = time.monotonic()
        if not self._chunks:
            return
        cols = {k: np.concatenate([c[k] for c in self._chunks]) for k in self._chunks[0]}
        arrays = {k: _fixed_lists(v) if v.ndim == 2 else pa.array(v) for k, v in cols.items()}
        _write_parquet(pa.table(arrays), self.folder / f"part-{self._seq:06d}.parquet")
        self._chunks = []
        self._seq += 1

    def close(self) -> None:
        """Flush what is left."""
        self.flush()


# ---------------------------------------------------------------------- reading runs
def open_run(path: str | Path, runs_dir: str | Path | None = None) -> RunStore:
    """Open a run directory (a path, or a run id under ``runs_dir``) for reading.

    Raises:
        RunStoreError: the directory is missing or is not a readable run.
    """
    p = Path(path)
    if not p.exists() and runs_dir is not None and (Path(runs_dir) / str(path)).exists():
        p = Path(runs_dir) / str(path)
    if not p.is_dir():
        raise RunStoreError(f"{path}: no such run directory")
    mpath = p / MANIFEST
    if not mpath.exists():
        raise RunStoreError(f"{p}: not a run directory (no {MANIFEST})")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunStoreError(f"{mpath}: corrupt manifest ({e})") from None
    required = ("run_id", "status", "trials", "metric_columns")
    missing = [k for k in required if not isinstance(manifest, dict) or k not in manifest]
    if missing:
        raise RunStoreError(f"{mpath}: corrupt manifest, missing {', '.join(missing)}")
    malformed = []
    trials = manifest["trials"]
    if not isinstance(trials, list) or not all(isinstance(t, dict) for t in trials):
        malformed.append("trials (expected a list of trial records)")
    if not isinstance(manifest["metric_columns"], list):
        malformed.append("metric_columns (expected a list of column names)")
    if malformed:
        raise RunStoreError(f"{mpath}: corrupt manifest, malformed {'; '.join(malformed)}")
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
    if not parent.is_dir():
        return []
    out = []
    for p in sorted(parent.iterdir()):
        if not p.is_dir() or p.name.startswith("."):
            continue
        try:
            run = open_run(p)
        except RunStoreError as e:
            out.append(RunSummary(p.name, "corrupt", "?", [], [], 0, 0, "", p, str(e)))
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
        row = {"agent": g["agent"].iloc[0], "seed": g["seed"].iloc[0], "steps": len(g)}
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
    res["_o"] = res["agent"].map(order.index)
    return res.sort_values(["_o", *sweep], kind="stable").drop(columns="_o").reset_index(drop=True)


def _scenario_steps(path: Path) -> int:
    import yaml

    try:
        data = yaml.safe_load((path / SCENARIO).read_text(encoding="utf-8"))
        return int(data["steps"])
    except Exception:  # a corrupt scenario only loses the total, not the listing
        return 0
