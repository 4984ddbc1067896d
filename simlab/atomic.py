"""Files written whole or not at all: through a temporary name, then renamed over the target.

A kill mid-write leaves the old file (or none), never half of the new one; a write that
fails (a full disk) removes its temporary file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["output_folder", "replacing", "write_text"]


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


def output_folder(path: Path, what: str) -> Path:
    """Create the folder ``path`` (with its parents) for ``what``; a clear error if it cannot.

    Raises:
        RunStoreError: ``path`` is a file, lies under one, or cannot be created here.
    """
    from simlab.errors import RunStoreError

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunStoreError(f"{path}: cannot create the {what} folder ({e})") from e
    return path
