"""Equivalent mutants of ``agents/*`` (the model families: :mod:`mutation_equivalent_models`).

Part of :mod:`mutation_equivalent` (see its docstring for what an entry is and the recurring
reasons), which joins the parts into ``EQUIVALENT``.
"""

from __future__ import annotations

from mutation_equivalent_reasons import (
    ADAM_BETA_MOD,
    BOOL_MUL,
    LITERAL_IS,
    ONE_DIM_LENGTH,
    PAD_BELOW_IDS,
    ROW_BLOCK,
    STEPS_FROM_ZERO,
    Equivalent,
    mutants_of,
)

_GRU_BLOCKS = "for sub in row_blocks(x.shape[0], (steps + 1) * 3 * x.shape[2], _STATE_BLOCK):"
"""gru4rec's blocks of users (`row_blocks` over each user's gate values)."""

AGENTS: dict[str, list[Equivalent]] = {
    "agents/bandit_math.py": [
        Equivalent(
            "for sub in row_blocks(b, c * idx.shape[1], _SERVE_BLOCK):",
            "for sub in row_blocks(b, c - idx.shape[1], _SERVE_BLOCK):",
            "the users per serving block are a speed choice only: every score is per user, so "
            "any blocks of users give the same slates",
        ),
        Equivalent(
            "step = max(1, _SCORE_BLOCK // max(c * idx.shape[1], 1))  # users per block",
            "step = max( 2, _SCORE_BLOCK // max(c * idx.shape[1], 1))  # users per block",
            "blocks of two users instead of one where one user's cells exceed a block: a "
            "speed choice only (per-row einsums)",
        ),
        Equivalent(
            "step = max(1, _SCORE_BLOCK // max(c * idx.shape[1], 1))  # users per block",
            "step = max(1, _SCORE_BLOCK * max(c * idx.shape[1], 1))  # users per block",
            "the users per block are a speed choice only: each user's scores are computed "
            "alone (per-row einsums), so one block of every user gives the same arrays",
        ),
        Equivalent(
            "step = max(1, _SCORE_BLOCK // max(c * idx.shape[1], 1))  # users per block",
            "step = max(1, _SCORE_BLOCK ** max(c * idx.shape[1], 1))  # users per block",
            "as `*`: one block of every user, each user's scores computed alone (per-row "
            "einsums), so the same arrays",
        ),
        Equivalent("_SERVE_BLOCK = 1 << 20", "_SERVE_BLOCK = 1 ** 20", ROW_BLOCK),
        Equivalent(
            "new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1.0)[:, None], centres)",
            "new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 0.0)[:, None], centres)",
            "the divisor only differs where a cluster is empty (count 0), and there np.where "
            "keeps the old centre whatever the division gave; elsewhere counts are >= 1",
        ),
    ],
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
        Equivalent("_CHECK_BLOCK = 1 << 16", "_CHECK_BLOCK = 1 + 16", ROW_BLOCK),
        Equivalent("_CHECK_BLOCK = 1 << 16", "_CHECK_BLOCK = 1 * 16", ROW_BLOCK),
        Equivalent("_CHECK_BLOCK = 1 << 16", "_CHECK_BLOCK = 1 | 16", ROW_BLOCK),
        Equivalent("_RANK_BLOCK = 1 << 18", "_RANK_BLOCK = 0 << 18", ROW_BLOCK),
        Equivalent(
            "np.cumsum(hk[:, 1:] != hk[:, :-1], axis=1, out=run[:, 1:])  # run of each head item",
            "np.cumsum(hk[:, 1:] > hk[:, :-1], axis=1, out=run[:, 1:])  # run of each head item",
            "the head is sorted by key (lexsort), so neighbouring keys never decrease: `>` holds "
            "exactly where `!=` does (a row with NaN is ranked whole)",
        ),
        Equivalent(
            "comp = np.where(less, -1.0, np.where(eq, draw, 2.0))  # below t, then t by draw, "
            "then above",
            "comp = np.where(less, -1.0, np.where(eq, draw, 1.0))  # below t, then t by draw, "
            "then above",
            "draws are in (0, 1): 1.0, like 2.0, puts the keys above t after every draw",
        ),
        Equivalent(
            "_CHECK_BLOCK = 1 << 16",
            "_CHECK_BLOCK = 1 % 16",
            "the rows per block of the counts check are a speed choice only (blocks of at "
            "least 64 rows check the same keys)",
        ),
        Equivalent(
            "_CHECK_BLOCK = 1 << 16",
            "_CHECK_BLOCK = 1 ^ 16",
            "the rows per block of the counts check are a speed choice only (see `%`)",
        ),
        Equivalent(
            "ok = (group[:, 1:] > group[:, :-1]).all(axis=1) & (nxt > group[:, -1])",
            "ok = (group[:, 1:] != group[:, :-1]).all(axis=1) & (nxt > group[:, -1])",
            "the head is sorted by key then draw, so its run-plus-draw values never decrease: "
            "`!=` holds exactly where `>` does",
        ),
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
            "every = tied.size >= b  # (then no row copies)",
            "`tied` holds row indices of the `b` rows, each once: its size is never above `b`",
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
            "again = np.flatnonzero((group[:, 1:] == group[:, :-1]).any(axis=1))",
            "again = np.flatnonzero((group[:, 1:] <= group[:, :-1]).any(axis=1))",
            "as `!=` above: `group` is sorted, so `<=` flags the rows with equal neighbours "
            "and the others alike, and every flagged row is re-ranked the old way, which gives "
            "the fast path's answer wherever that is sure: the same arrays, slower",
        ),
        Equivalent(
            "key[at] = _LAST * (1.0 + draw)  # after every finite score, in a random order",
            "key[at] = _LAST * ( 0.0 + draw)  # after every finite score, in a random order",
            "the late items' keys move to 1e300 * draw: draws are above 2**-54, so keys "
            "above 5e283, still above every -score of the domain (see `2.0` above) and "
            "ordered by their draws: the same ranking",
        ),
        Equivalent(
            "if log.num_rows == 0:",
            "if log.num_rows <= 0:",
            "a log's row count is never negative",
        ),
    ],
    "agents/implicit_mf.py": [
        Equivalent(
            "return (np.linalg.pinv(mats, hermitian=True) @ rhs[..., None])[..., 0]",
            "return (np.linalg.pinv(mats, hermitian=True) @ rhs[..., None])[..., -1]",
            "`[..., -1]` for `[..., 0]` of the solves' last axis, of length 1 (`rhs[..., None]`): "
            "its only entry either way",
        ),
        Equivalent(
            "y0 = rng.standard_normal((item_ids.shape[0], self.num_factors)) * p.init_scale",
            "y0 = rng.standard_normal((item_ids.shape[ -1], self.num_factors)) * p.init_scale",
            ONE_DIM_LENGTH + " (item_ids, from np.unique)",
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
        Equivalent("_SCORE_BLOCK = 1 << 16", "_SCORE_BLOCK = 2 << 16", ROW_BLOCK),
        Equivalent("_SCORE_BLOCK = 1 << 16", "_SCORE_BLOCK = 1 << 15", ROW_BLOCK),
        Equivalent("_SCORE_BLOCK = 1 << 16", "_SCORE_BLOCK = 1 / 16", ROW_BLOCK),
        Equivalent("_SCORE_BLOCK = 1 << 16", "_SCORE_BLOCK = 0 << 16", ROW_BLOCK),
        Equivalent("_STATE_BLOCK = 1 << 20", "_STATE_BLOCK = 1 >> 20", ROW_BLOCK),
        Equivalent("_STATE_BLOCK = 1 << 20", "_STATE_BLOCK = 1 | 20", ROW_BLOCK),
        *mutants_of(
            _GRU_BLOCKS,
            (
                ("(steps + 1) * 3 * x", "(steps | 1) * 3 * x"),
                ("3 * x.shape[2]", "3 << x.shape[2]"),
                ("3 * x.shape[2]", "3 & x.shape[2]"),
                ("3 * x.shape[2]", "3 ^ x.shape[2]"),
                ("(steps + 1)", "(steps + 0)"),
            ),
            ROW_BLOCK,
        ),
        Equivalent(
            "neg = gen.integers(0, n, size=(self.params.epochs, users.shape[0]))",
            "neg = gen.integers(0, n, size=(self.params.epochs, users.shape[ -1]))",
            "users is 1-D (the log's clicking users): its last axis is its first",
        ),
        Equivalent(
            "steps = int(lengths.max(initial=0))",
            "steps = int(lengths.max(initial= -1))",
            "the initial value shows only for a batch of no users, whose states are empty "
            "either way (lengths are never negative)",
        ),
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
    "agents/ties.py": [
        Equivalent(
            "pairs = (np.arange(b, dtype=np.int64)[:, None] << 32) | candidates",
            "pairs = (np.arange(b, dtype=np.int64)[:, None] << 32) ^ candidates",
            "item ids are below 2**32, so the row number shifted past them shares no bit with "
            "them: `^` and `|` give the same keys",
        ),
        Equivalent(
            "return np.where((s <= slot) & (slot < s + g), 1.0 / g, 0.0)",
            "return np.where((s <= slot) * (slot < s + g), 1.0 / g, 0.0)",
            BOOL_MUL,
        ),
    ],
}
