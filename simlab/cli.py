"""The ``simlab`` command: run, resume, validate, list and show runs, open the dashboard.

``simlab extras NAME`` creates a peer simulator's separate environment (RecSim NG, T-RECS);
``simlab export RUN --format F`` writes a run's event log as an offline dataset.

Exit codes: 0 success; 1 a run failed inside a model (a bug: the traceback is shown);
2 bad input (scenario, override, model name, run directory) with one clear line per
problem; 130 interrupted (everything finished so far is kept).

Here: run, resume and validate, and the entry point; the commands that read run
directories are in :mod:`simlab.cli_runs`, those that hand over to other tools in
:mod:`simlab.cli_tools`, the parser and the exit codes in :mod:`simlab.cli_parser`.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from simlab.cli_parser import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, build_parser
from simlab.cli_runs import _print_summary, cmd_report, cmd_runs, cmd_show
from simlab.cli_tools import _cmd_export, cmd_dashboard, cmd_extras
from simlab.errors import SimlabError, SimlabWarning, describe_disk_failure, disk_failure
from simlab.signals import interrupts_as_keyboard

__all__ = [
    "main",
    "build_parser",
    "cmd_run",
    "cmd_resume",
    "cmd_validate",
    "cmd_runs",
    "cmd_show",
    "cmd_report",
    "cmd_dashboard",
    "cmd_extras",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
]


_FLAGS = {"seeds": "seeds", "backend": "execution.backend", "address": "execution.address",
          "shards": "execution.shards"}  # fmt: skip
"""The flags that set a scenario field: flag -> the field's path."""


def _flag_overrides(args: argparse.Namespace) -> list[tuple[str, object]]:
    """The scenario fields the flags given set (``--seeds``, ``--backend``, ...)."""
    values = ((path, getattr(args, flag, None)) for flag, path in _FLAGS.items())
    return [(path, value) for path, value in values if value is not None]


def _load(args: argparse.Namespace, path: object = None):
    """The scenario (``args.scenario`` or ``path``) with ``--set`` and the flags applied.

    An error in a field a flag set names the flag, not the scenario file.
    """
    from simlab.errors import ScenarioError
    from simlab.scenario import load_scenario

    source = path if path is not None else args.scenario
    flags = _flag_overrides(args)
    try:
        scenario = load_scenario(source, [*getattr(args, "overrides", []), *flags])
    except ScenarioError as e:
        lines = str(e).split("\n")
        for flag, field in _FLAGS.items():
            if (field, getattr(args, flag, None)) in flags:
                lines = [x.replace(f"{source}: {field}: ", f"--{flag}: ") for x in lines]
        raise ScenarioError("\n".join(lines)) from None
    ray_only = [f for f in ("address", "shards") if getattr(args, f, None) is not None]
    if ray_only and scenario.execution.backend != "ray":
        raise ScenarioError(
            f"--{ray_only[0]}: applies to the Ray backend, but {source} runs locally "
            "(execution.backend: local); add --backend ray"
        )
    return scenario


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
        TextColumn("left"),
        TimeRemainingColumn(),  # from the line's recent rate (-:--:-- until it has one)
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

        before = dict(seen)
        try:
            return start(on_step)
        except BaseException:
            if seen == before:  # failed before any step (e.g. the run id is taken): no bars
                for task in set(task_of.values()):
                    progress.update(task, visible=False)
            raise


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
    from simlab.store import open_run
    from simlab.validation import foreign_code

    store = open_run(args.run, runs_dir=args.dir)
    with foreign_code(args.trust_code):
        scenario = _load(args, store.path / "scenario.yaml")
    trials = plan_trials(scenario)
    out.print(f"simlab resume [bold]{store.run_id}[/] ({store.status})")
    return _run_and_summarize(
        trials,
        scenario.steps,
        args.no_progress,
        out,
        lambda on_step: resume_run(
            store.path, _flag_overrides(args), progress=on_step, trust_code=args.trust_code
        ),
        done={t["index"]: int(t.get("steps_done", 0)) for t in store.manifest["trials"]},
    )


# ---------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``simlab`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _working_folder_importable()
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
    except OSError as e:  # a full disk or a folder refusing a write: not a bug
        refused = disk_failure(e)
        if refused is None:
            raise
        why = describe_disk_failure(refused)
        err.print(f"error: a file could not be written: {why}", markup=False)
        return EXIT_USAGE


def _working_folder_importable() -> None:
    """Let ``model: my_module:MyAgent`` import ``my_module`` from the working folder.

    ``python -m simlab`` has the working folder on ``sys.path``; the ``simlab`` script has its
    own folder there instead. Appended after the installed packages (a file in the working
    folder named like one of them does not shadow it), as ``uvicorn app:app`` and the like do.
    """
    try:
        here = os.getcwd()
    except OSError:  # the working folder was removed
        return
    entries = {os.path.realpath(p or os.curdir) for p in sys.path if isinstance(p, str)}
    if os.path.realpath(here) not in entries:
        sys.path.append(here)


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
