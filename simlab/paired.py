"""Paired comparisons with a baseline agent: per seed, sweep point and step.

Worlds of one seed share their random numbers (users, items, arrivals), so an agent's
metric minus the baseline agent's at the same seed, sweep point and step is a paired
difference: its spread over seeds is the spread of the policy effect, not of the worlds.
:func:`add_paired` adds such columns to a metrics table; ``simlab report`` uses it for the
measures reported relative to the ideal recommender (Chaney et al.), the dashboard for its
"difference to a baseline agent" view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Paired", "add_paired", "baseline_rows"]


@dataclass(frozen=True)
class Paired:
    """A derived column: ``metric`` compared with the baseline's at the same seed and step.

    Attributes:
        metric: the source column.
        name: the derived column's name.
        kind: ``difference`` (``x - x_base``) or ``relative`` (``(x - x_base) / x_base``).
    """

    metric: str
    name: str
    kind: Literal["difference", "relative"] = "difference"

    def __post_init__(self) -> None:
        if self.kind not in _COMBINE:
            raise ValueError(
                f"Paired {self.name!r}: unknown kind {self.kind!r}. Allowed: {', '.join(_COMBINE)}"
            )


def _difference(x, base):
    return x - base


def _relative(x, base):
    return (x - base) / base.where(base != 0)  # NaN where the baseline is 0


_COMBINE = {"difference": _difference, "relative": _relative}


def add_paired(
    df, baseline: str, derived: Sequence[Paired], keys: Sequence[str], by: str = "agent"
):
    """``df`` with each derived column: a row's metric against the baseline agent's.

    A derived column may have its source's name (it then replaces the source's values).

    Args:
        df: metric rows with ``by`` (``agent``), the ``keys`` columns and each source metric.
        baseline: the ``by`` value of the baseline (its own rows get 0).
        derived: the columns to add.
        keys: columns that pair rows (``seed``, the sweep columns, ``step``).
        by: the column naming what is compared (an agent, or a run's agent).

    Returns:
        A new DataFrame (rows in ``df``'s order); NaN where the baseline has no row (or a
        relative comparison with a zero baseline).

    Raises:
        ValueError: several rows of the baseline share the same keys (a key is missing).
    """
    keys = list(keys)
    sources = list(dict.fromkeys(d.metric for d in derived))
    ref = baseline_rows(df, baseline, keys, sources, by)
    ref = ref.rename(columns={m: f"_base {m}" for m in sources})
    merged = df.merge(ref, on=keys, how="left", sort=False)
    for d in derived:
        merged[d.name] = _COMBINE[d.kind](merged[d.metric], merged[f"_base {d.metric}"])
    return merged.drop(columns=[f"_base {m}" for m in sources])


def baseline_rows(df, baseline: str, keys: Sequence[str], columns: Sequence[str], by="agent"):
    """The ``keys`` and ``columns`` of the rows whose ``by`` is ``baseline``.

    Raises:
        ValueError: several of them share the same keys (pairing on them would multiply rows).
    """
    keys = list(keys)
    ref = df.loc[df[by] == baseline, [*keys, *columns]]
    if ref.duplicated(keys).any():
        raise ValueError(f"baseline: several rows of '{baseline}' share {', '.join(keys)}")
    return ref
