"""Equivalent mutants: changes no test can detect, because the program's behaviour is the same.

``scripts/mutation.py`` counts a surviving mutant listed here as equivalent rather than
survived, and leaves it out of the score (``killed / (run - equivalent)``). An entry names the
exact line before and after the mutation (stripped of indentation, as in the mutant's diff)
and why the two behave the same for every input the code can receive. A listed mutant that
the tests kill is reported by the script (the entry is wrong); an entry whose ``before`` line
no longer appears in its module fails ``tests/test_mutation_script.py``.

Prefer changing the code so that the equivalent mutant cannot arise (``not x.size`` for
``x.size == 0``, ``ravel()`` for ``reshape(-1)``), when that is as clear and bit-identical;
list a mutant only when it cannot be avoided, and never one that a test could kill.

The recurring reasons:

- ``LITERAL_IS``: ``is`` for ``==`` (or ``is not`` for ``!=``) against a string of a pydantic
  ``Literal`` field: pydantic hands back the literal's own ``str`` object, so identity and
  equality agree on every validated value.
- ``PAD_BELOW_IDS``: ``> PAD`` for ``!= PAD`` on item ids (``PAD = -1``; ids are ``>= 0``).
"""

from __future__ import annotations

from typing import NamedTuple


class Equivalent(NamedTuple):
    """One equivalent mutant: the line before and after, and why they behave the same."""

    before: str
    after: str
    why: str


LITERAL_IS = (
    "`is` for `==` on a validated Literal: pydantic returns the literal's own str object, "
    "so identity and equality agree"
)

PAD_BELOW_IDS = (
    "`> PAD` for `!= PAD` on item ids: item ids are >= 0 and PAD is -1, so no id sorts below "
    "PAD and the two select the same entries"
)

EQUIVALENT: dict[str, list[Equivalent]] = {
    # -- agents ---------------------------------------------------------------------------
    "agents/baselines.py": [
        Equivalent(
            'w = log.engagement if sig == "engagement" else None',
            'w = log.engagement if sig is "engagement" else None',
            LITERAL_IS,
        ),
        Equivalent(
            'if self.params.signal != "engagement":',
            'if self.params.signal is not "engagement":',
            LITERAL_IS,
        ),
    ],
    "agents/two_tower.py": [
        Equivalent("keep = keep[keep != PAD]", "keep = keep[keep > PAD]", PAD_BELOW_IDS),
        Equivalent("found &= ids != PAD", "found &= ids > PAD", PAD_BELOW_IDS),
    ],
}
