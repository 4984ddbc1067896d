"""The impression/response event log of a trial, journaled like the metric rows.

With ``output.events: true`` each trial writes ``<run>/events/trial=<i>/``: one row per
impression (``step``, ``user_id``, ``position``, ``item_id``, ``clicked``, ``engagement``)
and, when the step's :class:`~simlab.logged.LoggedContext` is given, ``propensity``
(float64), ``user_features`` (``f`` float32) and ``item_features`` (``d`` float32) as
fixed-size lists (what ``simlab export`` turns into offline datasets).
Every finished step's rows are appended at once to the trial's journal, an Arrow IPC stream
``_journal-<seq>.arrows`` (the leading ``_`` hides it from Parquet readers), and buffered
rows become the Parquet part ``part-<seq>.parquet`` every ``flush_seconds`` and when the
trial ends; the part is written before its journal is removed. A run killed mid-way thus
keeps every finished step's events, and :func:`recover_events` (run by ``simlab resume``)
folds journals into Parquet and drops the rows of steps the metrics do not have yet (the
step in flight), which the resumed trial writes again: the log ends as an uninterrupted
run's, with no row lost or written twice. Part numbers continue after those on disk, so a
resumed trial never overwrites an earlier part.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from simlab.errors import RunStoreError
from simlab.rows import write_parquet

__all__ = ["EVENT_SCHEMA", "EventsWriter", "recover_events", "read_journal"]

EVENT_SCHEMA = pa.schema(
    [
        ("step", pa.int64()),
        ("user_id", pa.int64()),
        ("position", pa.int64()),
        ("item_id", pa.int64()),
        ("clicked", pa.bool_()),
        ("engagement", pa.float32()),
    ]
)
_PART = re.compile(r"^part-(\d+)\.parquet$")
_JOURNAL = re.compile(r"^_journal-(\d+)\.arrows$")


def _seqs(folder: Path) -> tuple[list[int], list[int]]:
    """Part numbers of the Parquet parts and of the journals in ``folder``."""
    parts, journals = [], []
    if folder.is_dir():
        for p in folder.iterdir():
            if m := _PART.match(p.name):
                parts.append(int(m.group(1)))
            elif m := _JOURNAL.match(p.name):
                journals.append(int(m.group(1)))
    return sorted(parts), sorted(journals)


class EventsWriter:
    """Journals each step's impressions and writes them as Parquet parts."""

    def __init__(self, folder: Path, flush_seconds: float) -> None:
        self.folder = folder
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunStoreError(f"{folder}: cannot create the event log folder ({e})") from e
        self.flush_seconds = flush_seconds
        self._chunks: list[pa.RecordBatch] = []
        parts, journals = _seqs(folder)
        self._seq = max([-1, *parts, *journals]) + 1  # after the parts of an earlier attempt
        self._last_flush = time.monotonic()
        self._sink: Any = None
        self._stream: Any = None

    def _journal_path(self) -> Path:
        return self.folder / f"_journal-{self._seq:06d}.arrows"

    def add(self, feedback: Any, logged: Any = None) -> None:
        """Journal and buffer one step's feedback (and logged context), a row per impression."""
        batch = _batch(feedback, logged)
        if self._stream is None:
            self._sink = pa.OSFile(str(self._journal_path()), "wb")
            self._stream = pa.ipc.new_stream(self._sink, batch.schema)
        self._stream.write_batch(batch)
        self._sink.flush()
        self._chunks.append(batch)
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def _close_journal(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._sink.close()
            self._stream = self._sink = None

    def flush(self) -> None:
        """Write the buffered events as one Parquet part and drop its journal."""
        self._last_flush = time.monotonic()
        if not self._chunks:
            return
        write_parquet(pa.Table.from_batches(self._chunks), self.folder / self._part_name())
        self._close_journal()
        self._journal_path().unlink(missing_ok=True)
        self._chunks = []
        self._seq += 1

    def _part_name(self) -> str:
        return f"part-{self._seq:06d}.parquet"

    def close(self) -> None:
        """Flush what is left."""
        self.flush()
        self._close_journal()


def _fixed_lists(values: np.ndarray) -> pa.FixedSizeListArray:
    """``(n, m)`` values as a fixed-size list column of ``m`` entries per row."""
    flat = pa.array(np.ascontiguousarray(values).ravel())
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def _batch(feedback: Any, logged: Any) -> pa.RecordBatch:
    """One step's impressions as a record batch (the base columns, then the logged ones)."""
    b, k = feedback.slates.shape
    pos = np.tile(np.arange(k, dtype=np.int64), b)
    clicked = np.repeat(feedback.clicked_pos, k) == pos
    columns: list[Any] = [
        np.full(b * k, feedback.step, np.int64),
        np.repeat(np.asarray(feedback.user_ids, np.int64), k),
        pos,
        np.ascontiguousarray(feedback.slates, np.int64).ravel(),
        clicked,
        np.where(clicked, np.repeat(feedback.engagement, k), 0.0).astype(np.float32),
    ]
    names = list(EVENT_SCHEMA.names)
    if logged is not None:
        items = np.asarray(logged.item_features, np.float32)
        columns += [
            pa.array(np.ascontiguousarray(logged.propensity, np.float64).ravel()),
            _fixed_lists(np.repeat(np.asarray(logged.user_features, np.float32), k, axis=0)),
            _fixed_lists(items.reshape(b * k, items.shape[-1])),  # (no -1: b may be 0)
        ]
        names += ["propensity", "user_features", "item_features"]
    return pa.record_batch(columns, names=names)


def _is_event_schema(schema: pa.Schema) -> bool:
    """Whether ``schema`` starts with the base event columns (logged ones may follow)."""
    return list(schema)[: len(EVENT_SCHEMA)] == list(EVENT_SCHEMA)


def read_journal(path: Path) -> pa.Table:
    """The complete record batches of an event journal (a batch cut by a kill is dropped)."""
    batches = []
    schema = EVENT_SCHEMA
    try:
        reader = pa.ipc.open_stream(pa.OSFile(str(path), "rb"))
        schema = reader.schema
        if not _is_event_schema(schema):
            raise RunStoreError(f"{path}: not an event journal (schema {reader.schema})")
        while True:
            try:
                batches.append(reader.read_next_batch())
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError):
                break  # the last batch was cut by a kill
    except pa.ArrowInvalid:
        pass  # cut before its schema was complete: no step in it
    except OSError as e:
        raise RunStoreError(f"{path}: cannot read event journal ({e})") from e
    return pa.Table.from_batches(batches, schema=schema)


def read_part(path: Path) -> pa.Table:
    """One Parquet part of an event log, checked: a file, readable, with the event columns."""
    if not path.is_file():
        raise RunStoreError(f"{path}: expected a Parquet file, found a folder")
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise RunStoreError(f"{path}: corrupt event log part ({e})") from e
    if not _is_event_schema(table.schema):
        raise RunStoreError(f"{path}: not an event log part (columns {table.schema.names})")
    return table


def _max_step(path: Path) -> int:
    """The largest step in a Parquet part (from its statistics when it has them)."""
    try:
        meta = pq.ParquetFile(path).metadata
        col = meta.schema.names.index("step")
        stats = [meta.row_group(g).column(col).statistics for g in range(meta.num_row_groups)]
        if all(s is not None and s.has_min_max for s in stats):
            return max((int(s.max) for s in stats), default=-1)
    except Exception:  # noqa: BLE001, S110 - fall back to reading the column
        pass
    steps = read_part(path).column("step").to_numpy()
    return int(steps.max()) if steps.size else -1


def recover_events(folder: Path, done: int) -> int:
    """Fold a stopped trial's event journals into Parquet, keeping only steps ``< done``.

    ``done`` is the number of the trial's steps whose metric rows are on disk; rows of
    later steps (the step in flight) are dropped, so the resumed trial writes them once.
    Returns the number of rows kept from journals.
    """
    if not folder.exists():
        return 0
    if not folder.is_dir():
        raise RunStoreError(f"{folder}: expected a folder, found a file")
    parts, journals = _seqs(folder)
    seq = max([-1, *parts, *journals]) + 1
    kept = 0
    for n in parts:
        path = folder / f"part-{n:06d}.parquet"
        if _max_step(path) >= done:  # a part flushed while the step in flight was buffered
            table = read_part(path)
            table = table.filter(pc.less(table.column("step"), done))
            write_parquet(table, path)
    # a journal next to its own part was flushed; only its removal was cut by the kill
    tables = [read_journal(folder / f"_journal-{n:06d}.arrows") for n in journals if n not in parts]
    table = pa.concat_tables(tables) if tables else EVENT_SCHEMA.empty_table()
    table = table.filter(pc.less(table.column("step"), done))
    if table.num_rows:
        write_parquet(table, folder / f"part-{seq:06d}.parquet")
        kept = table.num_rows
    for n in journals:
        (folder / f"_journal-{n:06d}.arrows").unlink(missing_ok=True)
    return kept
