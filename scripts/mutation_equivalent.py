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
- ``STEPS_FROM_ZERO``: a "nothing counted yet" step marker of ``-1`` changed to another
  negative number: the world's steps count from 0 (``World.t`` starts at 0 and only grows),
  so ``step > -1`` and ``step > -2`` hold for the same steps.
- ``BOOL_MUL``: ``*`` for ``&`` of two bool arrays: numpy's product of bools is their logical
  and, itself a bool array.
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

STEPS_FROM_ZERO = (
    "a negative 'nothing yet' step marker: steps count from 0 (World.t starts at 0), so any "
    "negative marker is below every step alike"
)

BOOL_MUL = "`*` for `&` of two bool arrays: numpy's product of bools is their logical and (bool)"

ADAM_BETA_MOD = (
    "`1 % b` for `1 - b` at Adam's fixed betas (0.9, 0.999): for 0.5 < b < 1, fmod(1, b) is "
    "1 - b, and both are exact (fmod always, the difference by Sterbenz): the same float"
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
        Equivalent(
            'if self.params.signal == "impressions":',
            'if self.params.signal is "impressions":',
            LITERAL_IS,
        ),
        Equivalent(
            'if sig == "impressions":',
            'if sig >= "impressions":',
            "`signal` is a Literal of clicks, impressions, engagement: none sorts after "
            "impressions, so `>=` holds exactly for impressions",
        ),
        Equivalent(
            "self._seen = -1  # with `cumulative`, the last logged step counted",
            "self._seen = - 2  # with `cumulative`, the last logged step counted",
            STEPS_FROM_ZERO,
        ),
        Equivalent(
            'self._seen = int(state.get("seen", -1))',
            'self._seen = int(state.get("seen", - 2))',
            STEPS_FROM_ZERO,
        ),
    ],
    "agents/cumulative.py": [
        Equivalent(
            "return (np.asarray(users, np.int64) << 32) | np.asarray(items, np.int64)",
            "return (np.asarray(users, np.int64) << 32) + np.asarray(items, np.int64)",
            "item ids are below 2**32 (the documented domain): their bits never meet the "
            "user's bits shifted by 32, so `|`, `+` and `^` give the same key",
        ),
        Equivalent(
            "return (np.asarray(users, np.int64) << 32) | np.asarray(items, np.int64)",
            "return (np.asarray(users, np.int64) << 32) ^ np.asarray(items, np.int64)",
            "item ids are below 2**32 (the documented domain): their bits never meet the "
            "user's bits shifted by 32, so `|`, `+` and `^` give the same key",
        ),
        Equivalent(
            "changes = ranked[:, 1:] != ranked[:, :-1]",
            "changes = ranked[:, 1:] > ranked[:, :-1]",
            "`ranked` holds each row's keys sorted ascending (finite or inf, never NaN: scores "
            "are numbers), so a key differs from the one before exactly when it is greater",
        ),
    ],
    "agents/interleave.py": [
        Equivalent(
            "if b == 0 or length == 0:",
            "if b <= 0 or length == 0:",
            "`b` is an array dimension, never negative",
        ),
        Equivalent(
            "if b == 0 or length == 0:",
            "if b == 0 or length < 0:",
            "a dimension is never negative, and lists of length 0 (with users) have no new "
            "item: the `not most` guard returns `ranked` itself, as this one does",
        ),
        Equivalent(
            "taken[taken == length] = -1",
            "taken[taken >= length] = -1",
            "no entry of `taken` exceeds `length`: a slot t <= j < length, or the fill `length`",
        ),
    ],
    "agents/lazy_adam.py": [
        Equivalent(
            "m = self.m[r].mul_(b1).add_(grad, alpha=1 - b1)",
            "m = self.m[r].mul_(b1).add_(grad, alpha=1 % b1)",
            ADAM_BETA_MOD,
        ),
        Equivalent(
            "v = self.v[r].mul_(b2).addcmul_(grad, grad, value=1 - b2)",
            "v = self.v[r].mul_(b2).addcmul_(grad, grad, value=1 % b2)",
            ADAM_BETA_MOD,
        ),
    ],
    "agents/nnls.py": [
        Equivalent(
            "d = 1.0 / np.sqrt(np.where(diag > 0, diag, np.inf))",
            "d = 1.0 / np.sqrt(np.where(diag != 0, diag, np.inf))",
            "the Gram matrix is positive semi-definite (A^T A): its diagonal entries are sums "
            "of squares, never negative, so `!= 0` and `> 0` pick the same entries",
        ),
        Equivalent(
            "ok = ~(guess[rows] & (z <= tol)).any(axis=1)",
            "ok = ~(guess[rows] * (z <= tol)).any(axis=1)",
            BOOL_MUL,
        ),
    ],
    "agents/rerank.py": [
        Equivalent(
            "std > 0, (proj - proj.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1), 0",
            "std != 0, (proj - proj.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1), 0",
            "a standard deviation is never negative: `!= 0` and `> 0` agree",
        ),
    ],
}
