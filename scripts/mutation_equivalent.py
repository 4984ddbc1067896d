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
- ``ROW_BLOCK``: the rows per block of :func:`simlab.batch.row_blocks` (multiples of 64), a
  speed choice only: every value is per row, so any blocks give the same arrays.
"""

from __future__ import annotations

from mutation_equivalent_agents import AGENTS
from mutation_equivalent_core import CORE
from mutation_equivalent_environments import ENVIRONMENTS
from mutation_equivalent_gym import GYM
from mutation_equivalent_models import MODELS
from mutation_equivalent_reasons import (
    LITERAL_IS,
    NEVER_NEGATIVE,
    ONE_DIM_LENGTH,
    STEPS_FROM_ZERO,
    Equivalent,
    mutants_of,
)

__all__ = ["EQUIVALENT", "Equivalent"]

BLOCK_SIZE = (
    "the hashing's block size and the size from which it blocks are speed choices only:"
    " every value depends on its id, step and counter alone, so any blocks of at least one"
    " row (the mutants' sizes are floored at one row) give the same arrays"
)

_ONE_END = (
    "a consumption both users of a pair made in one step is counted once, from one end of the "
    "pair: the lower id or the higher one alike (the two ends of a pair are distinct users, so "
    "`<`, `<=` and `>=` between them each pick exactly one end)"
)

SIMLAB: dict[str, list[Equivalent]] = {
    "simlab/metrics/source.py": [
        Equivalent(
            "out = np.where((ra == 0) | (a + h == 0), np.nan, out)",
            "out = np.where((ra <= 0) | (a + h == 0), np.nan, out)",
            NEVER_NEGATIVE,
        ),
        Equivalent(
            '"source/user_polarization": var / spread if spread > 0 else float("nan"),',
            '"source/user_polarization": var / spread if spread != 0 else float("nan"),',
            "spread = mean (1 - mean) with mean a share of counts in [0, 1]: " + NEVER_NEGATIVE,
        ),
        Equivalent(
            "live_pair = original >= 0",
            "live_pair = original >= -1",
            "`original` is -1 for an item that is no rewrite: with `>= -1` those enter as pairs "
            "whose original -1 is never a live item id (ids are >= 0), so the next lookup "
            "drops them and the same pairs are counted",
        ),
    ],
    "simlab/metrics/sums.py": [
        Equivalent(
            "if overwrite and isinstance(values, np.ndarray) and values.dtype == np.float64:",
            "if overwrite and isinstance(values, np.ndarray) and values.dtype is np.float64:",
            "a dtype is never the scalar type np.float64, so every input takes the copying "
            "branch: the same units and sum (the in-place branch only saves an allocation)",
        ),
    ],
    "simlab/metrics/echo.py": [
        Equivalent(
            "hit = in_old | (in_new & (user_rep < partner))",
            "hit = in_old | (in_new & (user_rep <= partner))",
            _ONE_END,
        ),
        Equivalent(
            "hit = in_old | (in_new & (user_rep < partner))",
            "hit = in_old | (in_new & (user_rep >= partner))",
            _ONE_END,
        ),
        Equivalent(
            "jac = np.divide(self._inter, union, out=np.zeros(union.shape), where=union > 0)",
            "jac = np.divide(self._inter, union, out=np.zeros(union.shape), where=union != 0)",
            NEVER_NEGATIVE,
        ),
    ],
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
    "simlab/rng.py": [
        Equivalent("_BLOCK = 1 << 17", "_BLOCK = 1 - 17", BLOCK_SIZE),
        Equivalent("_BLOCK = 1 << 17", "_BLOCK = 1 | 17", BLOCK_SIZE),
        Equivalent("_BLOCK = 1 << 17", "_BLOCK = 1 ^ 17", BLOCK_SIZE),
        Equivalent("_BLOCKED_FROM = 1 << 20", "_BLOCKED_FROM = 1 - 20", BLOCK_SIZE),
        Equivalent("_BLOCKED_FROM = 1 << 20", "_BLOCKED_FROM = 1 % 20", BLOCK_SIZE),
        Equivalent("_BLOCKED_FROM = 1 << 20", "_BLOCKED_FROM = 1 + 20", BLOCK_SIZE),
        Equivalent("_BLOCK = 1 << 17", "_BLOCK = 1 & 17", BLOCK_SIZE),
        Equivalent("_BLOCK = 1 << 17", "_BLOCK = 1 % 17", BLOCK_SIZE),
        Equivalent(
            "for lo in range(0, flat.shape[0], rows):",
            "for lo in range(0, flat.shape[ -1], rows):",
            ONE_DIM_LENGTH + " (`flat` is the ids raveled)",
        ),
        Equivalent(
            "_BELOW_ONE = float(np.nextafter(1.0, 0.0))  # 1 - 2**-53: the largest uniform",
            "_BELOW_ONE = float(np.nextafter(1.0, -1.0))  # 1 - 2**-53: the largest uniform",
            "the next float below 1.0 is the same whichever smaller number it steps toward",
        ),
        Equivalent(
            "big = flat.shape[0] * n > _BLOCKED_FROM",
            "big = flat.shape[0] | n > _BLOCKED_FROM",
            BLOCK_SIZE,
        ),
        Equivalent(
            "big = flat.shape[0] * n > _BLOCKED_FROM",
            "big = flat.shape[0] >> n > _BLOCKED_FROM",
            BLOCK_SIZE,
        ),
        Equivalent(
            "rows = max(1, _BLOCK // max(n, 1) if big else flat.shape[0])",
            "rows = max(1, _BLOCK ** max(n, 1) if big else flat.shape[0])",
            BLOCK_SIZE + " (rows per block: more rows, fewer blocks)",
        ),
        Equivalent("_BLOCKED_FROM = 1 << 20", "_BLOCKED_FROM = 1 << 21", BLOCK_SIZE),
        Equivalent(
            "if p.ndim == 1:",
            "if p.ndim <= 1:",
            "a 0-d `probs` is refused just above, so `p.ndim` is at least 1 here",
        ),
        Equivalent(
            "if u.ndim == 1:  # one draw: numpy scalars",
            "if u.ndim <= 1:  # one draw: numpy scalars",
            "`u` holds two uniforms per value (its last axis has length 2), so it is never "
            "0-d: `<= 1` and `== 1` pick the same calls",
        ),
    ],
    "simlab/intervals.py": [
        Equivalent(
            'out = out.merge(first, on=by, how="left", sort=False)',
            'out = out.merge(first, on=by, how="left", sort=True)',
            "the next line sorts the rows by first appearance and step, so the order the merge "
            "leaves them in is discarded",
        ),
        Equivalent(
            "if not smoothing.active or df.empty or not cols:",
            "if not smoothing.active or df.empty and not cols:",
            "an empty frame smoothed is an empty copy of itself (no group to transform), and "
            "one with no column to smooth a copy of the same values: the early return only "
            "skips that work",
        ),
    ],
    "simlab/rules.py": [
        Equivalent(
            'if not plat.startup_steps or plat.startup_candidates != "new":',
            'if not plat.startup_steps or plat.startup_candidates < "new":',
            "`startup_candidates` is the pydantic Literal 'all' or 'new', and 'all' sorts "
            "below 'new': `<` and `!=` pick the same value",
        ),
        Equivalent(
            'if getattr(agent.params, "device", None) == "cuda" and not cuda_available():',
            'if getattr(agent.params, "device", None) is "cuda" and not cuda_available():',
            LITERAL_IS,
        ),
    ],
    "simlab/windows.py": [
        Equivalent(
            '"partial": steps < w.end - w.start,',
            '"partial": steps != w.end - w.start,',
            "`steps` counts a trial's distinct steps inside the window [start, end), so it is "
            "never more than the window's width: `!=` and `<` agree",
        ),
        Equivalent(
            '"partial": (first.isna() & (ran < steps)).to_numpy(),',
            '"partial": (first.isna() & (ran != steps)).to_numpy(),',
            "`ran` is a trial's last step + 1 and a trial runs no step at or past the "
            "scenario's `steps`, so it is never more than `steps`: `!=` and `<` agree",
        ),
        Equivalent(
            'after = df[df["step"] >= df["trial"].map(warmup).fillna(0)]',
            'after = df[df["step"] >= df["trial"].map(warmup).fillna( -1)]',
            STEPS_FROM_ZERO,
        ),
    ],
    "simlab/store_summary.py": [
        Equivalent(
            "grouped = trials.groupby(keys, sort=False, dropna=False)",
            "grouped = trials.groupby(keys, sort=True, dropna=False)",
            "the rows are sorted by the agents' and sweep points' order of first trial at the "
            "end (one row per key), so the order of the groups is discarded",
        ),
        *mutants_of(
            'full = [c for c in metrics if c not in sources and (res[f"{c} n"] == res["seeds"])'
            ".all()]",
            (("==", ">="),),
            "a count of the seeds with a value is never above the row's seeds",
        ),
        Equivalent(
            'after = df["step"].to_numpy() >= df["trial"].map(warmup).fillna(0).to_numpy()',
            'after = df["step"].to_numpy() >= df["trial"].map(warmup).fillna( -1).to_numpy()',
            "steps are never negative: at or above 0 and at or above -1 are both always",
        ),
        Equivalent(
            "within = [int(t) for t, s in last.items() if s < warmup.get(int(t), 0)]",
            "within = [int(t) for t, s in last.items() if s < warmup.get(int(t), -1)]",
            "steps are never negative: below 0 and below -1 are both never",
        ),
        *mutants_of(
            "f\"step {end} (theirs: {lo if lo == hi else f'{lo}-{hi}'}): their means and "
            'windows "',
            (("lo == hi", "lo >= hi"),),
            "lo is the smallest last step and hi the largest: lo > hi never holds",
        ),
    ],
    "dashboard/data.py": [
        Equivalent(
            "if n == 0 or total <= 0:",
            "if n < 0 or total <= 0:",
            "no items means no impressions: the `total <= 0` test returns NaN for n = 0 too",
        ),
        Equivalent(
            "if axes.shape[0] < components:  # fewer samples than axes: pad with zero axes",
            "if axes.shape[0] <= components:  # fewer samples than axes: pad with zero axes",
            "with as many axes as asked the padding adds zero rows: the same axes",
        ),
        Equivalent(
            "if aigc_share <= 0:",
            "if aigc_share == 0:",
            "AIGC shares are validated to [0, 1]: never below 0",
        ),
        Equivalent(
            "n = c.shape[0]",
            "n = c.shape[ -1]",
            "`c` is raveled to one dimension: its first and last sizes are one",
        ),
    ],
    "dashboard/runmeta.py": [
        Equivalent(
            "if len(set(cells.values())) > 1:",
            "if len(set(cells.values())) != 1:",
            "at least two runs are compared, so a field has at least one distinct cell",
        ),
    ],
    "simlab/export.py": [
        Equivalent(
            'for trial, ev in events.groupby("trial", sort=True):',
            'for trial, ev in events.groupby("trial", sort=False):',
            "read_events returns the events sorted by trial: the groups come in that order",
        ),
        Equivalent(
            'd = len(ev["item_features"].iloc[0])',
            'd = len(ev["item_features"].iloc[ -1])',
            "every impression's item features have the world's dimension: first and last agree",
        ),
        Equivalent(
            'f = len(ev["user_features"].iloc[0])',
            'f = len(ev["user_features"].iloc[ -1])',
            "every impression's user features have one length: first and last agree",
        ),
    ],
    "simlab/store_read.py": [
        Equivalent(
            'n, want = int(counts.get(i, 0)), int(record.get("steps_done", 0))',
            'n, want = int(counts.get(i, 0)), int(record.get("steps_done", -1))',
            "a count of rows is never negative: below 0 and below -1 are both never",
        ),
    ],
    "simlab/report_result.py": [
        Equivalent(
            'if seeds < row["seeds"] and text != "-":',
            'if seeds != row["seeds"] and text != "-":',
            "a count of the seeds with a value is never above the row's seeds",
        ),
        Equivalent(
            'return f", {int(n)} seeds" if 0 < n < m else ""',
            'return f", {int(n)} seeds" if 0 != n < m else ""',
            "a count of seeds is never negative",
        ),
        Equivalent(
            'n, m = row.get("diff n", 0), row.get("value n", 0)',
            'n, m = row.get("diff n", 0), row.get("value n", 1)',
            "without a value count the note needs an integer count `0 < n < m`, none for m 0 or 1",
        ),
        Equivalent(
            'n, m = row.get("diff n", 0), row.get("value n", 0)',
            'n, m = row.get("diff n", 0), row.get("value n", -1)',
            "without a value count the note needs `0 < n < m`, false for m 0 or -1 alike",
        ),
    ],
    "simlab/metrics/base.py": [
        Equivalent(
            "return cls.partial is not Metric.partial",
            "return cls.partial != Metric.partial",
            "functions compare equal only to themselves, so `!=` and `is not` agree on them",
        ),
    ],
    "simlab/metrics/topics.py": [
        Equivalent(
            "sums = np.empty((present.shape[0], latent.shape[1]), np.float64)",
            "sums = np.empty((present.shape[ -1], latent.shape[1]), np.float64)",
            ONE_DIM_LENGTH + " (the present topics, np.unique of a 1-D array)",
        ),
        Equivalent(
            "return h * np.log(np.divide(h, q_smooth, out=ones, where=h > 0))",
            "return h * np.log(np.divide(h, q_smooth, out=ones, where=h != 0))",
            "h is a share of clicks: " + NEVER_NEGATIVE,
        ),
        Equivalent(
            "c, m, j = np.ogrid[: width + 1, 1 : width + 1, : n + 1]",
            "c, m, j = np.ogrid[: width << 1, 1 : width + 1, : n + 1]",
            "Steck's lookup table grows along the clicks of a topic (2w >= w + 1 for the "
            "largest count w >= 1): only clicks 0..w are looked up, each entry the same",
        ),
        *(
            Equivalent(
                "c, m, j = np.ogrid[: width + 1, 1 : width + 1, : n + 1]",
                f"c, m, j = np.ogrid[: width + 1, 1 : {wider}, : n + 1]",
                "Steck's lookup table grows along the history lengths (2w >= w + 1 for the "
                "largest count w >= 1): only lengths 1..w are looked up, each entry the same",
            )
            for wider in ("width << 1", "width + 2")
        ),
        Equivalent(
            "c, m, j = np.ogrid[: width + 1, 1 : width + 1, : n + 1]",
            "c, m, j = np.ogrid[: width + 1, 1 : width + 1, : n << 1]",
            "Steck's lookup table grows along the slate counts (2n >= n + 1 for n >= 1; the "
            "branch needs n >= 1): only counts 0..n are looked up, each entry the same",
        ),
    ],
}

EQUIVALENT: dict[str, list[Equivalent]] = {
    **AGENTS,
    **MODELS,
    **SIMLAB,
    **CORE,
    **ENVIRONMENTS,
    **GYM,
}
"""Every listed mutant, by module path (``scripts/mutation_equivalent_*.py`` hold the parts)."""
