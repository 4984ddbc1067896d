"""The argument parser of ``simlab``: every bad flag is one ``error:`` line and exit code 2.

argparse's own errors (an unknown flag, ``--shards x``) print a usage block; here they are
one line like every other input error. Path flags refuse NUL bytes, a ``--run-id`` cannot
leave ``--out`` (no ``/``, no ``..``, no absolute path), counts must be in range.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

__all__ = ["build_parser", "SimlabArgumentParser", "run_id_arg", "path_arg"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""Exit codes of ``simlab`` (see :mod:`simlab.cli`)."""


class SimlabArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one ``error:`` line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:  # noqa: D102 - argparse hook
        sys.stderr.write(f"error: {self.prog}: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def path_arg(text: str) -> str:
    """A path flag: any text without a NUL byte."""
    if "\x00" in text:
        raise argparse.ArgumentTypeError(f"{text!r}: a path cannot contain a NUL byte")
    return text


def run_id_arg(text: str) -> str:
    """``--run-id``: one folder name under ``--out`` (see ``store_write.run_id_problem``)."""
    from simlab.store_write import run_id_problem  # (pyarrow: only when the flag is given)

    problem = run_id_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects an integer, got {text[:40]!r}") from None


def _count(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expects an integer, got {text[:40]!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expects {low}..{high:,}, got {value}")
        return value

    parse.__name__ = "count"
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``simlab``."""
    p = SimlabArgumentParser(
        prog="simlab", description="A laboratory for recommender-system feedback loops."
    )
    sub = p.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=SimlabArgumentParser
    )

    run = sub.add_parser("run", help="run a scenario: agents x seeds (x sweep grid)")
    run.add_argument("scenario", type=path_arg, help="scenario YAML file")
    _add_overrides(run)
    run.add_argument(
        "--out", type=path_arg, help="parent folder of run directories (default: output.dir)"
    )
    run.add_argument(
        "--run-id", type=run_id_arg, help="name of the run directory (default: generated)"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument(
        "--from",
        dest="fork",
        metavar="RUN@STEP",
        help="fork: start every trial from RUN's checkpoint at STEP (with this scenario's "
        "settings, e.g. an intervention switched on), copying RUN's earlier rows",
    )
    _add_execution(run)
    _add_trust(run, "the --from run's")

    resume = sub.add_parser("resume", help="continue a run that stopped, from its checkpoints")
    resume.add_argument("run", type=path_arg, help="run directory, or a run id under --dir")
    resume.add_argument(
        "--dir", type=path_arg, default="runs", help="folder holding run directories"
    )
    resume.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_execution(resume)
    _add_trust(resume, "the run's")

    val = sub.add_parser("validate", help="check a scenario and print it fully resolved")
    val.add_argument("scenario", type=path_arg, help="scenario YAML file")
    _add_overrides(val)
    val.add_argument("--quiet", action="store_true", help="print only errors")

    dash = sub.add_parser("dashboard", help="open the Streamlit dashboard over run directories")
    dash.add_argument(
        "--runs", type=path_arg, default="runs", help="folder holding run directories"
    )
    dash.add_argument("--port", type=_count(1, 65535), default=8501, help="port to serve on")
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: all)")

    runs = sub.add_parser("runs", help="list run directories with their status")
    runs.add_argument("--dir", type=path_arg, default="runs", help="folder holding run directories")

    show = sub.add_parser("show", help="summary of one run")
    show.add_argument("run", type=path_arg, help="run directory, or a run id under --dir")
    show.add_argument("--dir", type=path_arg, default="runs", help="folder holding run directories")
    _table_interval_arg(show)

    report = sub.add_parser(
        "report", help="table and PNG plots of a run's key metrics over time (intervals over seeds)"
    )
    report.add_argument("run", type=path_arg, help="run directory, or a run id under --dir")
    report.add_argument(
        "--dir", type=path_arg, default="runs", help="folder holding run directories"
    )
    report.add_argument(
        "--out", type=path_arg, help="folder for the report's files (default: <run>/report)"
    )
    report.add_argument(
        "--metrics", nargs="+", metavar="METRIC", help="metric columns to report (default: key set)"
    )
    report.add_argument(
        "--interval",
        default="se",
        metavar="KIND",
        help="band over seeds in the plots: se (±1 standard error, default), sd (±1 standard "
        "deviation), t (95%% Student t) or seeds (every seed's line)",
    )
    _table_interval_arg(report)
    report.add_argument(
        "--baseline",
        metavar="AGENT|COLUMN=VALUE",
        help="what the pooled tables' paired differences are taken against: an agent (default: "
        "the first agent), or a sweep point such as variant=phases (the same agent there)",
    )
    report.add_argument(
        "--smooth",
        default="off",
        metavar="SPEC",
        help="smooth each trial's curve in the plots: off (default), ema[:WEIGHT] "
        "(0 <= WEIGHT < 1, default 0.6) or rolling[:WINDOW] (steps, default 5)",
    )

    extras = sub.add_parser(
        "extras", help="create a separate environment (recsim-ng, trecs, gym-latest, obp)"
    )
    extras.add_argument("name", help="recsim-ng, trecs, gym-latest or obp")
    extras.add_argument("--force", action="store_true", help="recreate even when ready")

    from simlab.export import add_export_parser

    add_export_parser(sub)
    return p


def _add_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a scenario field, e.g. --set users.num_users=500 (repeatable)",
    )
    p.add_argument("--seeds", type=_int, help="number of seeds (seeds 0..N-1)")


def _add_trust(p: argparse.ArgumentParser, whose: str) -> None:
    p.add_argument(
        "--trust-code",
        action="store_true",
        help=f"let {whose} scenario.yaml import 'module:Class' entries outside simlab "
        "(importing runs their code: only for run directories you trust)",
    )


def _add_execution(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["ray", "local"], help="override execution.backend")
    p.add_argument(
        "--address", help="Ray cluster: auto, ray://host:port or host:port (execution.address)"
    )
    p.add_argument("--shards", type=_int, help="user shards per world (execution.shards)")


def _table_interval_arg(p: argparse.ArgumentParser) -> None:
    """``--table-interval``: the ± of ``simlab show``'s and ``simlab report``'s tables."""
    p.add_argument(
        "--table-interval",
        default="sd",
        metavar="KIND",
        help="the ± of the table: sd (standard deviation over seeds, default), se (standard "
        "error) or t (95%% Student t half-width, as the reference experiments' tables)",
    )
