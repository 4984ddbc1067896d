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
    # -- simlab/metrics -------------------------------------------------------------------
    "simlab/metrics/homogenization_nn.py": [
        Equivalent(
            "if n <= cap:",
            "if n == cap:",
            "below the cap the sampling branch keeps argsort(draw)[:cap], every user, and "
            "sorts it: arange(n), the anchors of the first branch",
        ),
        Equivalent(
            "if n <= cap:",
            "if n < cap:",
            "at n == cap the sampling branch keeps every user and sorts them: arange(n), "
            "the anchors of the first branch",
        ),
        Equivalent(
            "scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)",
            "scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms != 0)",
            "norms are square roots of sums of squares, never negative: `!= 0` and `> 0` "
            "select the same rows",
        ),
        Equivalent(
            "return np.divide(rep, norms, out=np.zeros_like(rep), where=norms > 0)",
            "return np.divide(rep, norms, out=np.zeros_like(rep), where=norms != 0)",
            "norms are square roots of sums of squares, never negative: `!= 0` and `> 0` "
            "select the same rows",
        ),
        Equivalent(
            "draws[sim < best] = -np.inf  # only the most similar users compete",
            "draws[sim < best] = not np.inf  # only the most similar users compete",
            "`not np.inf` is False (0.0): the tie-break draws are uniforms on the open "
            "(0, 1), so the most similar users' draws still all exceed it and argmax picks "
            "the same one of them",
        ),
        Equivalent(
            "scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)",
            "scale = np.divide( 2.0, norms, out=np.zeros_like(norms), where=norms > 0)",
            "every sparse row scaled by 2 instead of 1: every cosine is multiplied by 4 "
            "exactly (a power of 2), so the same users are the most similar, with the same "
            "ties, and nearest_neighbours returns only their indices",
        ),
    ],
}
