"""A memory estimate of one trial, checked against the machine before anything is allocated.

:func:`estimate` adds up the large arrays a trial holds, from the scenario alone: per user
(latent interests, initial interests and features, ``dim`` floats each; fatigue per topic;
the click history ring, ``2 * history_length`` ids), per live item (latent embedding,
observable features, style, ``dim`` floats each), per creator ever in the pool (centre
offset and vector, ``dim`` floats each, and its counters), the per-step arrays over the
active users (personal candidate lists ``(B, max_candidates)``, and the ``(B, C)`` score
matrix of agents that score every candidate of every user: :data:`SCORING_AGENTS`, or a
class attribute ``memory_per_candidate`` in bytes), the user model's own ``(users, items)``
tables when it says their size (a static ``memory_bytes(users, items)``, as ``chaney``'s
utility caches), the platform's log window and the pairwise measures' pairs. It is an order
of magnitude, not an accounting: what matters is that a world that cannot fit is refused at
validate time, with the estimate and the machine's memory, instead of dying with a
``MemoryError`` or the kernel's out-of-memory killer mid-run.

Several trials run at once on Ray (``execution.max_parallel_trials``, or as many as the CPUs
allow), and each needs its own memory; on a cluster (``execution.address``) the trial's
actors may sit on other machines, so only this machine's share is not known and the check
uses the per-trial estimate. ``SIMLAB_MEMORY_BYTES`` overrides the machine's memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Estimate", "estimate", "machine_memory", "memory_errors", "SCORING_AGENTS"]

SCORING_AGENTS = {
    "simlab.agents.neural": 8,
    "simlab.agents.two_tower": 8,
    "simlab.agents.generative": 8,
    "simlab.agents.slate_ts": 16,
    "simlab.agents.bandits:LinUCBAgent": 16,
    "simlab.agents.bandits:LinearThompsonAgent": 16,
    "simlab.agents.bandits:DiagLinUCBAgent": 16,
    "simlab.agents.baselines:OracleAgent": 16,
}
"""Bytes per (user, candidate) pair of the agents that score every candidate of every user
(by module, or ``module:Class``); other agents score each candidate once."""

_GIB = 1 << 30


@dataclass
class Estimate:
    """Bytes of the large arrays of one trial, by part; the field that drives each part."""

    parts: dict[str, int] = field(default_factory=dict)
    drivers: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Bytes of all parts."""
        return sum(self.parts.values())

    def add(self, name: str, nbytes: float, driver: str) -> None:
        """Add a part."""
        self.parts[name] = self.parts.get(name, 0) + int(nbytes)
        self.drivers.setdefault(name, driver)


def _param(spec: Any, name: str, default: Any = None) -> Any:
    return getattr(spec.params, name, default)


def _items(scenario: Any) -> int:
    """The most items live at once (an upper bound from the content model's fields)."""
    c = scenario.content
    docs = _param(c, "num_docs")
    if docs is not None:
        return int(docs)
    initial = int(_param(c, "initial_items", 0) or 0)
    per_step = int(_param(c, "items_per_step", 0) or 0)
    lifetime = int(_param(c, "lifetime", scenario.steps) or scenario.steps)
    return initial + per_step * min(scenario.steps, lifetime)


def _scoring_bytes(agent: Any) -> int:
    cls = agent.cls
    own = getattr(cls, "memory_per_candidate", None)
    if isinstance(own, int):
        return own
    key = f"{cls.__module__}:{cls.__qualname__}"
    return SCORING_AGENTS.get(key, SCORING_AGENTS.get(cls.__module__, 0))


def estimate(scenario: Any) -> Estimate:
    """The memory estimate of the largest trial of ``scenario`` (components resolved)."""
    est = Estimate()
    users = int(_param(scenario.users, "num_users", 0) or 0)
    dim, topics = scenario.world.dim, scenario.world.num_topics
    plat = scenario.platform
    est.add("users", users * (3 * dim * 8 + 64), "users.num_users")
    est.add("user topic shares", users * topics * 8, "world.num_topics")
    est.add("user histories", users * 2 * plat.history_length * 8, "platform.history_length")
    items = _items(scenario)
    est.add("items", items * (3 * dim * 4 + 64), "content")
    c = scenario.content
    creators = sum(int(_param(c, k, 0) or 0) for k in ("num_human_creators", "num_aigc_creators"))
    creators += int(_param(c, "creators_per_step", 0) or 0) * scenario.steps
    est.add("creators", creators * (2 * dim * 4 + 40), "content")  # one row per creator ever
    per_user_item = getattr(scenario.users.cls, "memory_bytes", None)
    if callable(per_user_item):  # a user model with a (users, items) table (chaney)
        est.add("user utilities", per_user_item(users, items), "users.num_users")
    est.add("topics", topics * dim * 8, "world.num_topics")
    live = max(items, 1)
    cands = min(plat.max_candidates or live, live)
    if plat.max_candidates and plat.max_candidates < live:
        est.add("candidates", users * cands * 8 * 2, "platform.max_candidates")
    per_pair = max((_scoring_bytes(a) for a in scenario.agents), default=0)
    if per_pair:
        est.add("scores", users * cands * per_pair, "platform.max_candidates")
    slate = plat.slate_size or cands
    est.add("log", plat.log_window * users * (slate * 8 + 32), "platform.log_window")
    pairs = min(scenario.measures.pairwise_pairs, users * max(users - 1, 0) // 2)
    est.add("pairs", pairs * 8 * 6, "measures.pairwise_pairs")
    return est


MEMORY_VARIABLE = "SIMLAB_MEMORY_BYTES"
"""The environment variable that overrides :func:`machine_memory` (a number of bytes)."""


def _override() -> tuple[int | None, str | None]:
    """The override's bytes, or the error line of a malformed one (``(None, None)``: unset)."""
    text = os.environ.get(MEMORY_VARIABLE, "").strip()
    if not text:
        return None, None
    if text.isascii() and text.isdigit() and int(text) > 0:
        return int(text), None
    return None, (
        f"{MEMORY_VARIABLE}: {text!r} is not a number of bytes; set a positive whole number "
        f"(8 GiB is {8 * _GIB}) or unset it to use this machine's memory"
    )


def machine_memory() -> int:
    """Bytes of memory this process may use: physical memory, or a lower cgroup limit.

    A well-formed ``SIMLAB_MEMORY_BYTES`` replaces both (:func:`memory_errors` refuses a
    malformed one).
    """
    override, _ = _override()
    if override is not None:
        return override
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total = 8 * _GIB
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return total


def _parallel(scenario: Any, trials: int) -> int:
    ex = scenario.execution
    if ex.backend == "local" or ex.address is not None:
        return 1
    if ex.max_parallel_trials:
        return max(1, min(trials, ex.max_parallel_trials))
    return max(1, min(trials, int((os.cpu_count() or 1) // max(ex.trial_cpus(), 1e-9))))


def memory_errors(scenario: Any, trials: int) -> list[str]:
    """An error line when ``trials`` trials of ``scenario`` cannot fit in this machine."""
    _, problem = _override()
    if problem:
        return [problem]
    est = estimate(scenario)
    at_once = _parallel(scenario, trials)
    need, have = est.total * at_once, machine_memory()
    if need <= have:
        return []
    big = max(est.parts, key=est.parts.get)
    parts = ", ".join(
        f"{k} {v / _GIB:.1f} GiB"
        for k, v in sorted(est.parts.items(), key=lambda kv: -kv[1])
        if v >= 0.05 * est.total
    )
    runs = f" x {at_once} trials at once" if at_once > 1 else ""
    return [
        f"{est.drivers[big]}: the run needs about {need / _GIB:,.1f} GiB of memory "
        f"({parts} per trial{runs}) but this machine has {have / _GIB:.1f} GiB; lower "
        f"{est.drivers[big]} (or the sizes above), or run on a bigger machine"
    ]
