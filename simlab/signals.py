"""SIGTERM and SIGINT as ``KeyboardInterrupt``, on every backend.

While :func:`interrupts_as_keyboard` is active in the main thread, SIGTERM and SIGINT raise
``KeyboardInterrupt``, which the runner turns into an ``interrupted`` run (every finished
step kept) and the CLI into exit code 130. Libraries may replace the handlers while the run
goes on — ``ray.init`` installs its own SIGTERM handler, which exits with status 15 — so
whoever calls such a library calls :func:`reinstall` afterwards.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["interrupts_as_keyboard", "reinstall"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_depth = 0


def _handler(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextmanager
def interrupts_as_keyboard() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise ``KeyboardInterrupt`` (nests; main thread)."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in _SIGNALS}
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        for s, handler in previous.items():
            signal.signal(s, handler)


def reinstall() -> None:
    """Put our handlers back (after a library replaced them) when a block is active."""
    if _depth and threading.current_thread() is threading.main_thread():
        for s in _SIGNALS:
            signal.signal(s, _handler)
