"""Files written whole or not at all: through a temporary name, then renamed over the target.

A kill mid-write leaves the old file (or none), never half of the new one; a write that
fails (a full disk) removes its temporary file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["replacing", "write_text"]


@contextlib.contextmanager
def replacing(path: Path, tmp: Path | None = None) -> Iterator[Path]:
    """Yield ``tmp`` to write; when the block ends without error, rename it over ``path``.

    ``tmp`` defaults to ``.NAME.tmp-PID`` beside ``path`` (hidden, a name run directories'
    clean-up recognises, and this process's own: two processes writing the same file each
    rename a whole one). Whatever happens, ``tmp`` is gone afterwards (renamed, or removed
    after a failure or an interruption).
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}") if tmp is None else tmp
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all (see :func:`replacing`)."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
