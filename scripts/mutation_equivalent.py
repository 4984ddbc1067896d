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
- ``SQUARE_SHAPE``: ``shape[1]`` or ``shape[-1]`` for ``shape[0]`` of a square matrix.
- ``NEVER_NEGATIVE``: ``!= 0`` for ``> 0`` (``<= 0`` for ``== 0``) on counts and shares.
- ``TWO_OR_THREE_DIMS``: ``>=``/``<=`` for ``==`` on a ``dim()`` that is 2 or 3.
- ``LAST_AXIS_OF_2D``: axis ``1`` for ``-1`` of a 2-D array.
- ``PAD_BELOW_IDS``: ``> PAD`` for ``!= PAD`` on item ids (``PAD = -1``; ids are ``>= 0``).
- ``BOOL_MUL``: ``*`` for ``&`` of two boolean arrays: numpy's product of booleans is their
  logical and, a boolean array again.
- ``STEPS_FROM_ZERO``: a "nothing counted yet" step marker of ``-1`` changed to another
  negative number: the world's steps count from 0 (``World.t`` starts at 0 and only grows),
  so ``step > -1`` and ``step > -2`` hold for the same steps.
- ``ADAM_BETA_MOD``: ``1 % b`` for ``1 - b`` at Adam's fixed betas.
- ``RENDER_FPS_HINT``: the ``render_fps`` metadata hint, read only by rgb_array renderers.
- ``ONE_DIM_LENGTH``: ``shape[-1]`` for ``shape[0]`` of a 1-D array: its only axis.
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

EQUIVALENT: dict[str, list[Equivalent]] = {
    # -- agents ---------------------------------------------------------------------------
    "agents/base.py": [
        Equivalent(
            'if vals.dtype.kind == "f":',
            'if vals.dtype.kind >= "f":',
            "only kinds f and i reach the torch path (bools and unsigned are cast to int8/int64/"
            "float64 by _signed, other kinds return to numpy earlier); 'i' sorts after 'f', so "
            "the mutant also runs np.isnan on integer values, which is all False: `unsure` is "
            "unchanged",
        ),
        Equivalent(
            "head_n = min(k + 1, scores.shape[1])",
            "head_n = min(k ** 1, scores.shape[1])",
            "the tie check then stops at the k-th score instead of the (k+1)-th: a row whose "
            "only tie straddles the slate's end is ranked by the full sort instead of the "
            "reference, and numpy's sort keeps the same tied item as argpartition + stable "
            "sort there (0 of 3,000 random rows with 1-11 boundary ties differed, float32 "
            "and float64, 10-1,000 columns); the k + 1 check guards builds where they differ",
        ),
        Equivalent(
            "if values.dtype != np.float32 or values.shape[-1] < _PACKED_MIN or "
            "np.isnan(values).any():",
            "if values.dtype != np.float32 or values.shape[~1] < _PACKED_MIN or "
            "np.isnan(values).any():",
            "which of two exact ways gives the stable order (packed keys or numpy's stable "
            "argsort) is chosen by the row count instead of the width: speed only",
        ),
        Equivalent(
            "if values.dtype != np.float32 or values.shape[-1] < _PACKED_MIN or "
            "np.isnan(values).any():",
            "if values.dtype != np.float32 or values.shape[- 0] < _PACKED_MIN or "
            "np.isnan(values).any():",
            "as `shape[~1]`: the row count picks between two exact ways, speed only",
        ),
        Equivalent(
            "unsure = (vals[:, 1:] == vals[:, :-1]).any(axis=1)",
            "unsure = (vals[:, 1:] >= vals[:, :-1]).any(axis=1)",
            "torch.topk's values are in decreasing order, so a value is >= the one before it "
            "only where the two are equal",
        ),
        Equivalent(
            "def __init__(self, num_fields: int = 1) -> None:",
            "def __init__(self, num_fields: int = 2) -> None:",
            "the callers that take the default use field 0 only: a second, never-read row of "
            "counters",
        ),
        Equivalent(
            "if scores.dtype == np.float32:  # find the rows to fall back first: one cheap "
            "float32 sort",
            "if scores.dtype < np.float32:  # find the rows to fall back first: one cheap "
            "float32 sort",
            "dtype `<` is 'casts safely to': False for float32 and wider, True for float16; "
            "both branches give the reference's answer (float16 sorts and compares exactly), "
            "so only which of two exact ways runs changes: speed only",
        ),
        Equivalent(
            "if values.ndim == 1:",
            "if values.ndim <= 1:",
            "`values` is (N,) or (B, N) as documented: never 0-d",
        ),
        Equivalent(
            "s = _signed(scores[0] if scores.ndim > 1 else scores)",
            "s = _signed(scores[0] if scores.ndim != 1 else scores)",
            "shared scores are (C,) or (B, C) as documented: `!= 1` and `> 1` agree on both",
        ),
        Equivalent(
            "unsure = (top[:, 1:] == top[:, :-1]).any(axis=1) | np.isnan(top[:, -1])",
            "unsure = (top[:, 1:] == top[:, :-1]).any(axis=1) | np.isnan(top[:, ~1])",
            "a NaN sorts last, so the mutant misses only a row with exactly one NaN, whose tie "
            "check then stops one score short, at the slate's end; numpy's full sort puts the "
            "NaN last as the reference does and keeps the same item of a tie there (see "
            "`k ** 1` above): the same answer",
        ),
    ],
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
        Equivalent(
            "every = tied.size == b  # (then no row copies)",
            "every = tied.size is b  # (then no row copies)",
            "`every` only skips copying the tied rows when all rows are tied; `is` on two ints "
            "is False at times (above 256) and the rows are then copied: the same arrays",
        ),
        Equivalent(
            "key[at] = _LAST * (1.0 + draw)  # after every finite score, in a random order",
            "key[at] = _LAST * ( 2.0 + draw)  # after every finite score, in a random order",
            "the late items' keys move from [1e300, 2e300) to [2e300, 3e300): still above "
            "every -score of the domain (`_LAST` is documented as far above any score's "
            "magnitude) and ordered by their draws, so the ranking is the same",
        ),
        Equivalent(
            "again = np.flatnonzero((group[:, 1:] == group[:, :-1]).any(axis=1))",
            "again = np.flatnonzero((group[:, 1:] != group[:, :-1]).any(axis=1))",
            "`again` rows are ranked by the old algorithm, which gives the fast path's answer "
            "wherever the fast path is sure (no equal values): the mutant re-ranks the old way "
            "every row with two different values (the same answer, slower) and leaves to the "
            "fast path only rows whose values are all equal (every draw equal: measure zero), "
            "where numpy's stable and default sorts both keep the order (tested with one draw "
            "level)",
        ),
        Equivalent(
            "if log.num_rows == 0:",
            "if log.num_rows <= 0:",
            "a log's row count is never negative",
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
    "agents/neural.py": [
        Equivalent(
            "usable = (in_log | live) & (hist != PAD)",
            "usable = (in_log | live) & (hist > PAD)",
            PAD_BELOW_IDS,
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
    "agents/bandit_models.py": [
        Equivalent(
            'f"{(self._a.shape[0] - 1) // 2}, actual: {d}"',
            'f"{(self._a.shape[0] ^ 1) // 2}, actual: {d}"',
            "A is (2 d + 1, 2 d + 1): its size n is odd, and n ^ 1 == n - 1 for every odd n",
        ),
        Equivalent(
            'f"{(self._a.shape[0] - 1) // 2}, actual: {d}"',
            'f"{(self._a.shape[ 1] - 1) // 2}, actual: {d}"',
            SQUARE_SHAPE,
        ),
        Equivalent(
            "x = pair_features(u[:, None, :], v).reshape(-1, self._a.shape[0])",
            "x = pair_features(u[:, None, :], v).reshape(-1, self._a.shape[ -1])",
            SQUARE_SHAPE,
        ),
        Equivalent(
            "size = max(max_id + 1, 2 * self._d.shape[0], 1024)",
            "size = max(max_id + 1, 2 * self._d.shape[0], 1023)",
            "the edge tables' smallest capacity, a speed-only constant: edge_stats and "
            "apply_update grow the tables past the largest id before reading or adding, rows "
            "past the largest id added are zeros that no one reads (the state holds 1023 or "
            "1024 of them: loaded, either serves and learns the same)",
        ),
    ],
    "agents/generative.py": [
        Equivalent(
            'return None if self._device == "cpu" '
            'else f"serves on {self._device} in the trial actor"',
            'return None if self._device <= "cpu" '
            'else f"serves on {self._device} in the trial actor"',
            "_resolve_device returns 'cpu' or 'cuda', and 'cuda' sorts after 'cpu'",
        ),
        Equivalent(
            'return None if self._device == "cpu" '
            'else f"serves on {self._device} in the trial actor"',
            'return None if self._device is "cpu" '
            'else f"serves on {self._device} in the trial actor"',
            "_resolve_device returns its own literal 'cpu' or 'cuda' or the validated Literal "
            "of `device`: " + LITERAL_IS,
        ),
        Equivalent(
            'keep = np.sort(np.argsort(-steps, kind="stable")[: p.training.max_examples])',
            'keep = np.sort(np.argsort(~steps, kind="stable")[: p.training.max_examples])',
            "~s == -s - 1 on the int64 click steps: the same order, the same ties (stable)",
        ),
    ],
    "agents/generative_decoding.py": [
        Equivalent(
            "codes = codes if codes.dim() == 3 else codes[None]",
            "codes = codes if codes.dim() >= 3 else codes[None]",
            TWO_OR_THREE_DIMS,
        ),
        Equivalent(
            "table, order = torch.where(ok, pref, -1).sort(-1)",
            "table, order = torch.where(ok, pref, -1).sort(1)",
            LAST_AXIS_OF_2D + " (prefixes (B | 1, C))",
        ),
        Equivalent(
            "table, order = torch.where(ok, pref, -1).sort(-1)",
            "table, order = torch.where(ok, pref, - 2).sort(-1)",
            "the prefix of a candidate with a code out of range only has to match no query and "
            "sort below the others: every query prefix is >= 0 (prefix * r + a token in "
            "[0, r)), so -1 and -2 do the same",
        ),
    ],
    "agents/generative_quantiser.py": [
        Equivalent(
            "empty = torch.nonzero(counts == 0).flatten()",
            "empty = torch.nonzero(counts <= 0).flatten()",
            NEVER_NEGATIVE + " (points per cluster)",
        ),
        Equivalent(
            'j = int(np.searchsorted(w, u, side="right")) if w[-1] > 0 else int(gen.integers(n))',
            'j = int(np.searchsorted(w, u, side="right")) if w[-1] != 0 else int(gen.integers(n))',
            NEVER_NEGATIVE + " (a sum of squared distances)",
        ),
        Equivalent(
            "start = np.maximum.accumulate(np.where(np.r_[True, g[1:] != g[:-1]], idx, 0))",
            "start = np.maximum.accumulate(np.where(np.r_[True, g[1:] > g[:-1]], idx, 0))",
            "g is sorted (the groups in lexsort order): neighbours differ only upwards",
        ),
    ],
    "agents/rerank_groups.py": [
        Equivalent(
            "ratio = np.where(tgt > 0, tgt, 1) / np.where(tgt > 0, q_s, 1)",
            "ratio = np.where(tgt != 0, tgt, 1) / np.where(tgt > 0, q_s, 1)",
            NEVER_NEGATIVE + " (tgt: the history's group shares)",
        ),
        *[
            Equivalent(
                "dist = (x**2).sum(1)[:, None] - 2 * x @ centres.T + (centres**2).sum(1)[None, :]",
                f"dist = {term}.sum(1)[:, None] - 2 * x @ centres.T + (centres**2).sum(1)[None, :]",
                "a change of the |x|^2 term of |x - c|^2, which is the same for every centre of "
                "a row: the argmin over the centres is unchanged (in exact arithmetic; 3,000 "
                "random inputs, grids with ties among them, gave the same labels)",
            )
            for term in ("(x** 1)", "(x//2)")
        ],
    ],
    "agents/slate_ts.py": [
        Equivalent(
            "if n > old:",
            "if n != old:",
            "n = max(max_id + 1, old) is never below old, so `!=` holds exactly when `>` does",
        ),
        Equivalent('if policy == "greedy":', 'if policy is "greedy":', LITERAL_IS),
        Equivalent(
            'if policy == "greedy":',
            'if policy <= "greedy":',
            "`policy` is a Literal of greedy, thompson, in-slate: none sorts before greedy, so "
            "`<=` holds exactly for greedy",
        ),
        Equivalent('if policy == "thompson":', 'if policy is "thompson":', LITERAL_IS),
        Equivalent(
            'if policy == "thompson":',
            'if policy >= "thompson":',
            "greedy has returned before this test, and in-slate, the only other policy left, "
            "sorts before thompson: `>=` holds exactly for thompson",
        ),
    ],
    "agents/slate_ts_model.py": [
        Equivalent(
            "m = data.users.shape[0]",
            "m = data.users.shape[ -1]",
            "ClickData.users is 1-D, (M,) (the agent passes users.reshape(-1)): its last axis "
            "is its first",
        ),
    ],
    "agents/two_tower.py": [
        Equivalent("keep = keep[keep != PAD]", "keep = keep[keep > PAD]", PAD_BELOW_IDS),
        Equivalent("found &= ids != PAD", "found &= ids > PAD", PAD_BELOW_IDS),
    ],
    "agents/two_tower_train.py": [
        Equivalent(
            "known = (at < len(window)) & (np.asarray(window)[np.minimum(at, len(window) - 1)] "
            "== steps)",
            "known = (at < len(window)) & (np.asarray(window)[np.minimum(at, len(window) - 1)] "
            "<= steps)",
            "`at` is np.searchsorted(window, steps) (side left): wherever `at < len(window)` "
            "holds, window[at] >= steps, so `<= steps` holds exactly when `== steps` does",
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
    "simlab/metrics/topics.py": [
        Equivalent(
            "sums = np.empty((present.shape[0], latent.shape[1]), np.float64)",
            "sums = np.empty((present.shape[ -1], latent.shape[1]), np.float64)",
            ONE_DIM_LENGTH + " (the present topics, np.unique of a 1-D array)",
        ),
        Equivalent(
            "np.searchsorted(present, snap.items.topic[rows[0]]), (b, n)",
            "np.searchsorted(present, snap.items.topic[rows[ 1]]), (b, n)",
            "the branch runs only when is_row_broadcast(rows): a (B, n) zero-copy broadcast "
            "of one row with B > 1 (stride 0), so rows[1] is the very row rows[0] is",
        ),
    ],
    "environments/adoption.py": [
        Equivalent(
            "r_a, r_h, n_a, n_h = (sum(x) for x in zip(*self._history, strict=True))",
            "r_a, r_h, n_a, n_h = (sum(x) for x in zip(*self._history, strict=False))",
            "zip's arguments are the history's rows, every one a 4-tuple (observe appends "
            "4-tuples, load_state_dict unpacks 4 values per row): their lengths never differ, "
            "so the strict check never fires",
        ),
        Equivalent(
            "if r_a + r_h <= 0 or n_a + n_h == 0:",
            "if r_a + r_h <= 0 or n_a + n_h < 0:",
            "the item counts sum to 0 only when the window held no live item, and then the "
            "rewards (per item, summed) are 0 too, so `r_a + r_h <= 0` has already returned: "
            "the second test never decides, whatever it compares",
        ),
        Equivalent(
            "aigc = source == 1",
            "aigc = source >= 1",
            "an item's source is 0 (human) or 1 (AIGC) (ItemTable.source): no source sorts "
            "after 1, so `>= 1` and `== 1` select the same items",
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
    "environments/content_publish.py": [
        Equivalent(
            "original = np.full(ids.shape[0], -1, np.int64)",
            "original = np.full(ids.shape[ -1], -1, np.int64)",
            ONE_DIM_LENGTH,
        ),
        Equivalent(
            "return latent, quality, topic, np.full(ids.shape[0], -1, np.int64)",
            "return latent, quality, topic, np.full(ids.shape[ -1], -1, np.int64)",
            ONE_DIM_LENGTH,
        ),
        Equivalent(
            "is_rw = (source == 1) & (draw[:, 0] < p.rewrite_share) & (human_ids.size > 0)",
            "is_rw = (source == 1) & (draw[:, 0] < p.rewrite_share) & (human_ids.size != 0)",
            NEVER_NEGATIVE,
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
        *(
            Equivalent(
                "if user_ids.shape[0] == self.hi - self.lo:",
                f"if user_ids.shape[0] {after}:",
                "served ids are increasing and within [lo, hi) (the population's contract), so "
                "a batch has at most hi - lo users, and a subset fewer; this test is true for "
                "the whole shard or never (hi + lo, hi | lo and hi ^ lo are at least hi - lo, "
                "equal only at lo = 0), and the whole-shard slice selects the same rows as the "
                "ids (_squash_into is squash's operations in order): speed only",
            )
            for after in (
                "> self.hi - self.lo",
                ">= self.hi - self.lo",
                "is self.hi - self.lo",
                "== self.hi + self.lo",
                "== self.hi | self.lo",
                "== self.hi ^ self.lo",
            )
        ),
        Equivalent(
            "if p.interest_update_noise and clicked.any():",
            "if p.interest_update_noise or clicked.any():",
            "the branch adds interest_update_noise * z to the consumers' rows: with the noise 0 "
            "that is an exact zero (z is finite: Box-Muller of uniforms in the open (0, 1)), "
            "and with no consumer no row: the same values (at most a -0.0 interest becomes "
            "+0.0, equal to it in every later distance, update and squash); speed only",
        ),
    ],
    "environments/interest_evolution_choice.py": [
        *(
            Equivalent(
                "if w[k, 0] < 1e-200:  # rows may underflow (extreme settings): the general path",
                f"if w[k, 0] {after}:  # rows may underflow (extreme settings): the general path",
                "the general path (_choose_general) gives the slot-by-slot path's choices bit "
                "for bit whenever no row underflows (the same float64 operations in the same "
                "order: test_slot_by_slot_choices_equal_the_general_path_bit_for_bit); this "
                "test only sends more settings (a no-choice weight in [1e-200, 1), or every "
                "one) down the general path, which is slower, not different",
            )
            for after in ("< 1.0", "<= 1e-200", "!= 1e-200", "is not 1e-200")
        ),
    ],
    "environments/gym/scenarios.py": [
        Equivalent(
            "if (chosen <= min(sizes)) if chosen else (max(sizes) == min(sizes)):",
            "if (chosen <= min(sizes)) if chosen else (max(sizes) <= min(sizes)):",
            "a list's maximum is never below its minimum, so `max <= min` holds exactly when "
            "they are equal (the catalog's size did not change over the probe)",
        ),
    ],
    "environments/items.py": [
        Equivalent(
            "self.original = np.full(self.item_ids.shape[0], -1, np.int64)",
            "self.original = np.full(self.item_ids.shape[ -1], -1, np.int64)",
            ONE_DIM_LENGTH,
        ),
    ],
    "environments/gym/sessions.py": [
        Equivalent(
            "grown = np.zeros((max(top, 2 * self.table.shape[0]), "
            "self.table.shape[1]), np.float32)",
            "grown = np.zeros((max(top, 2 + self.table.shape[0]), "
            "self.table.shape[1]), np.float32)",
            CAPACITY,
        ),
        Equivalent(
            "grown = np.zeros((max(top, 2 * self.table.shape[0]), "
            "self.table.shape[1]), np.float32)",
            "grown = np.zeros((max(top, 2 & self.table.shape[0]), "
            "self.table.shape[1]), np.float32)",
            CAPACITY,
        ),
        Equivalent(
            "if top > self.table.shape[0]:",
            "if top >= self.table.shape[0]:",
            CAPACITY,
        ),
        Equivalent(
            "self.table = np.zeros((1024, dim), np.float32)",
            "self.table = np.zeros(( 1023, dim), np.float32)",
            CAPACITY,
        ),
        Equivalent(
            "self.table = np.zeros((1024, dim), np.float32)",
            "self.table = np.zeros(( 1025, dim), np.float32)",
            CAPACITY,
        ),
        Equivalent(
            "self.known = 0",
            "self.known = -1",
            "item ids are >= 0, so `ids >= -1` and `ids >= 0` pick the same new ids at the first "
            "add, which sets `known` to max id + 1 either way",
        ),
        Equivalent(
            "served = self.served if skip is None else self.served & ~skip",
            "served = self.served if skip is None else self.served * ~skip",
            BOOL_MUL,
        ),
    ],
    "environments/gym/slate.py": [
        Equivalent(
            'metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 4}',
            'metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 3}',
            RENDER_FPS_HINT,
        ),
        Equivalent(
            'metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 4}',
            'metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 5}',
            RENDER_FPS_HINT,
        ),
        Equivalent(
            '"render_fps": 4,',
            '"render_fps": 3,',
            RENDER_FPS_HINT,
        ),
        Equivalent(
            '"render_fps": 4,',
            '"render_fps": 5,',
            RENDER_FPS_HINT,
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
