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

Each part records the steps it holds, ``first`` to ``last`` (its schema metadata
``simlab.steps``; steps without impressions count: their part may have no rows), and each
journal batch its step (its custom metadata). :func:`log_problem` checks that a trial's parts
hold every step from where its log starts (the manifest's ``events_from``) to its last metric
row once each, so a lost or repeated part is found (``simlab export`` refuses it, ``simlab
resume`` recomputes it). Parts of older simlab versions lack the range and are not checked.
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

__all__ = ["EVENT_SCHEMA", "EventsWriter", "log_problem", "recover_events", "read_journal"]

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
_STEPS = b"simlab.steps"
"""A part's schema metadata key: ``b"<first> <last>"``, the steps it holds."""


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
        self._steps: list[int] = []  # the steps of the buffered chunks
        parts, journals = _seqs(folder)
        self.is_new = not parts and not journals  # no earlier attempt wrote this trial's log
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
        self._stream.write_batch(batch, custom_metadata={"step": str(feedback.step)})
        self._sink.flush()
        self._chunks.append(batch)
        self._steps.append(int(feedback.step))
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
        table = _with_steps(pa.Table.from_batches(self._chunks), self._steps)
        write_parquet(table, self.folder / self._part_name())
        self._close_journal()
        self._journal_path().unlink(missing_ok=True)
        self._chunks, self._steps = [], []
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


def _with_steps(table: pa.Table, steps: list[int] | None) -> pa.Table:
    """``table`` recording that it holds ``steps`` (None: unknown, no range recorded)."""
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != _STEPS}
    if steps:
        meta[_STEPS] = f"{min(steps)} {max(steps)}".encode()
    return table.replace_schema_metadata(meta or None)


def part_steps(path: Path) -> tuple[int, int] | None:
    """``(first, last)`` step a part holds, or None for a part of an older simlab."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise RunStoreError(f"{path}: corrupt event log part ({e})") from e
    if _STEPS not in meta:
        return None
    try:
        first, last = (int(v) for v in meta[_STEPS].split())
    except ValueError:
        raise RunStoreError(f"{path}: corrupt event log part (steps {meta[_STEPS]!r})") from None
    return first, last


def read_journal(path: Path) -> pa.Table:
    """The complete record batches of an event journal (a batch cut by a kill is dropped)."""
    return _journal_steps(path)[0]


def _journal_steps(path: Path) -> tuple[pa.Table, list[int] | None]:
    """:func:`read_journal` and the step of each batch (None: a journal of an older simlab)."""
    batches = []
    steps: list[int] | None = []
    schema = EVENT_SCHEMA
    try:
        reader = pa.ipc.open_stream(pa.OSFile(str(path), "rb"))
        schema = reader.schema
        if not _is_event_schema(schema):
            raise RunStoreError(f"{path}: not an event journal (schema {reader.schema})")
        while True:
            try:
                batch, meta = reader.read_next_batch_with_custom_metadata()
                batches.append(batch)
                if steps is not None and meta is not None and b"step" in meta:
                    steps.append(int(meta[b"step"]))
                else:
                    steps = None
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError):
                break  # the last batch was cut by a kill
    except pa.ArrowInvalid:
        pass  # cut before its schema was complete: no step in it
    except OSError as e:
        raise RunStoreError(f"{path}: cannot read event journal ({e})") from e
    return pa.Table.from_batches(batches, schema=schema), steps


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
    A part left holding no step is removed. Returns the number of rows kept from journals.
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
        held = part_steps(path)
        last = held[1] if held is not None else _max_step(path)
        if last < done:
            continue
        if held is not None and held[0] >= done:  # every step of it is to be written again
            path.unlink()
            continue
        # a part flushed while the step in flight was buffered
        table = read_part(path)
        table = table.filter(pc.less(table.column("step"), done))
        write_parquet(_with_steps(table, held and [held[0], done - 1]), path)
    # a journal next to its own part was flushed; only its removal was cut by the kill
    tables, steps = [], []
    for n in journals:
        if n not in parts:
            table, held_steps = _journal_steps(folder / f"_journal-{n:06d}.arrows")
            tables.append(table)
            steps = None if steps is None or held_steps is None else steps + held_steps
    table = pa.concat_tables(tables) if tables else EVENT_SCHEMA.empty_table()
    table = table.filter(pc.less(table.column("step"), done))
    steps = steps if steps is None else [t for t in steps if t < done]
    if table.num_rows or steps:
        write_parquet(_with_steps(table, steps), folder / f"part-{seq:06d}.parquet")
        kept = table.num_rows
    for n in journals:
        (folder / f"_journal-{n:06d}.arrows").unlink(missing_ok=True)
    return kept


def _span(first: int, last: int) -> str:
    return f"step {first}" if first == last else f"steps {first}..{last}"


def log_problem(folder: Path, start: int | None, done: int) -> tuple[int, str] | None:
    """The first step a trial's event log lacks or holds twice, with what is wrong.

    The parts in ``folder`` must hold steps ``start`` (where the trial's log starts; None:
    the first part's first step) to ``done - 1`` once each. None when they do, or when a part
    lacks its step range (written by an older simlab: nothing to check against).
    Journals are not read (fold them in first: :func:`recover_events`).
    """
    parts, _ = _seqs(folder)
    spans = []
    for n in parts:
        held = part_steps(folder / f"part-{n:06d}.parquet")
        if held is None:
            return None
        spans.append(held)
    spans.sort()
    begin = start if start is not None else spans[0][0] if spans else None
    if begin is None:
        return None
    expect = begin
    for first, last in spans:
        if first > expect:
            return expect, f"has no events for {_span(expect, first - 1)} (a lost part)"
        if first < expect:
            return first, f"has the events of step {first} twice (a part written twice)"
        expect = last + 1
    if expect < done:
        return expect, (
            f"has events up to step {expect - 1} of the {done} steps its metric rows have "
            "(its last part lost)"
            if expect > begin
            else f"has no events for {_span(expect, done - 1)} (its parts lost)"
        )
    return None
