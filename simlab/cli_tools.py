"""``simlab dashboard``, ``extras`` and ``export``: the commands that hand over to other tools.

Part of :mod:`simlab.cli`: the Streamlit app, a peer simulator's separate environment
(:mod:`simlab.extras`) and the offline-dataset export (:mod:`simlab.export`).
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from simlab.cli_parser import EXIT_OK
from simlab.errors import SimlabError

__all__ = ["cmd_dashboard", "cmd_extras"]


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
    _check_address(args.host, args.port)
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


def _check_address(host: str, port: int) -> None:
    """Refuse, before Streamlit starts, an address it could not serve on.

    (Streamlit would end in a traceback: a host that does not resolve or is not one of this
    machine's addresses, or a port another program listens on.) One trial bind, released at
    once.
    """
    import errno
    import socket

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise SimlabError(
            f"--host: {host!r} does not resolve ({e}); use 127.0.0.1 (this machine only), "
            "0.0.0.0 (every interface) or one of this machine's addresses"
        ) from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(addr)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise SimlabError(
                    f"--port: {port} is already in use on {host}; pick another with --port"
                ) from None
            raise SimlabError(
                f"--host: cannot serve on {host}:{port} ({e.strerror}); use 127.0.0.1, "
                "0.0.0.0 or one of this machine's addresses"
            ) from None


def cmd_extras(args: argparse.Namespace, out: Console) -> int:
    """``simlab extras NAME``: create (or reuse) a peer simulator's environment."""
    from simlab.extras import ensure

    python = ensure(args.name, force=args.force, log=out.print)
    out.print(f"python: {python}")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace, out: Console) -> int:
    """``simlab export RUN --format F``: write the dataset and list what was written.

    See :mod:`simlab.export`; its :class:`~simlab.export.PropensityWarning` (trials without
    propensities) prints as a note after the paths, other warnings pass on as they were.
    """
    import warnings

    from simlab.export import PropensityWarning, export_run

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PropensityWarning)
        paths = export_run(
            args.run, args.format, out=args.out, runs_dir=args.dir, reward=args.reward
        )
    for p in paths:
        out.print(str(p), markup=False, soft_wrap=True)
    for w in caught:
        if issubclass(w.category, PropensityWarning):
            out.print(f"note: {w.message}", markup=False, soft_wrap=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return EXIT_OK
