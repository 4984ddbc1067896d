"""``nnls_gram``'s start-up guess: what a right guess saves, and that the answer ignores it.

Classes: a guess equal to the answer's support on random problems of every kind (sparse
Dirichlet, Gaussian, uniform, rank deficient) needs the one solve of the guess and no outer
step; guesses of nothing, of everything and at random give the cold answer; an entry whose
solution on the guessed support is exactly the tolerance counts as zero with or without a
guess (identity Gram matrices of 1 to 5 attributes, the edge entry at every position).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_chaney_agents import _problem

from simlab.agents import nnls as nnls_module
from simlab.agents.nnls import nnls_gram


def _counting_solves(monkeypatch) -> list[int]:
    """Patch the batched inner solve to record the number of rows of every call."""
    calls: list[int] = []
    solve = nnls_module._solve_on

    def counted(gram, b, passive):
        calls.append(b.shape[0])
        return solve(gram, b, passive)

    monkeypatch.setattr(nnls_module, "_solve_on", counted)
    return calls


@pytest.mark.parametrize("kind", range(4))
@pytest.mark.parametrize("seed", range(6))
def test_a_guess_of_the_answers_support_needs_no_outer_step(kind, seed, monkeypatch):
    """Guessing the support of the answer: one solve of the guess, then nothing to add.

    Every row with a positive entry is solved on its guess (rows guessing nothing start
    from zero, where the answer is zero) and the answer is the cold one.
    """
    rng = np.random.default_rng(seed * 10 + kind + 1000)
    a, y = _problem(rng, kind)
    gram, b = a.T @ a, y @ a
    cold = nnls_gram(gram, b)
    support = cold > 0
    calls = _counting_solves(monkeypatch)
    warm = nnls_gram(gram, b, support=support)
    assert calls == [int(support.any(axis=1).sum())]
    np.testing.assert_array_equal(warm, cold)


@pytest.mark.parametrize("kind", range(4))
@pytest.mark.parametrize("guess", ["none", "all", "random"])
def test_any_guess_gives_the_cold_answer(kind, guess):
    """Guesses of nothing, of every attribute or at random reach the cold optimum."""
    rng = np.random.default_rng(kind + 77)
    a, y = _problem(rng, kind)
    gram, b = a.T @ a, y @ a
    cold = nnls_gram(gram, b)
    support = {
        "none": np.zeros(b.shape, bool),
        "all": np.ones(b.shape, bool),
        "random": rng.random(b.shape) < 0.5,
    }[guess]
    warm = nnls_gram(gram, b, support=support)
    for row in range(b.shape[0]):  # the objective x G x / 2 - b x at its minimum
        obj = [x @ gram @ x / 2 - b[row] @ x for x in (cold[row], warm[row])]
        assert abs(obj[1] - obj[0]) <= 1e-9 * max(1.0, abs(obj[0]))


def _tolerance(f: int, b: np.ndarray) -> float:
    """The size below which a solved entry counts as zero: ``10 f eps max(|b|, 1)``."""
    return 10.0 * f * np.finfo(float).eps * max(float(np.abs(b).max()), 1.0)


def _edge_rhs(f: int, at: int, scale: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Right-hand sides for ``G = I``: entry ``at`` solves to the tolerance, then just above.

    The other entries are up to ``scale`` (one exactly ``scale``, which sets ``max |b|``);
    entry ``at`` is walked over neighbouring floats until the inner solve of the scaled
    problem (``I (1 + 1e-12)``) gives exactly the tolerance, then the first float above it.
    """
    unit = np.eye(f) * (1.0 + 1e-12)  # G = I scaled to a unit diagonal, plus the ridge
    b = rng.uniform(0.2, 1.0, (1, f)) * scale
    b[0, (at + 1) % f] = scale
    b[0, at] = 0.0
    tol = _tolerance(f, b)
    lo = np.nextafter(tol * (1.0 + 1e-12), -np.inf, dtype=np.float64)
    for _ in range(400):  # the last float whose solution is at most the tolerance
        lo = np.nextafter(lo, -np.inf)
        if np.linalg.solve(unit, np.where(np.arange(f) == at, lo, b[0]))[at] <= tol:
            break
    rows = []
    for target in ("at", "above"):
        v = lo
        while True:
            v = np.nextafter(v, np.inf)
            z = np.linalg.solve(unit, np.where(np.arange(f) == at, v, b[0]))[at]
            if (z == tol) if target == "at" else (z > tol):
                break
            assert z <= tol
        rows.append(np.where(np.arange(f) == at, v, b[0]))
    return rows[0][None], rows[1][None]


@pytest.mark.parametrize(
    ("f", "scale"),
    [(f, s) for f in range(1, 6) for s in (0.5, 1.0, 37.0) if f > 1 or s <= 1],
)
def test_an_entry_counts_as_zero_up_to_the_tolerance_with_or_without_a_guess(f, scale):
    """A solution at most ``10 f eps max(|b|, 1)`` is zero; the next float above is kept.

    With or without a start-up guess (of everything, of the edge entry alone); ``max |b|``
    below, at and above 1 (one attribute: the edge entry is all of ``b``, below 1).
    """
    rng = np.random.default_rng(f)
    for at in range(f):
        at_tol, above = _edge_rhs(f, at, scale, rng)
        for b, positive in ((at_tol, False), (above, True)):
            cold = nnls_gram(np.eye(f), b)
            assert (cold[0, at] > 0) == positive, (at, b)
            assert (np.delete(cold, at) > 0).all()
            for guess in (np.ones((1, f), bool), np.arange(f)[None] == at):
                np.testing.assert_array_equal(nnls_gram(np.eye(f), b, support=guess), cold)


@pytest.mark.parametrize("f", range(1, 6))
@pytest.mark.parametrize("max_iter", [None, 1, 4, 13])
def test_outer_steps_stop_at_max_iter_default_3f(f, max_iter, monkeypatch):
    """A row that never settles runs exactly ``max_iter`` outer steps (default ``3 f``).

    Its entry at the tolerance is added and dropped again at every step (two solves: the
    one that fails, the one without it) once the ``f - 1`` others are in (one solve each).
    """
    b, _ = _edge_rhs(f, 0, 0.5, np.random.default_rng(f))
    calls = _counting_solves(monkeypatch)
    x = nnls_gram(np.eye(f), b, max_iter=max_iter)
    steps = 3 * f if max_iter is None else max_iter
    settling = min(steps, f - 1)
    assert len(calls) == settling + 2 * (steps - settling)
    assert x[0, 0] == 0.0 and (x[0, 1:] > 0).sum() == settling


def _lawson_hanson(gram: np.ndarray, b: np.ndarray, iterations: int) -> tuple[list, bool]:
    """One row's Lawson-Hanson iterates after 1..``iterations`` outer steps, by plain loops.

    Returns:
        The iterate after each outer step (the last one repeated once nothing is left to
        add), and whether an inner step back toward feasibility was taken.
    """
    f = b.shape[0]
    tol = _tolerance(f, b)
    x, passive, stepped, out = np.zeros(f), set(), False, []
    for _ in range(iterations):
        w = b - gram @ x
        free = [j for j in range(f) if j not in passive and w[j] > tol]
        if free:
            passive.add(max(free, key=lambda j: w[j]))
        for _ in range(f + 1 if free else 0):
            idx = sorted(passive)
            z = np.zeros(f)
            z[idx] = np.linalg.solve(gram[np.ix_(idx, idx)], b[idx])
            if all(z[i] > tol for i in idx):
                x = z
                break
            stepped = True
            alpha = min(x[i] / (x[i] - z[i]) for i in idx if z[i] <= tol)
            x = x + alpha * (z - x)
            passive = {i for i in idx if x[i] > tol}
            x[[i for i in range(f) if i not in passive]] = 0.0
        out.append(x)
    return out, stepped


def test_each_outer_step_is_lawson_hanson_s():
    """``max_iter = k`` gives each row's k-th Lawson-Hanson iterate (a loop per row).

    Gaussian problems of 3 to 8 attributes over barely more items (unit-norm columns, so
    the scaling is the identity) and Gaussian right-hand sides, where adding a variable
    sometimes drives others to zero: the inner steps back toward feasibility are checked.
    """
    stepped_rows = 0
    for seed in range(12):
        rng = np.random.default_rng(seed + 500)
        f = int(rng.integers(3, 9))
        a = rng.normal(size=(f + int(rng.integers(0, 3)), f))
        a /= np.linalg.norm(a, axis=0)
        gram = a.T @ a
        b = rng.normal(size=(200, f))
        unit = gram + np.eye(f) * 1e-12  # the problem nnls_gram solves (d = 1 here)
        want = [_lawson_hanson(unit, row, 3 * f) for row in b]
        stepped_rows += sum(stepped for _, stepped in want)
        for k in range(1, 3 * f + 1):
            got = nnls_gram(gram, b, max_iter=k)
            np.testing.assert_allclose(got, [xs[k - 1] for xs, _ in want], rtol=1e-9, atol=1e-12)
    assert stepped_rows >= 10  # rows that stepped back (about 30 with these seeds)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("kind", range(4))
def test_no_warning_on_any_kind_of_problem(kind):
    """Solving (cold and warm, zero columns included) emits no floating-point warning."""
    rng = np.random.default_rng(kind + 300)
    a, y = _problem(rng, kind)
    a[:, 0] = 0.0  # an attribute no item has
    gram, b = a.T @ a, y @ a
    nnls_gram(gram, b)
    nnls_gram(gram, b, support=rng.random(b.shape) < 0.5)


@pytest.mark.parametrize("seed", range(10))
def test_the_ridge_is_1e_12_of_each_diagonal_entry(seed):
    """A diagonal Gram matrix: ``x_i = max(b_i, 0) / (g_i (1 + 1e-12))``, whatever ``g_i``.

    The problem is solved where ``G`` has a unit diagonal, with ``1e-12`` added there: in
    the caller's units a ridge of ``1e-12 g_i`` (a relative change of 1e-12, far above the
    rounding of the scaling); a zero diagonal entry (an attribute no item has) gives 0.
    """
    rng = np.random.default_rng(seed)
    f = int(rng.integers(1, 9))
    g = 10.0 ** rng.uniform(-4, 4, f)
    g[rng.random(f) < 0.2] = 0.0
    b = rng.normal(size=(5, f)) * np.sqrt(g)
    x = nnls_gram(np.diag(g), b)
    want = np.where(g > 0, np.maximum(b, 0) / np.where(g > 0, g, 1.0) / (1 + 1e-12), 0.0)
    np.testing.assert_allclose(x, want, rtol=1e-14, atol=0)
