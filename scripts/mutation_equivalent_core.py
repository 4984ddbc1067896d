"""Equivalent mutants of the loop's core data paths (part of :mod:`mutation_equivalent`).

The consumed-item sets, the slate contract, the step's data and id lookups, ``--set``
overrides, YAML reading and the run's writer lock.
"""

from __future__ import annotations

from mutation_equivalent_reasons import ONE_DIM_LENGTH, Equivalent, mutants_of

__all__ = ["CORE"]

CORE: dict[str, list[Equivalent]] = {
    "simlab/keysets.py": [
        Equivalent(
            "out = np.full((counts.shape[0], width), PAD, np.int64)",
            "out = np.full((counts.shape[ -1], width), PAD, np.int64)",
            ONE_DIM_LENGTH + " (`counts` is the 1-D diff of indptr)",
        ),
        Equivalent(
            "col = np.arange(items.shape[0]) - np.repeat(indptr[:-1], counts)",
            "col = np.arange(items.shape[ -1]) - np.repeat(indptr[:-1], counts)",
            ONE_DIM_LENGTH + " (`items` is the 1-D CSR values)",
        ),
    ],
    "simlab/scenario_overrides.py": [
        *mutants_of(
            "if not -len(node) <= tok < len(node):",
            (
                ("-len(node) <=", "~len(node) <="),
                ("-len(node) <=", "-len(node) !="),
                ("-len(node) <=", "-len(node) is not"),
                ("-len(node) <=", "-len(node) <"),
            ),
            "list positions are never negative (the path parser refuses them), so only the "
            "upper bound can fail",
        ),
    ],
    "simlab/runlock.py": [
        *mutants_of(
            "fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)",
            (
                ("os.O_RDWR | os.O_CREAT", "os.O_RDWR + os.O_CREAT"),
                ("os.O_CREAT | os.O_CLOEXEC", "os.O_CREAT + os.O_CLOEXEC"),
            ),
            "`+` for `|` of distinct single-bit flags: the same number",
        ),
        Equivalent(
            "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)",
            "fcntl.flock(fd, fcntl.LOCK_EX + fcntl.LOCK_NB)",
            "`+` for `|` of distinct single-bit flags: the same number",
        ),
        *mutants_of(
            "fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)",
            (
                ("O_RDONLY | os", "O_RDONLY + os"),
                ("O_RDONLY | os", "O_RDONLY * os"),
                ("O_RDONLY | os", "O_RDONLY ** os"),
                ("O_RDONLY | os", "O_RDONLY << os"),
                ("O_RDONLY | os", "O_RDONLY >> os"),
                ("O_RDONLY | os", "O_RDONLY & os"),
            ),
            "O_RDONLY is 0: the reader's descriptor opens read-only either way; losing "
            "O_CLOEXEC matters only to a program exec'd in the microseconds it is open",
        ),
    ],
    "simlab/yaml_io.py": [
        Equivalent(
            "def construct_mapping(self, node, deep=False):  # noqa: D102 - PyYAML hook",
            "def construct_mapping(self, node, deep=True):  # noqa: D102 - PyYAML hook",
            "building a mapping's values at once (deep) or after it (PyYAML's generators) gives "
            "the same tree; only a self-containing document would differ, and it is refused "
            "before construction",
        ),
    ],
    "simlab/batch.py": [
        Equivalent(
            "if self.shared_candidates and b == 0:",
            "if self.shared_candidates and b <= 0:",
            "`b` is an array's length: never below 0",
        ),
        Equivalent(
            "return int(self.user_ids.shape[0])",
            "return int(self.user_ids.shape[ -1])",
            ONE_DIM_LENGTH + " (`user_ids` is checked 1-D when the observation is built)",
        ),
        Equivalent(
            "width = max((f.slates.shape[1] for f in steps), default=0)",
            "width = max((f.slates.shape[1] for f in steps), default= -1)",
            "the default applies only to a log of no step, which pads nothing",
        ),
        Equivalent(
            "out = np.full(clicked_pos.shape[0], PAD, slates.dtype)",
            "out = np.full(clicked_pos.shape[ -1], PAD, slates.dtype)",
            ONE_DIM_LENGTH + " (click positions are checked 1-D with the feedback)",
        ),
    ],
    "simlab/batch_arrays.py": [
        *mutants_of(
            "and span <= _TABLE_SPAN * (n + query.size)",
            tuple(
                ("_TABLE_SPAN * (", f"_TABLE_SPAN {op} (")
                for op in ("//", "/", "%", "+", "-", ">>", "|", "&", "^")
            )
            + tuple(("span <= _TABLE", f"span {op} _TABLE") for op in ("<", "==")),
            "which of two exact lookups runs (a table of the span, or the binary search): speed "
            "and memory only (every path is tested against the binary search)",
        ),
        *mutants_of(
            "query.size >= _TABLE_MIN",
            tuple((">= _TABLE_MIN", f"{op} _TABLE_MIN") for op in ("<", ">", "<=", "==", "!=")),
            "which of two exact lookups runs (a table of the span, or the binary search): speed",
        ),
        Equivalent(
            'want = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"',
            'want = "(" + ", ".join(dims) + ("," if len(dims) <= 1 else "") + ")"',
            "every checked shape has at least one dimension: `len(dims)` is never 0",
        ),
        Equivalent(
            "return [slice(i * t, (i + 1) * t if i < n - 1 else rows) for i in range(n)]",
            "return [slice(i * t, (i + 1) * t if i != n - 1 else rows) for i in range(n)]",
            "`i` runs over range(n): below n - 1 and other than n - 1 agree",
        ),
        Equivalent(
            "return (np.broadcast_to, (self.row, (self.n, self.row.shape[0])))",
            "return (np.broadcast_to, (self.row, (self.n, self.row.shape[ -1])))",
            ONE_DIM_LENGTH + " (the one row sent)",
        ),
    ],
    "simlab/contract.py": [
        *mutants_of(
            "if k * _DENSE_RATIO >= n and b * n <= _DENSE_CELLS:",
            tuple(
                ("b * n", f"b {op} n")
                for op in ("%", "**", "//", "/", "+", "-", "<<", ">>", "|", "&", "^")
            )
            + tuple((">= n", f"{op} n") for op in ("<=", ">", "<", "==", "!="))
            + tuple(
                ("k * _DENSE", f"k {op} _DENSE")
                for op in ("%", "**", "//", "/", "+", "-", "<<", ">>", "|", "&", "^")
            )
            + (
                ("<= _DENSE_CELLS", "< _DENSE_CELLS"),
                ("<= _DENSE_CELLS", ">= _DENSE_CELLS"),
                ("<= _DENSE_CELLS", "> _DENSE_CELLS"),
                ("<= _DENSE_CELLS", "!= _DENSE_CELLS"),
                ("<= _DENSE_CELLS", "== _DENSE_CELLS"),
            ),
            "which of two exact checks runs (a tally of the users x items cells, or sorted rows): "
            "a choice of speed and memory, the same answer either way (both tested on long and "
            "short slates)",
        ),
        *mutants_of(
            "_DENSE_CELLS = 1 << 24",
            tuple(
                ("1 << 24", f"1 {op} 24")
                for op in ("*", "%", "**", "//", "/", "+", "-", ">>", "|", "&", "^")
            )
            + (
                ("1 << 24", "2 << 24"),
                ("1 << 24", "0 << 24"),
                ("1 << 24", "1 << 25"),
                ("1 << 24", "1 << 23"),
            ),
            "the largest users x items tally: which of two exact checks runs (speed and memory)",
        ),
        *mutants_of(
            "_DENSE_RATIO = 8",
            (("= 8", "= 9"), ("= 8", "= 7")),
            "the slate length from which the tally runs: which of two exact checks (speed)",
        ),
        Equivalent(
            'raise AgentContractError(f"{who} returned {e.args[0]}") from None',
            'raise AgentContractError(f"{who} returned {e.args[ -1]}") from None',
            "the catalog's KeyError has one argument, its message: args[0] is args[-1]",
        ),
    ],
}
