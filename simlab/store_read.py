"""Reading a run directory: its status, its metrics table, and recovery of journal rows.

Part of :mod:`simlab.store` (see its docstring for the layout): :class:`RunReader` is the
reading half of :class:`~simlab.store.RunStore`.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from simlab.errors import RunStoreError
from simlab.manifest import JOURNAL, MANIFEST, METRICS
from simlab.rows import read_journal, write_parquet
from simlab.runlock import is_locked

__all__ = ["RunReader"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunReader:
    """Reading a run directory (a mixin of :class:`~simlab.store.RunStore`).

    The host provides ``path``, ``manifest`` and ``lock`` (its
    :class:`~simlab.runlock.RunLock`).
    """

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
