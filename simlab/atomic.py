"""Files written whole or not at all: through a temporary name, then renamed over the target.

A kill mid-write leaves the old file (or none), never half of the new one; a write that
fails (a full disk) removes its temporary file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["replacing"]


@contextlib.contextmanager
def replacing(path: Path, tmp: Path) -> Iterator[Path]:
    """Yield ``tmp`` to write; when the block ends without error, rename it over ``path``.

    Whatever happens, ``tmp`` is gone afterwards (renamed, or removed after a failure).
    """
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
