"""Equivalent mutants of the agents' model families.

Bandit models, generative, the re-rankers, slate-ts and two-tower. Part of
:mod:`mutation_equivalent` (see its docstring for what an entry is and the recurring
reasons), which joins the parts into ``EQUIVALENT``; the other agents are in
:mod:`mutation_equivalent_agents`.
"""

from __future__ import annotations

from mutation_equivalent_reasons import (
    LAST_AXIS_OF_2D,
    LITERAL_IS,
    NEVER_NEGATIVE,
    PAD_BELOW_IDS,
    ROW_BLOCK,
    SQUARE_SHAPE,
    TWO_OR_THREE_DIMS,
    Equivalent,
    mutants_of,
)

MODELS: dict[str, list[Equivalent]] = {
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
            "x = pair_features(u[:, None, :], v).reshape(-1, self._a.shape[0])",
            "x = pair_features(u[:, None, :], v).reshape(-1, self._a.shape[ 1])",
            SQUARE_SHAPE,
        ),
        Equivalent(
            "x = pair_features(u[:, None, :], v).reshape(-1, self._a.shape[0])",
            "x = pair_features(u[:, None, :], v).reshape(~1, self._a.shape[0])",
            "numpy (2.4) takes any negative size in reshape as the one to infer: -2 reshapes "
            "like -1, without a warning",
        ),
        *[
            Equivalent(
                f"{lhs}(2 * d + 1)",
                f"{lhs}(2 * d ^ 1)",
                "2 d is even, so 2 d ^ 1 (xor binds after *) is 2 d + 1 for every d",
            )
            for lhs in ("self._b = np.zeros", "self._a = self.params.reg * np.eye")
        ],
        *[
            Equivalent(
                "elif self._a.shape[0] != 2 * d + 1:",
                f"elif self._a.shape[0] != 2 * d {op} 1:",
                f"2 d is even, so 2 d {op} 1 (binding after *) is 2 d + 1 for every d",
            )
            for op in ("|", "^")
        ],
        Equivalent(
            "size = max(max_id + 1, 2 * self._d.shape[0], 1024)",
            "size = max(max_id + 1, 2 * self._d.shape[0], 1023)",
            "the edge tables' smallest capacity, a speed-only constant: edge_stats and "
            "apply_update grow the tables past the largest id before reading or adding, rows "
            "past the largest id added are zeros that no one reads (the state holds 1023 or "
            "1024 of them: loaded, either serves and learns the same)",
        ),
    ],
    "agents/bandits.py": [
        Equivalent(
            "np.maximum(width, 0.0, out=width)",
            "np.maximum(width, -1.0, out=width)",
            "x = [u * v, v, 1] has a constant 1, so x' A^-1 x >= 1 / lambda_max(A) > 0, far "
            "above its rounding error (terms bounded by |x|^2 / reg): the clamp never binds",
        ),
        Equivalent(
            "self._b = np.zeros((0, 0))  # (capacity, clusters) sums of w r",
            "self._b = np.zeros((0, 1))  # (capacity, clusters) sums of w r",
            "a placeholder: the edge tables are rebuilt with the clusters' width when the "
            "clusters are fitted (first act or start-up record), before anything adds to or "
            "reads them",
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
    "agents/rerank.py": [
        Equivalent(
            "std > 0, (proj - proj.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1), 0",
            "std > 0, (proj + proj.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1), 0",
            "the standardised projection is subtracted from a row's scores and only their order "
            "within the row is used: adding instead of subtracting the row's mean shifts every "
            "score of the row by the same amount",
        ),
        Equivalent(
            "std > 0, (proj - proj.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1), 0",
            "std > 0, (proj - proj.mean(axis=1, keepdims=True)) / np.where(std >= 0, std, 1), 0",
            "where std is 0 the outer `np.where(std > 0, ..., 0)` discards the quotient, so the "
            "divisor there is never read",
        ),
        Equivalent(
            "std > 0, (proj - proj.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1), 0",
            "std != 0, (proj - proj.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1), 0",
            "a standard deviation is never negative: `!= 0` and `> 0` agree",
        ),
        Equivalent(
            "return (exp > 0) & (num_greater < head_share * n)",
            "return (exp != 0) & (num_greater < head_share * n)",
            NEVER_NEGATIVE + " (exp: impression counts)",
        ),
        Equivalent(
            "key = np.where(pick, k + pos / length, key)"
            "  # after the kept top items, before the rest",
            "key = np.where(pick, k + pos // length, key)"
            "  # after the kept top items, before the rest",
            "pos < length, so pos // length is 0: every picked item gets key k, between the kept "
            "top items (keys < k) and the rest (keys > k), and the stable sort keeps the picked "
            "ones in position order, the order pos / length gives them",
        ),
    ],
    "agents/rerank_groups.py": [
        Equivalent(
            "ratio = np.where(tgt > 0, tgt, 1) / np.where(tgt > 0, q_s, 1)",
            "ratio = np.where(tgt != 0, tgt, 1) / np.where(tgt > 0, q_s, 1)",
            NEVER_NEGATIVE + " (tgt: the history's group shares)",
        ),
        *mutants_of(
            "dist = (x**2).sum(1)[:, None] - 2 * x @ centres.T + (centres**2).sum(1)[None, :]",
            (
                ("dist = (x**2)", "dist = (x** 1)"),
                ("dist = (x**2)", "dist = (x//2)"),
                ("dist = (x**2)", "dist = (x-2)"),
                ("dist = (x**2)", "dist = (x/2)"),
            ),
            "a change of the |x|^2 term of |x - c|^2, which is the same for every centre of "
            "a row: the argmin over the centres is unchanged (in exact arithmetic; 3,000 "
            "random inputs, grids with ties among them, gave the same labels)",
        ),
        Equivalent(
            "centres[0] = x[min(int(draws[0] * n), n - 1)]",
            "centres[0] = x[min(int(draws[0] * n), n << 1)]",
            "draws are on the open (0, 1), so int(draws * n) <= n - 1 already: the clamp "
            "never binds, and a larger one neither",
        ),
        Equivalent(
            'if groups == "source":',
            'if groups is "source":',
            LITERAL_IS,
        ),
        Equivalent(
            "idx = int(np.searchsorted(cum, draws[c] * cum[-1])) if cum[-1] > 0 else c",
            "idx = int(np.searchsorted(cum, draws[c] * cum[-1])) if cum[-1] != 0 else c",
            NEVER_NEGATIVE + " (cum: running sums of squared distances)",
        ),
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
            "_NORMALS_BLOCK = 1 << 14",
            "_NORMALS_BLOCK = 1 % 14",
            "1 pair per block gives blocks of one user (`max(1, ..)`): a speed choice only",
        ),
        Equivalent(
            "if not (log.slates != PAD).any():  # an empty log, or padding only",
            "if not (log.slates > PAD).any():  # an empty log, or padding only",
            PAD_BELOW_IDS,
        ),
        Equivalent(
            "users=users.reshape(-1).astype(np.int64),",
            "users=users.reshape(- 2).astype(np.int64),",
            "numpy takes any negative size in reshape as the one inferred dimension (numpy "
            "2.4: `reshape(-2)` of a 1-D array is itself), so -2 is -1",
        ),
        Equivalent(
            "feats = np.zeros((item_ids.shape[0], log.features.shape[1]), np.float32)",
            "feats = np.zeros((item_ids.shape[ -1], log.features.shape[1]), np.float32)",
            "item_ids is 1-D (np.unique of the log's shown items): its last axis is its first",
        ),
        Equivalent("shown = log.slates != PAD", "shown = log.slates > PAD", PAD_BELOW_IDS),
        Equivalent(
            "self._grow_users(int(ids.max(initial=0)), feats.shape[1])",
            "self._grow_users(int(ids.max(initial= -1)), feats.shape[1])",
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
