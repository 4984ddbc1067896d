"""The ``Equivalent`` entry and the recurring reasons of :mod:`mutation_equivalent`."""

from __future__ import annotations

from typing import NamedTuple


class Equivalent(NamedTuple):
    """One equivalent mutant: the line before and after, and why they behave the same."""

    before: str
    after: str
    why: str


def mutants_of(line: str, edits: tuple[tuple[str, str], ...], why: str) -> list[Equivalent]:
    """Equivalent mutants of one ``line``, each made by replacing ``a`` with ``b`` in it."""
    return [Equivalent(line, line.replace(a, b), why) for a, b in edits]


LITERAL_IS = (
    "`is` for `==` on a validated Literal: pydantic returns the literal's own str object, "
    "so identity and equality agree"
)

PAD_BELOW_IDS = (
    "`> PAD` for `!= PAD` on item ids: item ids are >= 0 and PAD is -1, so no id sorts below "
    "PAD and the two select the same entries"
)

SQUARE_SHAPE = (
    "`shape[1]` or `shape[-1]` for `shape[0]` of a square matrix (the ridge matrix A, "
    "(D, D)): the same number"
)

NEVER_NEGATIVE = (
    "a comparison with 0 changed for one that agrees on every value >= 0 (`!= 0` for `> 0`, "
    "`<= 0` for `== 0`) on a value that is never negative: a count, a size, a share of counts"
)

TWO_OR_THREE_DIMS = (
    "`>=`/`<=` for `==` on the number of dimensions of a code table, documented and built "
    "as (C, T) shared or (B, C, T) per row: no other count reaches the test"
)
LAST_AXIS_OF_2D = "`1` for `-1` as the axis of a 2-D array: the same axis"
BOOL_MUL = "`*` for `&` of two boolean arrays: numpy's product of booleans is their logical and"
RENDER_FPS_HINT = (
    "`render_fps` in a gym env's metadata is a frame-rate hint for gymnasium's rgb_array "
    "renderers (HumanRendering, RecordVideo); the envs offer only the text modes ansi/human, "
    "which never read it, so any positive value behaves the same"
)
CAPACITY = (
    "the feature table's spare capacity only (its initial rows, when and by how much it grows): "
    "`max(top, ...)` always makes room for every id stored, rows are read only by stored ids, "
    "so observations are identical"
)

STEPS_FROM_ZERO = (
    "a negative 'nothing yet' step marker: steps count from 0 (World.t starts at 0), so any "
    "negative marker is below every step alike"
)

ADAM_BETA_MOD = (
    "`1 % b` for `1 - b` at Adam's fixed betas (0.9, 0.999): for 0.5 < b < 1, fmod(1, b) is "
    "1 - b, and both are exact (fmod always, the difference by Sterbenz): the same float"
)

ONE_DIM_LENGTH = (
    "`shape[-1]` for `shape[0]` of a 1-D array (ids or topics, documented and built as "
    "(N,)): its only axis, the same length"
)
ROW_BLOCK = (
    "the rows per block (simlab.batch.row_blocks: multiples of 64) are a speed choice only: every "
    "value is per row, so any blocks of rows give the same arrays"
)
