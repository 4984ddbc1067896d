"""The ``simlab`` command: run, resume, validate, list and show runs, open the dashboard.

``simlab extras NAME`` creates a peer simulator's separate environment (RecSim NG, T-RECS);
``simlab export RUN --format F`` writes a run's event log as an offline dataset.

Exit codes: 0 success; 1 a run failed inside a model (a bug: the traceback is shown);
2 bad input (scenario, override, model name, run directory) with one clear line per
problem; 130 interrupted (everything finished so far is kept).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simlab.cli_parser import build_parser
from simlab.errors import SimlabError, SimlabWarning
from simlab.signals import interrupts_as_keyboard

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _execution_overrides(args: argparse.Namespace) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for flag, path in (("backend", "backend"), ("address", "address"), ("shards", "shards")):
        value = getattr(args, flag, None)
        if value is not None:
            out.append((f"execution.{path}", value))
    return out


def _load(args: argparse.Namespace):
    from simlab.scenario import load_scenario

    overrides = list(args.overrides)
    if args.seeds is not None:
        overrides.append(("seeds", args.seeds))
    overrides += _execution_overrides(args)
    return load_scenario(args.scenario, overrides)


# ---------------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace, out: Console) -> int:
    """``simlab validate``."""
    scenario = _load(args)
    if not args.quiet:
        # soft_wrap: Rich must not wrap long lines, or the printed YAML no longer parses.
        out.print(scenario.to_yaml(), markup=False, highlight=False, soft_wrap=True, end="")
    from simlab.runner import plan_trials

    n = len(plan_trials(scenario))
    out.print(f"[green]valid[/]: {args.scenario} ({n} trials x {scenario.steps} steps)")
    return EXIT_OK


def _progress(disable: bool, out: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        disable=disable,
        transient=False,
    )


def _run_and_summarize(
    trials, steps: int, disable: bool, out: Console, start, done: dict[int, int] | None = None
) -> int:
    """Run ``start(on_step)`` with one progress line per trial, then print the summary."""
    try:
        store = _run_with_progress(trials, steps, disable, out, start, done)
    except KeyboardInterrupt:
        out.print("[yellow]interrupted[/]: every finished step is kept in the run directory")
        return EXIT_INTERRUPTED
    _print_summary(store, out)
    out.print(f"run directory: {store.path}")
    return EXIT_OK


MAX_PROGRESS_LINES = 24
"""Above this many trials, progress is one line per agent and sweep point (then one in all)."""


def _run_with_progress(
    trials, steps: int, disable: bool, out: Console, start, done: dict[int, int] | None = None
):
    """Call ``start(on_step)`` with progress lines (see ``MAX_PROGRESS_LINES``); its store."""
    progress = _progress(disable, out)
    done = dict(done or {})
    seen = {t.info.index: done.get(t.info.index, 0) for t in trials}
    many = len(trials) > MAX_PROGRESS_LINES
    groups: dict[str, list[int]] = {}
    for t in trials:
        params = f" {t.info.params}" if t.info.params else ""
        key = (
            f"{t.info.agent}{params}"
            if many
            else f"trial {t.info.index + 1}/{len(trials)} {t.info.agent} seed={t.info.seed}{params}"
        )
        groups.setdefault(key, []).append(t.info.index)
    if len(groups) > MAX_PROGRESS_LINES:
        groups = {"all trials": [t.info.index for t in trials]}
    with progress:
        task_of = {}
        for label, members in groups.items():
            if len(members) > 1:
                label += f" ({len(members)} trials)"
            task = progress.add_task(
                label, total=steps * len(members), completed=sum(seen[i] for i in members)
            )
            task_of.update(dict.fromkeys(members, task))

        def on_step(trial, steps_done: int) -> None:
            progress.advance(task_of[trial.index], steps_done - seen[trial.index])
            seen[trial.index] = steps_done

        return start(on_step)


def cmd_run(args: argparse.Namespace, out: Console) -> int:
    """``simlab run``."""
    from simlab.runner import parse_fork, plan_trials, run_scenario

    scenario = _load(args)
    fork = parse_fork(args.fork) if args.fork else None
    trials = plan_trials(scenario)
    ex = scenario.execution
    where = (
        "local"
        if ex.backend == "local"
        else f"ray ({ex.address or 'embedded'}, {ex.shards} shard{'s' if ex.shards > 1 else ''})"
    )
    out.print(
        f"simlab run [bold]{scenario.name}[/]: {len(scenario.agents)} agents x "
        f"{len(scenario.seeds)} seeds"
        + (
            f" x {len(trials) // (len(scenario.agents) * len(scenario.seeds))} sweep points"
            if scenario.sweep or scenario.variants
            else ""
        )
        + f", {scenario.steps} steps, {where}"
        + (f", forked from {fork[0]} at step {fork[1]}" if fork else "")
    )
    return _run_and_summarize(
        trials,
        scenario.steps,
        args.no_progress,
        out,
        lambda on_step: run_scenario(
            scenario,
            out_dir=args.out,
            progress=on_step,
            run_id=args.run_id,
            fork=fork,
            trust_code=args.trust_code,
        ),
    )


def cmd_resume(args: argparse.Namespace, out: Console) -> int:
    """``simlab resume``."""
    from simlab.runner import plan_trials, resume_run
    from simlab.scenario import load_scenario
    from simlab.store import open_run
    from simlab.validation import foreign_code

    store = open_run(args.run, runs_dir=args.dir)
    overrides = _execution_overrides(args)
    with foreign_code(args.trust_code):
        scenario = load_scenario(store.path / "scenario.yaml", overrides)
    trials = plan_trials(scenario)
    out.print(f"simlab resume [bold]{store.run_id}[/] ({store.status})")
    return _run_and_summarize(
        trials,
        scenario.steps,
        args.no_progress,
        out,
        lambda on_step: resume_run(
            store.path, overrides, progress=on_step, trust_code=args.trust_code
        ),
        done={t["index"]: int(t.get("steps_done", 0)) for t in store.manifest["trials"]},
    )


def cmd_dashboard(args: argparse.Namespace, out: Console) -> int:
    """``simlab dashboard``: serve the Streamlit app over ``--runs`` until interrupted."""
    import importlib.util
    import os
    import subprocess
    from pathlib import Path

    from simlab.errors import DependencyNotInstalled

    if importlib.util.find_spec("streamlit") is None or importlib.util.find_spec("plotly") is None:
        raise DependencyNotInstalled(
            "simlab dashboard needs streamlit and plotly: pip install 'simlab[dashboard]'"
        )
    runs_dir = Path(args.runs)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise SimlabError(f"--runs: {args.runs} is a file, not a folder of run directories")
    spec = importlib.util.find_spec("simlab.dashboard")
    app = Path(spec.origin).with_name("app.py")  # type: ignore[union-attr]
    env = {**os.environ, "SIMLAB_RUNS": str(Path(args.runs).resolve())}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(args.port),
        "--server.address",
        args.host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # a research tool, not an app under development: no deploy button, no file watcher
        "--client.toolbarMode",
        "minimal",
        "--server.fileWatcherType",
        "none",
    ]
    out.print(f"simlab dashboard over {env['SIMLAB_RUNS']}: http://{args.host}:{args.port}")
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return EXIT_OK


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
    from simlab.store import open_run

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
    _print_summary(store, out)
    return EXIT_OK


def cmd_report(args: argparse.Namespace, out: Console) -> int:
    """``simlab report``: print the report's table and where its files are."""
    from simlab.intervals import Smoothing, check_interval
    from simlab.report import build_report

    problems = []
    try:
        check_interval(args.interval, "--interval")
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
    )
    # per sweep point: one column per agent, one row per metric, as in `simlab show`
    for point, rows in rep.groups():
        title = "report (mean over steps, or last step*, then mean ± sd over seeds)"
        table = Table(title=title + (f"\n{point}" if point else ""))
        table.add_column("metric", no_wrap=True)
        for i in rows:
            table.add_column(rep.agent_label(i), justify="right", overflow="fold")
        table.add_row("seeds", *[str(int(rep.summary["seeds"].iloc[i])) for i in rows])
        for m in rep.metrics:
            name = m + ("*" if rep.kinds.get(m) == "last" else "")
            table.add_row(name, *[rep.cell(i, m) for i in rows])
        out.print(table)
    for name, pooled in rep.tables.items():
        _print_pooled(out, name, pooled, rep.sweep_columns, rep.baseline)
    if rep.oracle:
        out.print(f"echo/homogenization_vs_oracle: minus {rep.oracle}'s, same seed and step")
    if rep.note:
        out.print(f"note: {rep.note}", markup=False)
    for name in rep.tables:
        out.print(f"{name}: also in report.md and {name.replace(' ', '_')}.csv", markup=False)
    out.print(f"report: {rep.markdown} ({len(rep.figures)} plots, summary.csv)", markup=False)
    return EXIT_OK


def _print_pooled(out: Console, name: str, pooled, sweep: list[str], baseline) -> None:
    """A pooled table (``simlab.windows``) per sweep point: agents x windows, ± 95% t."""
    from simlab.report import format_mean_sd

    if pooled.empty:
        return
    sweep = [c for c in sweep if c in pooled.columns]
    windows = "window" in pooled.columns
    groups = pooled.groupby(sweep, sort=False) if sweep else [((), pooled)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        point = ", ".join(f"{c}={v}" for c, v in zip(sweep, key, strict=True))
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
                r = by[c]
                text = format_mean_sd(r["value"], r["value ±"])
                if baseline and agent != baseline and "diff" in r:
                    text += f" ({format_mean_sd(r['diff'], r['diff ±'])})"
                cells.append(text)
            if "tipped" in part.columns:
                cells.append(f"{int(rows['tipped'].iloc[0])}/{int(rows['value n'].iloc[0])}")
            table.add_row(str(agent), *cells)
        out.print(table)


# ---------------------------------------------------------------------- summary
def _fmt(mean: float, sd: float) -> str:
    from simlab.report import format_mean_sd

    return format_mean_sd(mean, sd)


def _print_summary(store, out: Console) -> None:
    """One column per agent (and sweep point), one row per metric, mean ± sd over seeds."""
    from simlab.store import summarize

    df = store.read_metrics()
    if df.empty:
        out.print("no metric rows yet")
        return
    s = summarize(df, store.manifest)
    sweep = [c for c in store.manifest.get("sweep_columns", []) if c in s.columns]
    kinds = store.manifest.get("metric_summary", {})
    table = Table(title="summary (mean over steps, or last step*, then mean ± sd over seeds)")
    table.add_column("metric", no_wrap=True)
    privileged = set(store.manifest.get("privileged_agents", []))
    for _, row in s.iterrows():
        label = str(row["agent"])
        if label in privileged:
            label += " (privileged)"
        if sweep:
            label += " [" + ", ".join(f"{c}={row[c]}" for c in sweep) + "]"
        table.add_column(label, justify="right")
    table.add_row("seeds", *[str(int(v)) for v in s["seeds"]])
    table.add_row("steps", *[str(int(v)) for v in s["steps"]])
    for c in store.manifest["metric_columns"]:
        if c not in s.columns:
            continue
        name = c + ("*" if kinds.get(c) == "last" else "")
        table.add_row(name, *[_fmt(r[c], r[f"{c} sd"]) for _, r in s.iterrows()])
    out.print(table)


def cmd_extras(args: argparse.Namespace, out: Console) -> int:
    """``simlab extras NAME``: create (or reuse) a peer simulator's environment."""
    from simlab.extras import ensure

    python = ensure(args.name, force=args.force, log=out.print)
    out.print(f"python: {python}")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace, out: Console) -> int:
    """``simlab export``: see :mod:`simlab.export`."""
    from simlab.export import cmd_export

    return cmd_export(args, out)


# ---------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``simlab`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # piped output (files, CI logs) is not cut to 80 columns
    out = Console() if sys.stdout.isatty() else Console(width=160)
    # soft_wrap: an error stays on one line however narrow the terminal (or pipe) is.
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    commands = {
        "run": cmd_run,
        "resume": cmd_resume,
        "validate": cmd_validate,
        "dashboard": cmd_dashboard,
        "runs": cmd_runs,
        "show": cmd_show,
        "report": cmd_report,
        "extras": cmd_extras,
        "export": _cmd_export,
    }
    try:
        with interrupts_as_keyboard(), warnings.catch_warnings():
            warnings.simplefilter("always", SimlabWarning)
            warnings.showwarning = _warning_printer(err)
            return commands[args.command](args, out)
    except SimlabError as e:
        for line in str(e).splitlines() or [type(e).__name__]:
            err.print(f"error: {line}", markup=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED


def _warning_printer(err: Console):
    """``warnings.showwarning`` printing simlab's warnings as ``warning:`` lines."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SimlabWarning):
            err.print(f"warning: {message}", markup=False)
        else:
            default(message, category, filename, lineno, file, line)

    return show


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
