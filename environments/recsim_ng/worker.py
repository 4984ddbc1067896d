"""The RecSim NG side of the bridge: a worker process that serves RecSim NG's user model.

This file runs as a script INSIDE the RecSim NG environment (``simlab extras recsim-ng``:
TensorFlow 2.15, numpy 1.26) and never imports simlab; simlab (numpy 2) imports only the
framing functions (:func:`write_message`, :func:`read_message`, in ``framing.py``), which
need numpy alone. The RecSim NG models are in ``worker_models.py``; run as a script, the
worker imports both siblings as top-level modules (the script's folder is on its path).

What it serves. RecSim NG's interest-evolution simulation
(``recsim_ng.applications.recsys_partially_observable_rl``) as objects built from RecSim
NG's own classes: ``InterestEvolutionUser`` (state, ``next_response``, ``next_state``),
``ConsumedTimeAsRewardMetrics`` (the reward) and ``CorpusWithTopicAndQuality`` (the
documents). One worker holds any number of *sessions* (one per simlab user population or
shard), each with its users' RecSim NG state.

Randomness comes from simlab. RecSim NG draws through edward2 random variables; an edward2
tracer (:class:`NoiseFeed`) gives every draw its value from noise that simlab sent, keyed by
global user id and step, so a user's trajectory does not depend on how users are sharded:

- a ``Categorical`` (the choice, a document's topic) is an inverse-CDF draw from a uniform
  ``u``: the first category whose cumulative probability exceeds ``u`` (in float64, as
  ``simlab.rng.Stream.categorical`` draws);
- a ``Normal`` takes ``loc + scale * z`` and a ``MultivariateNormalLinearOperator`` (the
  interest state model) ``mean + scale @ z``, with ``z`` standard normal;
- deterministic variables pass through. Any other distribution is an error naming it.

RecSim NG's ``TFRuntime.execute`` re-traces the network on every call (~0.7 s a step when
stepped from outside), so each user model compiles its step (response, state update,
reward) once with ``tf.function`` (and XLA, ``jit_compile=True``: about 2-3x faster than
the plain graph here) over tensors of fixed shapes: all of a session's users,
with a mask of those served this step (the others keep their state). The model holds no
state, so sessions with equal parameters and sizes (the worlds of several agents and seeds)
share it and its trace.

Protocol. Messages both ways are frames: an 8-byte little-endian length, a JSON header
(``op``, scalars, and ``arrays``: ``[[name, nbytes], ...]``), then each array in ``.npy``
format (``allow_pickle=False``, so numpy 1.x and 2.x read each other's bytes). Requests
carry an ``op``; replies carry ``ok`` and, on failure, ``error`` (the traceback). The
worker announces itself with ``{"op": "ready", ...}`` once RecSim NG is imported.

Usage (the bridge starts it)::

    python worker.py [--threads N]
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

import numpy as np

if __package__:  # imported by simlab as simlab.environments.recsim_ng.worker
    from .framing import PROTOCOL, read_message, write_message
    from .worker_models import (
        MODEL_KEYS,
        NoiseFeed,
        UserModel,
        UserSession,
        _import_recsim,
        make_corpus,
    )
else:  # run as a script (the bridge starts `python worker.py`): its siblings are top-level
    from framing import PROTOCOL, read_message, write_message
    from worker_models import (
        MODEL_KEYS,
        NoiseFeed,
        UserModel,
        UserSession,
        _import_recsim,
        make_corpus,
    )

__all__ = [
    "PROTOCOL",
    "write_message",
    "read_message",
    "NoiseFeed",
    "make_corpus",
    "MODEL_KEYS",
    "UserModel",
    "UserSession",
    "Server",
    "main",
]


class Server:
    """Dispatches requests to sessions (see the module docstring for the protocol)."""

    def __init__(self) -> None:
        self.sessions: dict[int, UserSession] = {}
        self.models: dict[str, UserModel] = {}
        self._next = 1

    def handle(self, header: dict[str, Any], arrays: dict[str, np.ndarray]):
        """``(reply header, reply arrays)`` of one request."""
        op = header.get("op")
        if op == "corpus":
            return {}, make_corpus(header, arrays)
        if op == "open":
            sid, self._next = self._next, self._next + 1
            key = json.dumps([header.get(k) for k in MODEL_KEYS])
            if key not in self.models:
                self.models[key] = UserModel(header)
            self.sessions[sid] = UserSession(self.models[key], arrays["initial_normal"])
            return {"session": sid}, self.sessions[sid].state_dict()
        if op == "release":
            for sid in header["sessions"]:
                self.sessions.pop(int(sid), None)
            return {}, {}
        if op not in ("docs", "respond", "utility", "state", "load"):
            raise ValueError(f"unknown op {op!r}")
        session = self.sessions.get(int(header.get("session", -1)))
        if session is None:
            raise KeyError(f"op {op!r}: no open session {header.get('session')!r}")
        if op == "docs":
            session.set_docs(arrays)
            return {}, {}
        if op == "respond":
            return {}, session.respond(arrays)
        if op == "utility":
            return {}, session.utility(arrays)
        if op == "state":
            return {}, session.state_dict()
        session.load_state_dict(arrays)  # op == "load"
        return {}, {}


def main(argv: list[str] | None = None) -> int:
    """Serve requests on stdin/stdout until ``shutdown`` or end of input."""
    import argparse

    ap = argparse.ArgumentParser(description="simlab's RecSim NG worker")
    ap.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: its default)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Frames own the real stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    inp = sys.stdin.buffer
    versions = _import_recsim(args.threads)
    write_message(out, {"op": "ready", "ok": True, "protocol": PROTOCOL, "versions": versions})
    server = Server()
    while True:
        msg = read_message(inp)
        if msg is None or msg[0].get("op") == "shutdown":
            return 0
        header, arrays = msg
        try:
            reply, out_arrays = server.handle(header, arrays)
            write_message(out, dict(reply, ok=True), out_arrays)
        except Exception:  # reported to simlab, which raises it with this traceback
            write_message(out, {"ok": False, "error": traceback.format_exc()})


if __name__ == "__main__":
    sys.exit(main())
