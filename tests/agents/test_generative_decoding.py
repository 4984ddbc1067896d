"""Constrained beam search of the generative agent against a plain-Python beam search.

The reference keeps, per row and level, the ``W`` best extensions (summed log-probabilities)
of the beams by tokens that some valid candidate's code continues, then names the candidate
of each final beam. The vectorised search must give the same candidates and scores, report
``-1`` / ``-inf`` where fewer than ``W`` candidates exist, hand the step function each beam's
tokens and the beam it extends, and answer the same for a shared code table as for the
table repeated per row. The trie lookup (``_search``) is checked against ``bisect``.
"""

from __future__ import annotations

import bisect
import math

import pytest
import torch

from simlab.agents.generative_decoding import _member, _search, constrained_beam_search
from simlab.rng import torch_generator

SEEDS = range(4)


class TableStep:
    """``step(level, tokens, parent)`` with random log-probs per (row, level, prefix).

    It checks on every call that the tokens so far are those of the beam named by
    ``parent`` followed by one token, and records the calls.
    """

    def __init__(self, sizes: list[int], rows: int, seed: int, scale: float = 3.0) -> None:
        gen = torch_generator(seed, "test/generative/decoding")
        self.sizes, self.rows, self.tables, width = sizes, rows, [], 1
        for r in sizes:
            logits = torch.randn(rows, width, r, generator=gen, dtype=torch.float64) * scale
            self.tables.append(torch.log_softmax(logits, -1).float())
            width *= r
        self.calls: list[tuple[int, torch.Tensor, torch.Tensor | None]] = []

    def prefix_id(self, tokens) -> int:
        """Mixed-radix id of a tuple of tokens."""
        out = 0
        for level, t in enumerate(tokens):
            out = out * self.sizes[level] + int(t)
        return out

    def logp(self, row: int, tokens: tuple, token: int) -> float:
        """Log-probability of ``token`` after ``tokens`` for ``row``."""
        return float(self.tables[len(tokens)][row, self.prefix_id(tokens), token])

    def __call__(self, level, tokens, parent):
        """``(B, w, sizes[level])`` log-probs of the next token of each beam."""
        assert tokens.shape[0] == self.rows and tokens.shape[2] == level
        assert (parent is None) == (level == 0)
        if self.calls:
            _, before, _ = self.calls[-1]
            kept = before.gather(1, parent[..., None].expand(-1, -1, level - 1))
            assert torch.equal(tokens[..., :-1], kept)
        self.calls.append((level, tokens.clone(), None if parent is None else parent.clone()))
        ids = torch.zeros(tokens.shape[:2], dtype=torch.long)
        for lv in range(level):
            ids = ids * self.sizes[lv] + tokens[..., lv]
        return self.tables[level][torch.arange(self.rows)[:, None], ids]


def reference_search(step: TableStep, row: int, codes: list[list[int]], width: int):
    """``[(column, score)]`` of the final beams, best first, by loops."""
    sizes = step.sizes
    valid = [
        c for c, code in enumerate(codes) if all(0 <= code[i] < sizes[i] for i in range(len(sizes)))
    ]
    beams = [((), 0.0)]
    for level, r in enumerate(sizes):
        prefixes = {tuple(codes[c][: level + 1]) for c in valid}
        ext = [
            (score + step.logp(row, toks, t), toks + (t,))
            for toks, score in beams
            for t in range(r)
            if toks + (t,) in prefixes
        ]
        ext.sort(key=lambda e: -e[0])
        beams = [(toks, score) for score, toks in ext[:width]]
    return [(next(c for c in valid if tuple(codes[c]) == toks), s) for toks, s in beams]


def random_codes(seed: int, rows: int, num: int, sizes: list[int], bad: float = 0.15):
    """``(B, C, T)`` distinct codes per row; a share of them outside the vocabularies."""
    gen = torch_generator(seed, "test/generative/codes")
    total = math.prod(sizes)
    out = torch.empty(rows, num, len(sizes), dtype=torch.long)
    for b in range(rows):
        ids = torch.randperm(total, generator=gen)[:num]
        for level in reversed(range(len(sizes))):
            out[b, :, level] = ids % sizes[level]
            ids = ids // sizes[level]
    mask = torch.rand(rows, num, generator=gen) < bad
    level = torch.randint(0, len(sizes), (rows, num), generator=gen)
    wrong = torch.where(torch.rand(rows, num, generator=gen) < 0.5, -1, 0)
    size_at = torch.tensor(sizes)[level]
    out[mask, level[mask]] = (wrong + torch.where(wrong < 0, 0, size_at))[mask]
    return out


def check(step, codes_rows, cols, scores, width):
    """Every row against the reference; the tail beyond the reachable ones is -1 / -inf."""
    for b, codes in enumerate(codes_rows):
        want = reference_search(step, b, codes.tolist(), width)
        n = len(want)
        assert cols[b, :n].tolist() == [c for c, _ in want]
        torch.testing.assert_close(
            scores[b, :n], torch.tensor([s for _, s in want]), rtol=1e-5, atol=1e-5
        )
        assert (cols[b, n:] == -1).all()
        assert torch.isneginf(scores[b, n:]).all()


@pytest.mark.parametrize("width", [1, 2, 5, 40])
@pytest.mark.parametrize("sizes", [[3, 4, 2], [5, 3], [6]])
@pytest.mark.parametrize("seed", SEEDS)
def test_per_row_codes_equal_a_loop_beam_search(seed, sizes, width):
    """Per-row candidate codes (some outside the vocabularies): same columns and scores."""
    rows, num = 3, min(10, math.prod(sizes))
    codes = random_codes(seed, rows, num, sizes)
    step = TableStep(sizes, rows, seed)
    cols, scores = constrained_beam_search(step, codes, sizes, width, rows)
    assert cols.shape == scores.shape == (rows, min(width, math.prod(sizes)))
    assert [c[0] for c in step.calls] == list(range(len(sizes)))
    check(step, codes, cols, scores, width)


@pytest.mark.parametrize("width", [1, 3, 30])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_shared_code_table_equals_the_table_repeated_per_row(seed, width):
    """Codes ``(C, T)`` shared by all rows give each row the same as its own copy."""
    sizes, rows = [4, 3, 3], 4
    shared = random_codes(seed, 1, 12, sizes)[0]
    step = TableStep(sizes, rows, seed)
    cols, scores = constrained_beam_search(step, shared, sizes, width, rows)
    check(step, shared.expand(rows, -1, -1), cols, scores, width)
    again = TableStep(sizes, rows, seed)
    cols2, scores2 = constrained_beam_search(again, shared.expand(rows, -1, -1), sizes, width, rows)
    assert torch.equal(cols, cols2)
    torch.testing.assert_close(scores, scores2)


def test_one_row_with_its_own_codes_uses_them():
    """``B = 1`` with ``(1, C, T)`` codes: the one row's own candidates."""
    sizes = [3, 3]
    codes = torch.tensor([[[2, 1], [0, 0], [1, 2], [2, 2]]])
    step = TableStep(sizes, 1, 5)
    cols, scores = constrained_beam_search(step, codes, sizes, 9, 1)
    assert cols.shape == (1, 9)
    check(step, codes, cols, scores, 9)
    assert sorted(cols[0, :4].tolist()) == [0, 1, 2, 3]


def test_the_largest_and_smallest_codes_can_come_out():
    """Codes at both ends of the code space (the trie's first and last prefix) are found."""
    sizes = [4, 5]
    codes = torch.tensor([[[3, 4], [0, 0], [3, 3]], [[0, 0], [3, 4], [-1, 2]]])
    step = TableStep(sizes, 2, 1)
    cols, scores = constrained_beam_search(step, codes, sizes, 4, 2)
    check(step, codes, cols, scores, 4)
    assert sorted(cols[0, :3].tolist()) == [0, 1, 2]
    assert sorted(cols[1, :2].tolist()) == [0, 1] and cols[1, 2:].tolist() == [-1, -1]


def test_no_valid_candidate_gives_minus_one_everywhere():
    """Every code outside the vocabularies: no beam ends on a candidate."""
    sizes = [2, 2]
    codes = torch.tensor([[[2, 0], [0, -1], [1, 5]]])
    cols, scores = constrained_beam_search(TableStep(sizes, 1, 0), codes, sizes, 3, 1)
    assert (cols == -1).all() and torch.isneginf(scores).all()


def test_a_confident_model_cannot_leave_the_trie():
    """All the mass on a token no candidate has: the beams still end on candidates."""
    sizes = [4, 4]
    step = TableStep(sizes, 2, 2)
    for table in step.tables:
        table[..., 3] = 0.0  # log 1
        table[..., :3] = -60.0
    codes = torch.tensor([[[0, 1], [1, 2], [2, 0]], [[2, 2], [0, 0], [1, 1]]])
    cols, scores = constrained_beam_search(step, codes, sizes, 2, 2)
    assert (cols >= 0).all()
    torch.testing.assert_close(scores, torch.full((2, 2), -120.0))


def reference_lookup(row: list[int], q: int) -> tuple[int, bool]:
    """Position of ``q`` in sorted ``row`` (clamped to the last) and whether it is there."""
    pos = min(bisect.bisect_left(row, q), len(row) - 1)
    return pos, row[pos] == q


@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("seed", SEEDS)
def test_search_equals_bisect_per_row(seed, rows):
    """Positions and membership of queries below, inside, between and above each row."""
    gen = torch_generator(seed, "test/generative/search")
    table = torch.sort(torch.randint(-1, 40, (rows, 9), generator=gen), -1).values
    q = torch.randint(-3, 45, (3, 4, 5), generator=gen)
    q[0, 0, 0] = table[0, -1]  # the largest entry
    q[-1, -1, -1] = table[-1, 0]  # the smallest entry
    pos, found = _search(table, q)
    assert pos.shape == found.shape == q.shape
    assert torch.equal(_member(table, q), found)
    for b in range(3):
        row = table[0 if rows == 1 else b].tolist()
        for i, x in enumerate(q[b].flatten().tolist()):
            assert (int(pos[b].flatten()[i]), bool(found[b].flatten()[i])) == reference_lookup(
                row, x
            )


def test_a_token_of_probability_zero_is_never_generated():
    """A candidate whose token has log-probability ``-inf`` does not come out (``-1``)."""
    sizes = [2, 2]
    step = TableStep(sizes, 1, 3)
    step.tables[0][..., 1] = float("-inf")  # level 0: token 1 impossible
    codes = torch.tensor([[[0, 1], [1, 1], [1, 0]]])
    cols, scores = constrained_beam_search(step, codes, sizes, 4, 1)
    assert cols[0].tolist() == [0, -1, -1, -1]  # W = 4 of the 4 codes
    assert torch.isfinite(scores[0, 0]) and torch.isneginf(scores[0, 1:]).all()
