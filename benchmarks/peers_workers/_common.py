"""Shared by the peer workers (run in the peers' own environments: no simlab import)."""

from __future__ import annotations

import json
import sys
from importlib.metadata import PackageNotFoundError, version


def dist_version(dist: str) -> str:
    """The installed version of ``dist``, or ``"unknown"``."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def emit(record: dict, out: str | None) -> None:
    """Write the run's JSON record to ``out`` (a file) or stdout."""
    text = json.dumps(record)
    if out:
        with open(out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text + "\n")
