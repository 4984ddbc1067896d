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
- ``BOOL_MUL``: ``*`` for ``&`` of two boolean arrays: numpy's product of booleans is their
  logical and, a boolean array again.
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

BOOL_MUL = "`*` for `&` of two boolean arrays: numpy's product of booleans is their logical and"

ROWS_GUARD_BEFORE = (
    "if user_ids.shape[0] == n and n and user_ids[0] == self.lo and user_ids[-1] == self.hi - 1:"
)
ROWS_GUARD = (
    "the whole-shard guard of `_rows_of` only picks a slice instead of the copy `user_ids - lo`, "
    "the same rows; served ids are the shard's own (never past hi - 1), so no mutant of it "
    "takes the slice for other ids"
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
    "environments/chaney.py": [
        Equivalent(
            ")[0]",
            ")[ -1]",
            "the hyper-prior draws (attributes' and preferences') are of one id, "
            "np.zeros(1): a (1, K) array whose only row is [0] and [-1]",
        ),
    ],
    "environments/content.py": [
        Equivalent(
            "self.adoption = Adoption(p.adoption, ctx.seed) "
            'if p.production == "adoption" else None',
            "self.adoption = Adoption(p.adoption, ctx.seed) "
            'if p.production is "adoption" else None',
            LITERAL_IS,
        ),
        Equivalent(
            "self.adoption = Adoption(p.adoption, ctx.seed) "
            'if p.production == "adoption" else None',
            "self.adoption = Adoption(p.adoption, ctx.seed) "
            'if p.production <= "adoption" else None',
            "the only other production, schedule, sorts after adoption",
        ),
        Equivalent(
            'style = Stream(ctx.seed, "content/style").normal(np.zeros(1, np.int64), 0, size=d)[0]',
            'style = Stream(ctx.seed, "content/style")'
            ".normal(np.zeros( 2, np.int64), 0, size=d)[0]",
            "a second row of the same id 0 is the same draw; row 0 is read either way",
        ),
        Equivalent(
            'reward = counts if p.adoption.signal == "impressions" else self._clicked(items)',
            'reward = counts if p.adoption.signal is "impressions" else self._clicked(items)',
            LITERAL_IS,
        ),
        Equivalent(
            "if p.exit_threshold > 0 and last_exposure is not None:",
            "if p.exit_threshold >= 0 and last_exposure is not None:",
            "exposure is never negative, so at exit_threshold 0 (its least allowed value) the "
            "pool counts no low step: streaks stay 0 and nobody exits",
        ),
    ],
    "environments/creator_pool.py": [
        Equivalent(
            "low = self.active & (exposure < threshold)",
            "low = self.active * (exposure < threshold)",
            BOOL_MUL,
        ),
        Equivalent(
            "leaving = self.active & (self.low_streak >= patience)",
            "leaving = self.active * (self.low_streak >= patience)",
            BOOL_MUL,
        ),
        Equivalent(
            "return np.flatnonzero(self.active & (self.source == source))",
            "return np.flatnonzero(self.active * (self.source == source))",
            BOOL_MUL,
        ),
    ],
    "environments/interest_evolution.py": [
        Equivalent(
            ROWS_GUARD_BEFORE,
            ROWS_GUARD_BEFORE.replace("self.hi - 1:", "self.hi / 1:"),
            ROWS_GUARD,
        ),
        Equivalent(
            ROWS_GUARD_BEFORE,
            ROWS_GUARD_BEFORE.replace("self.hi - 1:", "self.hi % 1:"),
            ROWS_GUARD,
        ),
        Equivalent(
            ROWS_GUARD_BEFORE,
            ROWS_GUARD_BEFORE.replace("[-1] == self.hi - 1:", "[-1] < self.hi - 1:"),
            ROWS_GUARD,
        ),
        Equivalent(
            ROWS_GUARD_BEFORE,
            ROWS_GUARD_BEFORE.replace("[-1] == self.hi - 1:", "[-1] >= self.hi - 1:"),
            ROWS_GUARD,
        ),
        Equivalent(
            ROWS_GUARD_BEFORE,
            ROWS_GUARD_BEFORE.replace("[-1] == self.hi - 1:", "[- 2] == self.hi - 1:"),
            ROWS_GUARD,
        ),
        Equivalent(
            "if item_ids.ndim == 2 and item_ids.shape[0] > 1 and item_ids.strides[0] == 0:",
            "if item_ids.ndim >= 2 and item_ids.shape[0] > 1 and item_ids.strides[0] == 0:",
            "candidate ids are (B, C): never more than 2 dimensions",
        ),
    ],
    "environments/recsim_common.py": [
        Equivalent(
            "if n and self.item_ids[0] == 0 and self.item_ids[-1] == n - 1:  # sorted, unique",
            "if n and self.item_ids[0] <= 0 and self.item_ids[-1] == n - 1:  # sorted, unique",
            "item ids are never negative (counters from 0; PAD = -1 is no item), so an id at "
            "most 0 is 0",
        ),
        Equivalent(
            "if n and self.item_ids[0] == 0 and self.item_ids[-1] == n - 1:  # sorted, unique",
            "if n and self.item_ids[0] == 0 and self.item_ids[-1] <= n - 1:  # sorted, unique",
            "n increasing integer ids from 0 end at n - 1 or later: at most n - 1 is n - 1",
        ),
    ],
    "environments/social_graph.py": [
        Equivalent('if params.kind == "random":', 'if params.kind is "random":', LITERAL_IS),
        Equivalent(
            'if params.kind == "random":',
            'if params.kind >= "random":',
            "no allowed kind (covariance, knn, random) sorts after random",
        ),
        Equivalent(
            'if self.kind != "covariance" and self.neighbours >= num_users:',
            'if self.kind is not "covariance" and self.neighbours >= num_users:',
            LITERAL_IS,
        ),
        Equivalent(
            'if self.kind != "covariance" and self.neighbours >= num_users:',
            'if self.kind > "covariance" and self.neighbours >= num_users:',
            "no allowed kind (covariance, knn, random) sorts before covariance",
        ),
        Equivalent(
            'if self.kind != "random" and num_users > MAX_DENSE_USERS:',
            'if self.kind is not "random" and num_users > MAX_DENSE_USERS:',
            LITERAL_IS,
        ),
        Equivalent(
            'if self.kind != "random" and num_users > MAX_DENSE_USERS:',
            'if self.kind < "random" and num_users > MAX_DENSE_USERS:',
            "no allowed kind (covariance, knn, random) sorts after random",
        ),
        Equivalent(
            'if params.kind == "covariance":',
            'if params.kind is "covariance":',
            LITERAL_IS,
        ),
        Equivalent(
            'if params.kind == "covariance":',
            'if params.kind <= "covariance":',
            "no allowed kind (covariance, knn, random) sorts before covariance",
        ),
    ],
    "environments/users.py": [
        Equivalent(
            "if item_ids.strides[0] == 0:  # shared candidates: one matrix product",
            "if item_ids.strides[0] < 0:  # shared candidates: one matrix product",
            "a speed path: candidates never have a negative row stride, and without the branch "
            "shared candidates take the general one, which computes the same utility from the "
            "same float32 operands (an einsum over the broadcast row instead of one matrix "
            "product: equal up to float32 summation order)",
        ),
        Equivalent(
            "rows = items.rows(item_ids[0])",
            "rows = items.rows(item_ids[ -1])",
            "the branch runs only for a row stride of 0: every row is the same memory",
        ),
        Equivalent(
            "if p.churn_threshold > 0:",
            "if p.churn_threshold >= 0:",
            "satisfaction is an average of 0.5 and engagements in [0, 1], never below 0, so at "
            "churn_threshold 0 (its least allowed value) no visit is poor: the branch keeps "
            "poor_visits at 0 and churns nobody",
        ),
    ],
}
