"""``simlab runs``, ``show`` and ``report``: the commands that read run directories.

Part of :mod:`simlab.cli`, with the summary table that ``simlab run`` prints at the end.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from simlab.cli_parser import EXIT_OK
from simlab.errors import SimlabError

__all__ = ["cmd_runs", "cmd_show", "cmd_report"]


def cmd_runs(args: argparse.Namespace, out: Console) -> int:
    """``simlab runs``."""
    from simlab.store import list_runs

    runs = list_runs(args.dir)
    if not runs:
        out.print(f"no run directories under {args.dir}")
        return EXIT_OK
    table = Table(title=f"runs in {args.dir}")
    # the run id is what `simlab show` takes: never cut it
    table.add_column("run", no_wrap=True, min_width=max(len(r.run_id) for r in runs))
    for col in ("status", "scenario", "agents", "seeds", "steps", "started (UTC)"):
        table.add_column(col)
    colors = {"completed": "green", "running": "cyan", "failed": "red", "crashed": "red"}
    for r in runs:
        status = f"[{colors.get(r.status, 'yellow')}]{r.status}[/]"
        if r.problem:
            table.add_row(r.run_id, status, "", "", "", "", r.problem)
            continue
        table.add_row(
            r.run_id,
            status,
            r.scenario,
            ", ".join(r.agents),
            str(len(r.seeds)),
            f"{r.steps_done}/{r.steps_total}",
            r.started.replace("T", " ")[:19],
        )
    out.print(table)
    return EXIT_OK


def cmd_show(args: argparse.Namespace, out: Console) -> int:
    """``simlab show``."""
    from simlab.report_result import check_table_interval
    from simlab.store import open_run

    try:
        check_table_interval(args.table_interval, "--table-interval")
    except ValueError as e:
        raise SimlabError(str(e)) from None
    store = open_run(args.run, runs_dir=args.dir)
    m = store.manifest
    out.print(f"[bold]{m['run_id']}[/]  status: {store.status}  scenario: {m.get('scenario')}")
    out.print(f"started {m.get('started')}  ended {m.get('ended') or '-'}  path {store.path}")
    if m.get("error"):
        out.print(f"error: {m['error']}", markup=False)
    done = sum(int(t.get("steps_done", 0)) for t in m["trials"])
    out.print(f"trials: {len(m['trials'])}, steps done: {done}")
    ex = m.get("execution")
    if ex:
        where = ex.get("address") or "embedded" if ex.get("backend") == "ray" else ""
        shards = f", {ex.get('shards')} shards" if ex.get("backend") == "ray" else ""
        out.print(f"execution: {ex.get('backend')} {where}{shards}".rstrip(), markup=False)
    if m.get("forked_from"):
        f = m["forked_from"]
        out.print(f"forked from {f['run']} at step {f['step']}", markup=False)
    for t in m["trials"]:
        if t.get("restarts"):
            out.print(
                f"trial {t['index']} restored {t['restarts']}x after a lost actor "
                f"(last: {t.get('last_restart', '?')})",
                markup=False,
            )
    _print_summary(store, out, args.table_interval)
    return EXIT_OK


def cmd_report(args: argparse.Namespace, out: Console) -> int:
    """``simlab report``: print the report's table and where its files are."""
    from simlab.intervals import Smoothing, check_interval
    from simlab.report import build_report
    from simlab.report_result import check_table_interval

    problems = []
    try:
        check_interval(args.interval, "--interval")
    except ValueError as e:
        problems.append(str(e))
    try:
        check_table_interval(args.table_interval, "--table-interval")
    except ValueError as e:
        problems.append(str(e))
    try:
        smoothing = Smoothing.parse(args.smooth, "--smooth")
    except ValueError as e:
        problems.append(str(e))
    if problems:
        raise SimlabError("\n".join(problems))
    rep = build_report(
        args.run,
        out_dir=args.out,
        metrics=args.metrics,
        runs_dir=args.dir,
        interval=args.interval,
        smooth=smoothing,
        baseline=args.baseline,
        table_interval=args.table_interval,
    )
    # per sweep point: one column per agent, one row per metric, as in `simlab show`
    for point, rows in rep.groups():
        body = [("seeds", [str(int(rep.summary["seeds"].iloc[i])) for i in rows])]
        body += [
            (m + ("*" if rep.kinds.get(m) == "last" else ""), [rep.cell(i, m) for i in rows])
            for m in rep.metrics
        ]
        labels = [rep.agent_label(i) for i in rows]
        out.print(_metric_table("report", point, labels, body, rep.table_label()))
    for name, pooled in rep.tables.items():
        _print_pooled(out, name, pooled, rep.sweep_columns, rep.baseline)
    if rep.oracle:
        out.print(f"echo/homogenization_vs_oracle: minus {rep.oracle}'s, same seed and step")
    for note in (rep.warmup_note, rep.stopped_note, rep.note):
        if note:
            out.print(f"note: {note}", markup=False)
    for name in rep.tables:
        out.print(f"{name}: also in report.md and {name.replace(' ', '_')}.csv", markup=False)
    out.print(f"report: {rep.markdown} ({len(rep.figures)} plots, summary.csv)", markup=False)
    return EXIT_OK


def _print_pooled(out: Console, name: str, pooled, sweep: list[str], baseline) -> None:
    """A pooled table (``simlab.windows``) per sweep point: agents x windows, ± 95% t."""
    from simlab.report import format_mean_sd
    from simlab.report_result import paired_seeds
    from simlab.windows import PointBaseline

    if pooled.empty:
        return
    sweep = [c for c in sweep if c in pooled.columns]
    windows = "window" in pooled.columns
    groups = pooled.groupby(sweep, sort=False) if sweep else [((), pooled)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        point = ", ".join(f"{c}={v}" for c, v in zip(sweep, key, strict=True))
        at_base = isinstance(baseline, PointBaseline) and baseline.holds(
            dict(zip(sweep, key, strict=True))
        )
        how = "mean ± 95% t over seeds" + (f" (paired diff. to {baseline})" if baseline else "")
        table = Table(title=f"{name}: {how}" + (f"\n{point}" if point else ""))
        table.add_column("agent", no_wrap=True)
        cols = list(dict.fromkeys(part["window"])) if windows else ["value"]
        for c in cols:
            table.add_column(c, justify="right", overflow="fold")
        if "tipped" in part.columns:
            table.add_column("tipped", justify="right")
        for agent, rows in part.groupby("agent", sort=False):
            by = {r["window"] if windows else "value": r for _, r in rows.iterrows()}
            cells = []
            for c in cols:
                r = by.get(c)  # None: this agent has no rows in that window (stopped early)
                if r is None:
                    cells.append("-")
                    continue
                text = format_mean_sd(r["value"], r["value ±"])
                paired = "diff" in r and r.get("diff n", 0) > 0  # (windows unmatched: none)
                if baseline and agent != baseline and not at_base and paired:
                    text += f" ({format_mean_sd(r['diff'], r['diff ±'])}{paired_seeds(r)})"
                if r.get("partial", 0) > 0:  # trials stopped early: pooled over what they ran
                    text += f" [{int(r['partial'])} partial]"
                cells.append(text)
            if "tipped" in part.columns:
                cells.append(f"{int(rows['tipped'].iloc[0])}/{int(rows['value n'].iloc[0])}")
            table.add_row(str(agent), *cells)
        out.print(table)


# ---------------------------------------------------------------------- summary
def _metric_table(
    kind: str, point: str, labels: list[str], rows: list, spread: str = "mean ± sd over seeds"
) -> Table:
    """A table of one sweep point: a column per agent, a row per ``(name, cells)``."""
    title = f"{kind} (mean over steps, or last step*, then {spread})"
    table = Table(title=title + (f"\n{point}" if point else ""))
    table.add_column("metric", no_wrap=True)
    for label in labels:
        table.add_column(label, justify="right", overflow="fold")
    for name, cells in rows:
        table.add_row(name, *cells)
    return table


def _print_summary(store, out: Console, table_interval: str = "sd") -> None:
    """A table per sweep point: one column per agent, one row per metric, mean ± spread.

    The spread is ``table_interval``'s (``simlab.report_result.TABLE_INTERVALS``), over the
    seeds with a value, as in ``simlab report``'s table.
    """
    from simlab.report_result import TABLE_INTERVALS, summary_cell
    from simlab.store import stopped_note, summarize, warmup_note

    df = store.read_metrics()
    if df.empty:
        out.print("no metric rows yet")
        return
    s = summarize(df, store.manifest)
    sweep = [c for c in store.manifest.get("sweep_columns", []) if c in s.columns]
    kinds = store.manifest.get("metric_summary", {})
    privileged = set(store.manifest.get("privileged_agents", []))
    # one table per sweep point (variant), the agents as columns
    points = s.groupby(sweep, sort=False, dropna=False) if sweep else [((), s)]
    for key, part in points:
        key = key if isinstance(key, tuple) else (key,)
        point = ", ".join(f"{c}={v}" for c, v in zip(sweep, key, strict=True))
        labels = [str(a) + (" (privileged)" if a in privileged else "") for a in part["agent"]]
        body = [(k, [str(int(v)) for v in part[k]]) for k in ("seeds", "steps")]
        body += [
            (c + ("*" if kinds.get(c) == "last" else ""),
             [summary_cell(r, c, table_interval) for _, r in part.iterrows()])
            for c in store.manifest["metric_columns"]
            if c in part.columns
        ]  # fmt: skip
        spread = f"mean ± {TABLE_INTERVALS[table_interval]}"
        out.print(_metric_table("summary", point, labels, body, spread))
    for note in (warmup_note(df, store.manifest), stopped_note(df, store.manifest)):
        if note:
            out.print(f"note: {note}", markup=False)
