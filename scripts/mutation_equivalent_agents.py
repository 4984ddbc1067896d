"""Equivalent mutants of ``agents/*``.

Part of :mod:`mutation_equivalent` (see its docstring for what an entry is and the recurring
reasons), which joins the parts into ``EQUIVALENT``.
"""

from __future__ import annotations

from mutation_equivalent_reasons import (
    ADAM_BETA_MOD,
    BOOL_MUL,
    LAST_AXIS_OF_2D,
    LITERAL_IS,
    NEVER_NEGATIVE,
    PAD_BELOW_IDS,
    ROW_BLOCK,
    SQUARE_SHAPE,
    STEPS_FROM_ZERO,
    TWO_OR_THREE_DIMS,
    Equivalent,
)

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
        Equivalent(
            "neg = gen.integers(0, n, size=(self.params.epochs, users.shape[0]))",
            "neg = gen.integers(0, n, size=(self.params.epochs, users.shape[ -1]))",
            "users is 1-D (the log's clicking users): its last axis is its first",
        ),
        Equivalent(
            "states = _gru_states(t, torch.from_numpy(x[:, : int(lengths.max(initial=0))]))",
            "states = _gru_states(t, torch.from_numpy(x[:, : int(lengths.max(initial= -1))]))",
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
            "rows = max(1, _NORMALS_BLOCK // max(half, 1))",
            "rows = max(1, _NORMALS_BLOCK % max(half, 1))",
            "the users per block of the normals are a speed choice only: each user's normals "
            "are keyed by the user, so any block of at least one user gives the same arrays",
        ),
        Equivalent(
            "_NORMALS_BLOCK = 1 << 14",
            "_NORMALS_BLOCK = 1 * 14",
            "the block size of the normals is a speed choice only (see `%` above)",
        ),
        Equivalent(
            "_NORMALS_BLOCK = 1 << 14",
            "_NORMALS_BLOCK = 1 // 14",
            "0 pairs per block gives blocks of one user (`max(1, ..)`): a speed choice only",
        ),
        Equivalent(
            "feats = np.zeros((item_ids.shape[0], log.features.shape[1]), np.float32)",
            "feats = np.zeros((item_ids.shape[ -1], log.features.shape[1]), np.float32)",
            "item_ids is 1-D (np.unique of the log's shown items): its last axis is its first",
        ),
        Equivalent("shown = log.slates != PAD", "shown = log.slates > PAD", PAD_BELOW_IDS),
        Equivalent(
            "self._grow_users(int(obs.user_ids.max(initial=0)), obs.user_features.shape[1])",
            "self._grow_users(int(obs.user_ids.max(initial= -1)), obs.user_features.shape[1])",
            "the two differ only for a batch of no users on a fresh agent: its per-user tables "
            "then hold 0 or 1 row of zeros, a row no user has, so nothing reads it",
        ),
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
        Equivalent(
            "keep = keep[keep != PAD]",
            "keep = keep[keep is not PAD]",
            "PAD is never a known id, so the lookup that follows drops it either way; "
            "`keep[True]` adds an axis that the boolean mask of the same shape takes off",
        ),
        Equivalent(
            'return "source_debias calls the content model" if self.params.source_debias > 0 '
            "else None",
            'return "source_debias calls the content model" if self.params.source_debias != 0 '
            "else None",
            NEVER_NEGATIVE,
        ),
        Equivalent(
            "self._profile_store = np.zeros((ctx.num_users, 0), np.float32)",
            "self._profile_store = np.zeros((ctx.num_users, 1), np.float32)",
            "the store is made again at the profiles' width before its first write (act and "
            "record_served check the width), and read only for served users: its initial "
            "width never shows",
        ),
        Equivalent("_SCORE_BLOCK = 1 << 16", "_SCORE_BLOCK = 1 // 16", ROW_BLOCK),
        Equivalent("_SCORE_BLOCK = 1 << 16", "_SCORE_BLOCK = 1 & 16", ROW_BLOCK),
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
}
