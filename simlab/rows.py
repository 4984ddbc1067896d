"""Metric rows of a trial: the per-step journal and the Parquet parts it is flushed into.

:class:`MetricsWriter` appends each finished step's row to the trial's journal
(``metrics.journal/part-<trial>-<seq>.jsonl``, one JSON line per step) at once and turns
buffered rows into the Parquet part ``metrics.parquet/part-<trial>-<seq>.parquet`` every
``flush_seconds`` and when the trial ends (the part is written before its journal is
removed). :func:`read_journal` reads a journal back strictly: a last line cut by a kill is
dropped, anything else that is not a metric row is a :class:`~simlab.errors.RunStoreError`
naming the file and line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from simlab.atomic import replacing
from simlab.errors import RunStoreError
from simlab.manifest import JOURNAL, METRICS

if TYPE_CHECKING:
    from simlab.store_write import TrialInfo

__all__ = ["MetricsWriter", "read_journal", "write_parquet"]


class _RunFolder(Protocol):
    """What a :class:`MetricsWriter` uses of its :class:`~simlab.store.RunStore`.

    (A protocol, so that this module, which the store imports, does not import the store.)
    """

    path: Path
    manifest: dict[str, Any]

    @property
    def run_id(self) -> str:
        """The run id."""

    def schema(self) -> pa.Schema:
        """The Arrow schema of the metrics table."""

    def trial_status(self, index: int, status: str, steps_done: int | None = None) -> None:
        """Record a trial's status (and steps done) in the manifest."""


_ID_TYPES = {"run_id": str, "trial": int, "agent": str, "seed": int, "step": int}


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The rows of one metrics journal; a last line cut by a kill is dropped."""
    if not path.is_file():
        raise RunStoreError(f"{path}: expected a journal file, found a folder")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise RunStoreError(f"{path}: cannot read metrics journal ({e})") from None
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            if n == len(lines):  # the last line, cut by a kill: everything before is intact
                break
            raise RunStoreError(f"{path}:{n}: corrupt journal line (not JSON)") from None
        problem = _row_problem(row)
        if problem:
            raise RunStoreError(f"{path}:{n}: not a metric row ({problem})")
        rows.append(row)
    return rows


def _row_problem(row: Any) -> str | None:
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    for key, kind in _ID_TYPES.items():
        value = row.get(key)
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"{key} should be {kind.__name__}, got {str(value)[:40]!r}"
    if row["step"] < 0 or row["trial"] < 0:
        return "negative trial or step"
    return None


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` through a temporary name (a kill leaves no half part).

    A write that fails (a full disk) removes its temporary file.
    """
    with replacing(path, path.with_name(f".{path.name}.tmp")) as tmp:
        pq.write_table(table, tmp)


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

    def __init__(self, store: _RunFolder, trial: TrialInfo, flush_seconds: float) -> None:
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
        write_parquet(table, self.store.path / METRICS / f"{name}.parquet")
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
