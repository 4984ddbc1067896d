"""A bounded check that a Ray cluster answers before ``ray.init`` joins it.

``ray.init(address=...)`` waits for an unreachable GCS for minutes and cannot be interrupted
by a signal while it waits (it blocks in C++). So before joining a cluster, simlab first
tries a TCP connection to ``host:port`` (refused or unreachable: a clear error at once), then
joins the cluster from a child process, killed after ``execution.connect_timeout`` seconds.
Only when that child connected does the driver call ``ray.init`` itself.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from simlab.errors import SimlabError

__all__ = ["probe_address", "split_address"]

_PROBE = """
import os, sys
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
import ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR",
         configure_logging=False)
print("connected", flush=True)
os._exit(0)
"""


def split_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``ray://host:port`` or ``host:port``; None for ``auto``."""
    if address == "auto":
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return host.strip("[]"), int(port)


def probe_address(address: str, timeout: float, error: type[SimlabError]) -> None:
    """Raise ``error`` unless a Ray cluster answers at ``address`` within ``timeout`` seconds."""
    where = f"execution.address: cannot connect to the Ray cluster at {address!r}"
    hint = "check the address, that the cluster is up, or raise execution.connect_timeout"
    hostport = split_address(address)
    if hostport is not None:
        try:
            with socket.create_connection(hostport, timeout=min(timeout, 10.0)):
                pass
        except OSError as e:
            raise error(f"{where} ({e.strerror or type(e).__name__}); {hint}") from None
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, address],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise error(f"{where}: no answer within {timeout:g} s; {hint}") from None
    if "connected" not in proc.stdout:
        lines = [x for x in proc.stderr.splitlines() if x.strip() and " W " not in x]
        last = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        raise error(f"{where} ({last[:300]}); {hint}")
