"""Equivalent mutants of ``environments/*``.

Part of :mod:`mutation_equivalent` (see its docstring for what an entry is and the recurring
reasons), which joins the parts into ``EQUIVALENT``.
"""

from __future__ import annotations

from mutation_equivalent_reasons import (
    BOOL_MUL,
    LITERAL_IS,
    NEVER_NEGATIVE,
    ONE_DIM_LENGTH,
    ROW_BLOCK,
    Equivalent,
)

ENVIRONMENTS: dict[str, list[Equivalent]] = {
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
            "pairs = (self._uid[:, None] << _PAIR_SHIFT) | new[None, :]",
            "pairs = (self._uid[:, None] << _PAIR_SHIFT) ^ new[None, :]",
            "item ids are below 2**32 and the shifted user ids have no bit below 32: the two "
            "operands share no bit, so `|` and `^` give the same key",
        ),
        Equivalent(
            ")[0]",
            ")[ -1]",
            "the hyper-prior draws (attributes' and preferences') are of one id, "
            "np.zeros(1): a (1, K) array whose only row is [0] and [-1]",
        ),
        Equivalent(
            "if self._ids.size and new[0] < self._ids[-1]:  # not appended in id order",
            "if self._ids.size and new[0] != self._ids[-1]:  # not appended in id order",
            "`new` holds only ids not cached, so never `self._ids[-1]`: the mutant re-sorts "
            "every time, and a stable sort of ids already in order leaves them as they are",
        ),
        Equivalent(
            "self._new_sources = np.zeros(0, np.int8)",
            "self._new_sources = np.zeros( 1, np.int8)",
            "the value before the first step is never read: the world reads new_item_sources "
            "only after content.step (World.step_content), which replaces it",
        ),
    ],
    "environments/chaney_memo.py": [
        Equivalent(
            "if end > held.shape[0]:  # extend the held rows 0.. to cover ids",
            "if end != held.shape[0]:  # extend the held rows 0.. to cover ids",
            "below `held.shape[0]` the extension draws the empty range and concatenates "
            "nothing: the same held rows",
        ),
        Equivalent(
            "if end > held.shape[0]:  # extend the held rows 0.. to cover ids",
            "if end is not held.shape[0]:  # extend the held rows 0.. to cover ids",
            "as `!=`: an extension over the empty range concatenates nothing",
        ),
        Equivalent(
            "return np.zeros((0, mu.shape[0]))",
            "return np.zeros((0, mu.shape[ -1]))",
            ONE_DIM_LENGTH + " (mu_alpha, (K,))",
        ),
        Equivalent(
            "if end > held.shape[0]:  # extend the held rows 0.. to cover ids",
            "if end >= held.shape[0]:  # extend the held rows 0.. to cover ids",
            "at `end == held.shape[0]` the extension draws no item and concatenates nothing: "
            "the same held rows",
        ),
        Equivalent(
            "held = self._held.get(key, np.zeros((0, mu.shape[0])))",
            "held = self._held.get(key, np.zeros((0, mu.shape[ -1])))",
            ONE_DIM_LENGTH + " (mu_alpha, (K,))",
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
    "environments/items.py": [
        Equivalent(
            "self.original = np.full(self.item_ids.shape[0], -1, np.int64)",
            "self.original = np.full(self.item_ids.shape[ -1], -1, np.int64)",
            ONE_DIM_LENGTH,
        ),
    ],
    "environments/platform.py": [
        *[
            Equivalent(
                "width = n if c == 0 or c + most >= n else c + most",
                f"width = n if c == 0 or {cond} else c + most",
                "a window wider than the catalog (c + most > n) wraps onto itself, but its "
                "first n entries are a whole permutation holding at least n - most unconsumed "
                "items, and only the first `size` <= n - most of them are kept: the same rows",
            )
            for cond in ("c ^ most >= n", "c + most == n")
        ],
        Equivalent(
            "self._topics = np.full((hi - lo, 2 * length), PAD, np.int64)",
            "self._topics = np.full((hi ^ lo, 2 * length), PAD, np.int64)",
            "for hi >= lo >= 0, hi ^ lo >= hi - lo (hi ^ lo - (hi - lo) = 2 (lo - (hi & lo))): "
            "only unused rows past the shard's users are added",
        ),
        *[
            Equivalent(
                "if (dropped != width - size).any():  # rows with more than `size` left: the first",
                f"if (dropped {op}).any():  # rows with more than `size` left: the first",
                "width - size is `most` and no user dropped more than `most` consumed items, so "
                "`<` is `!=`; the condition only picks the trimming path, exact for every row, "
                "over the reshape that holds when every row dropped `most`",
            )
            for op in ("< width - size", "!= width ^ size")
        ],
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
        Equivalent(
            "rows, cols = np.nonzero(cov >= cov.max(axis=1).min())",
            "rows, cols = np.nonzero(cov >= cov.max(axis= 0).min())",
            "cov is a covariance matrix (symmetric, its diagonal set to -inf): the maxima of "
            "its columns are those of its rows",
        ),
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
        Equivalent("_UTILITY_BLOCK = 1 << 18", "_UTILITY_BLOCK = 1 / 18", ROW_BLOCK),
        Equivalent("_UTILITY_BLOCK = 1 << 18", "_UTILITY_BLOCK = 1 % 18", ROW_BLOCK),
        *[
            Equivalent(
                "if user_ids.shape[0] == n and n and user_ids[0] == self.lo and user_ids[-1] == "
                "self.hi - 1:",
                "if user_ids.shape[0] == n and n and user_ids[0] == self.lo and user_ids[-1] == "
                f"self.hi {op} 1:",
                "the condition only picks the slice over the general path's gather of the "
                "same rows (user_ids - lo); taking it less often is speed only",
            )
            for op in ("%", "&")
        ],
        Equivalent("n = uid.shape[0]", "n = uid.shape[ -1]", ONE_DIM_LENGTH),
        Equivalent(
            "out = np.empty((loc.shape[0], rows.shape[0]), np.float32)",
            "out = np.empty((loc.shape[0], rows.shape[ -1]), np.float32)",
            ONE_DIM_LENGTH + " (`rows` of the one shared candidate row)",
        ),
        Equivalent(
            "here = self._arrive.uniform(self._uid, t) < prob",
            "here = self._arrive.uniform(self._uid, t) <= prob",
            "a uniform draw (53 random bits) equals the float64 return probability with "
            "probability about 2**-53 per user-step: no run can tell `<=` from `<`",
        ),
        Equivalent(
            "if user_ids.shape[0] == n and n and user_ids[0] == self.lo and user_ids[-1] == "
            "self.hi - 1:",
            "if user_ids.shape[0] == n and n and user_ids[0] == self.lo and user_ids[-1] != "
            "self.hi - 1:",
            "n increasing, unique ids of [lo, hi) starting at lo end at hi - 1, so the mutant "
            "never takes the slice: the general path gathers the same rows (a copy, not a "
            "view), speed only",
        ),
        Equivalent(
            "return u.astype(np.float32, copy=False)",
            "return u.astype(np.float32, copy=True)",
            "u is a fresh array of this call: a copy of it holds the same values",
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
