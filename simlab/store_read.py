"""Reading a run directory: its status, its checked metrics table, and repairs of its rows.

The table's rows are checked (each trial's steps 0, 1, 2, ... once, of trials the manifest
lists); journal rows of a stopped run are folded into Parquet, and a damaged trial's rows are
dropped from its first bad step for ``simlab resume`` to recompute.

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
from simlab.manifest import EVENTS, JOURNAL, MANIFEST, METRICS
from simlab.rows import read_journal, write_parquet
from simlab.runlock import is_locked

__all__ = ["RunReader", "step_problems"]


def step_problems(df) -> dict[int, tuple[int, str]]:
    """Trials whose rows are not steps 0, 1, 2, ... once each: ``trial -> (step, what)``.

    A lost metrics part leaves a gap (rows after a missing step); a part written twice
    repeats steps. ``step`` is the trial's first bad step: its rows from there on are the
    ones to drop and recompute; ``what`` says what is wrong there.
    """
    import numpy as np

    if df.empty:
        return {}
    trial, step = df["trial"].to_numpy(np.int64), df["step"].to_numpy(np.int64)
    order = np.lexsort((step, trial))
    trial, step = trial[order], step[order]
    first = np.r_[True, trial[1:] != trial[:-1]]
    starts = np.flatnonzero(first)
    pos = np.arange(trial.size) - np.repeat(starts, np.diff(np.r_[starts, trial.size]))
    bad = np.flatnonzero(step != pos)
    out: dict[int, tuple[int, str]] = {}
    for i in bad[np.unique(trial[bad], return_index=True)[1]]:  # each trial's first
        p, s = int(pos[i]), int(step[i])
        if s < 0:
            out[int(trial[i])] = (0, f"has a row for step {s}")
        elif s < p:  # sorted: a repeat of the step before
            out[int(trial[i])] = (s, f"has step {s} twice")
        else:
            missing = f"{p}" if s == p + 1 else f"{p}-{s - 1}"
            out[int(trial[i])] = (p, f"has no rows for step {missing} but rows after it")
    return out


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

    def read_metrics(self, strict: bool = True):
        """All metric rows written so far (Parquet parts plus journal rows) as a DataFrame.

        Rows of a trial the manifest does not list (or of another agent or seed) are refused.
        ``strict``: so is a run, not being written, whose trial's rows are not steps 0, 1,
        2, ... once each (:func:`step_problems`; ``simlab resume`` repairs it).
        """
        schema = self.schema()
        parts = sorted((self.path / METRICS).glob("part-*.parquet"))
        tables = []
        for part in parts:
            if not part.is_file():
                raise RunStoreError(f"{part}: expected a Parquet file, found a folder")
            try:
                file = pq.ParquetFile(part)
                lacking = [n for n in schema.names if n not in file.schema_arrow.names]
                table = None if lacking else file.read(columns=schema.names).cast(schema)
            except Exception as e:  # pyarrow raises several types for a damaged file
                raise RunStoreError(f"{part}: corrupt metrics part ({e})") from e
            if table is None:  # (read as nulls, a lost column would pass for unmeasured)
                raise RunStoreError(
                    f"{part}: lacks the column(s) {', '.join(lacking)} of the manifest (a "
                    "metrics part from another run, or an edited manifest?)"
                )
            tables.append(table)
        rows = self._journal_rows({p.stem for p in parts})
        if rows:
            tables.append(self._rows_table(rows))
        if not tables:
            return schema.empty_table().to_pandas()
        df = pa.concat_tables(tables).to_pandas()
        df = df.sort_values(["trial", "step"], kind="stable").reset_index(drop=True)
        self._check_trials(df)
        if strict and self.status not in ("starting", "running"):  # (a live run is mid-write)
            damaged = self.row_problems(df)
            if damaged:
                raise RunStoreError(self._damage_message(damaged))
        return df

    def damaged_steps(self) -> dict[int, tuple[int, str]]:
        """:meth:`row_problems` of this run's rows (what ``simlab resume`` recomputes)."""
        return self.row_problems(self.read_metrics(strict=False))

    def event_problems(self) -> dict[int, tuple[int, str]]:
        """Trials whose event log lacks or repeats a step of their metric rows.

        ``trial -> (step, what)`` over the steps the manifest records (journals are not
        read: a stopped run's are folded by resume).
        """
        out = {}
        for i, record in enumerate(self.manifest["trials"]):
            found = self.event_problem(i, int(record.get("steps_done", 0)))
            if found is not None:
                out[i] = found
        return out

    def event_problem(self, trial: int, done: int) -> tuple[int, str] | None:
        """:func:`simlab.events.log_problem` of a trial's log over steps before ``done``.

        None for a trial with no recorded log start (no event log, or an older simlab's).
        """
        from simlab.events import log_problem

        start = self.manifest["trials"][trial].get("events_from")
        if start is None:
            return None
        return log_problem(self.path / EVENTS / f"trial={trial}", start, done)

    def row_problems(self, df) -> dict[int, tuple[int, str]]:
        """:func:`step_problems` of ``df``, and :meth:`short_trials` where it finds none."""
        return self.short_trials(df) | step_problems(df)

    def short_trials(self, df) -> dict[int, tuple[int, str]]:
        """Completed trials with fewer rows than the manifest records: their last part lost.

        ``trial -> (rows, what)``; the steps from ``rows`` on are the ones to recompute.
        """
        counts = df["trial"].value_counts() if len(df) else {}
        out = {}
        for i, record in enumerate(self.manifest["trials"]):
            n, want = int(counts.get(i, 0)), int(record.get("steps_done", 0))
            if record.get("status") == "completed" and n < want:
                out[i] = (n, f"has rows for {n} of the {want} steps its manifest records")
        return out

    def _check_trials(self, df) -> None:
        """Refuse rows of a trial the manifest does not list, or of another agent or seed."""
        trials = self.manifest["trials"]
        for t, agent, seed in (
            df[["trial", "agent", "seed"]].drop_duplicates().itertuples(index=False)
        ):
            record = trials[t] if 0 <= t < len(trials) else None
            if record is None or (record["agent"], record["seed"]) != (agent, seed):
                listed = "not in the manifest"
                if record is not None:
                    listed = f"the manifest's is {record['agent']}, seed {record['seed']}"
                raise RunStoreError(
                    f"{self.path / METRICS}: rows of trial {t} ({agent}, seed {seed}), "
                    f"{listed} (a metrics part from another run?)"
                )

    def _damage_message(self, damaged: dict[int, tuple[int, str]]) -> str:
        trials = self.manifest["trials"]
        said = [
            f"trial {t} ({trials[t]['agent']}, seed {trials[t]['seed']}) {what}"
            for t, (_, what) in list(damaged.items())[:3]
        ]
        more = f"; and {len(damaged) - 3} more trials" if len(damaged) > 3 else ""
        return (
            f"{self.path / METRICS}: {'; '.join(said)}{more} (a metrics part lost or written "
            f"twice?); `simlab resume {self.path}` drops such a trial's rows from that step "
            "on and recomputes them"
        )

    def drop_rows(self, from_step: dict[int, int]) -> int:
        """Delete the metric rows of each trial ``t`` from step ``from_step[t]`` on.

        Parts are rewritten through temporary names (a kill leaves each part whole); the
        journal must already be folded in (:meth:`recover`). Returns the rows dropped.
        """
        import numpy as np

        cut = np.full(max(from_step, default=-1) + 1, np.iinfo(np.int64).max)
        cut[list(from_step)] = list(from_step.values())
        dropped = 0
        for part in sorted((self.path / METRICS).glob("part-*.parquet")):
            table = pq.read_table(part, schema=self.schema())
            trial, step = (table[c].to_numpy() for c in ("trial", "step"))
            inside = (trial >= 0) & (trial < cut.size)
            drop = np.zeros(trial.size, bool)
            drop[inside] = step[inside] >= cut[trial[inside]]
            if not drop.any():
                continue
            dropped += int(drop.sum())
            if drop.all():
                part.unlink()
            else:
                write_parquet(table.filter(pa.array(~drop)), part)
        return dropped

    def steps_on_disk(self, trial: int) -> int:
        """``n``: the trial's steps ``0 .. n - 1`` are on disk, in Parquet or its journal.

        Reads only that trial's parts and journals (and the ``part-recovered-*`` parts of
        earlier repairs), the ``trial`` and ``step`` columns: cheap enough for recording where
        an interrupted trial stopped. A step missing or repeated ends the count there.
        """
        import numpy as np

        stem = f"part-{trial:05d}-"
        parts = sorted((self.path / METRICS).glob(f"{stem}*.parquet"))
        recovered = sorted((self.path / METRICS).glob("part-recovered-*.parquet"))
        steps = []
        for part in parts + recovered:
            table = pq.read_table(part, columns=["trial", "step"])
            mask = table["trial"].to_numpy() == trial
            steps.append(table["step"].to_numpy()[mask])
        done = {p.stem for p in parts}
        for journal in sorted((self.path / JOURNAL).glob(f"{stem}*.jsonl")):
            if journal.stem not in done:
                steps.append(np.array([r["step"] for r in read_journal(journal)], np.int64))
        found = np.sort(np.concatenate(steps)) if steps else np.zeros(0, np.int64)
        wrong = np.flatnonzero(found != np.arange(found.size))
        return int(wrong[0]) if wrong.size else int(found.size)

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
