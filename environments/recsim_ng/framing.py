"""Frames of the RecSim NG bridge: length, JSON header, ``.npy`` arrays (numpy only).

Both sides use it: simlab (numpy 2, :mod:`simlab.environments.recsim_ng.bridge`) and the
worker (numpy 1.26, inside RecSim NG's environment, where this file is imported as a
top-level module next to ``worker.py``). It must import nothing but numpy and the standard
library. The format is described in :mod:`simlab.environments.recsim_ng.worker`.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any, BinaryIO

import numpy as np

__all__ = ["PROTOCOL", "write_message", "read_message"]

PROTOCOL = 1
_LEN = struct.Struct("<Q")


def write_message(
    stream: BinaryIO, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None
) -> None:
    """Write one frame: ``header`` (JSON-able) and ``arrays`` (as ``.npy`` bytes)."""
    blobs = []
    for name, arr in (arrays or {}).items():
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
        blobs.append((name, buf.getvalue()))
    head = dict(header, arrays=[[name, len(b)] for name, b in blobs])
    raw = json.dumps(head).encode()
    # one write per frame: the reader wakes once, not once per piece
    stream.write(b"".join([_LEN.pack(len(raw)), raw, *(b for _, b in blobs)]))
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_message(stream: BinaryIO) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """Read one frame; ``None`` at end of stream (the other side has gone)."""
    size = _read_exact(stream, _LEN.size)
    if size is None:
        return None
    raw = _read_exact(stream, _LEN.unpack(size)[0])
    if raw is None:
        return None
    header = json.loads(raw)
    arrays = {}
    for name, nbytes in header.pop("arrays", []):
        blob = _read_exact(stream, nbytes)
        if blob is None:
            return None
        arrays[name] = np.lib.format.read_array(io.BytesIO(blob), allow_pickle=False)
    return header, arrays
