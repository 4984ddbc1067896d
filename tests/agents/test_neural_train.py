"""mf's BPR fit and the propensity weights against written-out references.

``train_bpr`` is compared with a reference that scores every click of a batch one by one
(``<p_u, f_i W + q_i> + b_i``), takes the documented batch loss (mean, IPS or SNIPS of
``-log sigmoid(s_ui - s_uj)``, plus ``l2 * (|p_u|^2 + |q_i|^2 + |q_j|^2)`` summed over the
batch's clicks and divided by its size, plus the invariance term), steps ``W``, ``Q`` and
``b`` with torch's Adam and the user rows with an Adam written out here (moments only for
the rows of the batch, bias correction by the global step). Batches follow the keyed torch
generator. Sizes are tiny so the loops cost milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

torch = pytest.importorskip("torch")

from simlab.agents.neural_train import (  # noqa: E402
    DebiasParams,
    click_weights,
    exposure_propensity,
    train_bpr,
)
from simlab.batch import PAD, Log  # noqa: E402
from simlab.rng import torch_generator  # noqa: E402

U, N, D, F, M = 5, 6, 3, 2, 12
KEY = (2, "test/bpr-ref", 3)


def bpr_data(seed: int = 0, epochs: int = 3):
    """Clicks of ``U`` users on ``N`` items, initial params all non-zero, features, rewrites."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, U, M).astype(np.int64)
    pos = rng.integers(0, N, M).astype(np.int64)
    neg = rng.integers(0, N, (epochs, M)).astype(np.int64)
    init = {
        "P": rng.normal(0, 0.5, (U, F)),
        "W": rng.normal(0, 0.5, (D, F)),
        "Q": rng.normal(0, 0.5, (N, F)),
        "b": rng.normal(0, 0.5, N),
    }
    feats = rng.normal(size=(N, D)).astype(np.float32)
    rewrites = (feats + rng.normal(0, 0.7, (N, D))).astype(np.float32)
    weights = rng.uniform(0.5, 4.0, M).astype(np.float32)
    return users, pos, neg, init, feats, rewrites, weights


def reference_bpr(
    users, pos, neg, init, feats, *, epochs, lr, l2, batch, weights, snips, rewrites, inv
):
    """The documented BPR fit, click by click, with a written-out lazy Adam on the user rows."""
    t = {k: torch.nn.Parameter(torch.tensor(init[k], dtype=torch.float32)) for k in "WQb"}
    opt = torch.optim.Adam(list(t.values()), lr=lr)
    table = torch.tensor(init["P"], dtype=torch.float32)
    m1, m2, steps = torch.zeros_like(table), torch.zeros_like(table), 0
    f = torch.from_numpy(feats)
    r = None if rewrites is None else torch.from_numpy(rewrites)
    gen = torch_generator(*KEY)
    for epoch in range(epochs):
        order = torch.randperm(M, generator=gen).tolist()
        for start in range(0, M, batch):
            rows = order[start : start + batch]
            p = table.clone().requires_grad_()
            losses, ws, reg, gaps = [], [], 0.0, []
            for c in rows:
                u, i, j = int(users[c]), int(pos[c]), int(neg[epoch, c])
                si = p[u] @ (f[i] @ t["W"] + t["Q"][i]) + t["b"][i]
                sj = p[u] @ (f[j] @ t["W"] + t["Q"][j]) + t["b"][j]
                losses.append(-torch.log(torch.sigmoid(si - sj)))
                ws.append(1.0 if weights is None else float(weights[c]))
                reg = reg + (p[u] ** 2).sum() + (t["Q"][i] ** 2).sum() + (t["Q"][j] ** 2).sum()
                if r is not None:
                    for k in (i, j):  # s(u, R(k)) - s(u, k)
                        gaps.append((p[u] @ ((r[k] - f[k]) @ t["W"])).abs())
            losses, w = torch.stack(losses), torch.tensor(ws)
            if weights is None:
                loss = losses.mean()
            elif snips:
                loss = (w * losses).sum() / w.sum()
            else:
                loss = (w * losses).sum() / len(rows)
            if r is not None:
                loss = loss + inv * torch.stack(gaps).mean()
            loss = loss + l2 * reg / len(rows)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            g = p.grad
            touched = sorted({int(users[c]) for c in rows})
            for u in touched:  # Adam on this batch's user rows only
                m1[u] = 0.9 * m1[u] + 0.1 * g[u]
                m2[u] = 0.999 * m2[u] + 0.001 * g[u] ** 2
                mhat = m1[u] / (1 - 0.9**steps)
                vhat = m2[u] / (1 - 0.999**steps)
                table[u] -= lr * mhat / (vhat.sqrt() + 1e-8)
    out = {k: v.detach().numpy() for k, v in t.items()}
    return {"P": table.numpy(), **out}


CASES = {
    "plain": {"weighted": False, "snips": False, "inv": 0.0},
    "ips": {"weighted": True, "snips": False, "inv": 0.0},
    "snips": {"weighted": True, "snips": True, "inv": 0.0},
    "invariance": {"weighted": False, "snips": False, "inv": 0.8},
    "snips-invariance": {"weighted": True, "snips": True, "inv": 0.5},
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("batch", "l2"), [(5, 0.3), (M, 0.0), (4, 1.0)])
def test_train_bpr_equals_the_written_out_fit(case, batch, l2):
    """Every parameter as the reference: batches (a short last one), losses, l2, both Adams."""
    c = CASES[case]
    users, pos, neg, init, feats, rewrites, weights = bpr_data(1)
    kwargs = {"epochs": 3, "lr": 0.07, "l2": l2}
    w = weights if c["weighted"] else None
    rw = rewrites if c["inv"] > 0 else None
    got = train_bpr(
        users, pos, neg, init, feats, batch_size=batch, seed_key=KEY, weights=w,
        self_normalize=c["snips"], rewrite_features=rw, invariance=c["inv"], **kwargs,
    )  # fmt: skip
    want = reference_bpr(
        users, pos, neg, init, feats, batch=batch, weights=w, snips=c["snips"],
        rewrites=rw, inv=c["inv"], **kwargs,
    )  # fmt: skip
    assert set(got) == {"P", "W", "Q", "b"}
    for k in got:
        assert got[k].shape == np.shape(init[k]) and got[k].dtype == np.float32, k
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5, err_msg=k)
    # the user rows that never clicked stay exactly as they were
    idle = np.setdiff1d(np.arange(U), users)
    np.testing.assert_array_equal(got["P"][idle], init["P"][idle].astype(np.float32))
    assert (np.abs(got["P"][users] - init["P"][users]) > 1e-3).any(axis=1).all()


@pytest.mark.parametrize("inv", [0.0, 0.8])
def test_rewrites_are_read_only_with_a_positive_invariance(inv):
    """Rewrites count only with a positive invariance, and invariance only with rewrites.

    Without invariance the rewrites are not even read (NaN ones change nothing).
    """
    users, pos, neg, init, feats, rewrites, _ = bpr_data(2)
    kwargs = {"epochs": 3, "lr": 0.07, "l2": 0.1, "batch_size": 5, "seed_key": KEY}
    plain = train_bpr(users, pos, neg, init, feats, **kwargs)
    if inv == 0:
        rewrites = np.full_like(rewrites, np.nan)
    with_rw = train_bpr(
        users, pos, neg, init, feats, rewrite_features=rewrites, invariance=inv, **kwargs
    )
    without_rw = train_bpr(users, pos, neg, init, feats, invariance=0.8, **kwargs)
    for k in plain:
        np.testing.assert_array_equal(without_rw[k], plain[k], err_msg=k)
        assert np.array_equal(with_rw[k], plain[k]) == (inv == 0), k


def test_train_bpr_takes_its_hyperparameters_by_keyword_only():
    """``epochs``, ``lr``, ``l2``... are keyword-only: two swapped floats cannot pass silently."""
    users, pos, neg, init, feats, _, _ = bpr_data(3)
    with pytest.raises(TypeError, match="positional"):
        train_bpr(users, pos, neg, init, feats, 3, 0.07, 0.1, 5, KEY)
    with pytest.raises(TypeError, match="positional"):
        train_bpr(users, pos, neg, init, feats, 3, lr=0.07, l2=0.1, batch_size=5, seed_key=KEY)
    # the five arrays may be named
    named = {"users": users, "pos": pos, "neg": neg, "params": init, "item_features": feats}
    got = train_bpr(**named, epochs=3, lr=0.07, l2=0.1, batch_size=5, seed_key=KEY)
    want = train_bpr(users, pos, neg, init, feats, epochs=3, lr=0.07, l2=0.1, batch_size=5,
                     seed_key=KEY)  # fmt: skip
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


# ----------------------------------------------------------------------------- propensities


def make_log(slates, clicked_pos) -> Log:
    """A log of one row per slate (user ``r`` at step 0)."""
    slates = np.asarray(slates, np.int64)
    m = slates.shape[0]
    clicked_pos = np.asarray(clicked_pos, np.int64)
    return Log(
        step=np.zeros(m, np.int64),
        user_ids=np.arange(m, dtype=np.int64),
        slates=slates,
        clicked_pos=clicked_pos,
        engagement=(clicked_pos >= 0).astype(np.float32),
    )


def propensity_by_hand(slates, power, floor) -> dict[int, float]:
    """``clip((n_i / max n) ** power, floor, 1)`` with ``n_i`` counted slot by slot."""
    counts: dict[int, int] = {}
    for row in slates:
        for i in row:
            if i != PAD:
                counts[int(i)] = counts.get(int(i), 0) + 1
    top = max(counts.values())
    return {i: min(max((n / top) ** power, floor), 1.0) for i, n in counts.items()}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("power", "floor"), [(0.5, 0.05), (1.0, 0.3), (2.0, 1e-3)])
def test_exposure_propensity_is_the_clipped_relative_impression_count(seed, power, floor):
    """Random logs with ragged (``PAD``-padded) slates: the padding is not an item."""
    rng = np.random.default_rng(seed)
    width = rng.integers(2, 5)
    slates = np.stack([rng.choice(9, width, replace=False) for _ in range(30)])
    # the log of `slate_size: 0`: earlier steps' narrower slates are PAD-padded
    slates[:20, rng.integers(1, width) :] = PAD
    ids, p = exposure_propensity(make_log(slates, np.zeros(30)), power, floor)
    want = propensity_by_hand(slates, power, floor)
    assert ids.dtype == np.int64 and p.dtype == np.float64
    np.testing.assert_array_equal(ids, sorted(want))
    np.testing.assert_allclose(p, [want[i] for i in sorted(want)], rtol=1e-12)


def test_exposure_propensity_defaults_and_an_empty_log():
    """Defaults eta 0.5 and floor 0.05; a log without slates gives no items."""
    slates = [[1, 2]] + [[1, 3]] * 499  # item 2: 1/500 of item 1's impressions
    ids, p = exposure_propensity(make_log(slates, np.zeros(500)))
    np.testing.assert_array_equal(ids, [1, 2, 3])
    np.testing.assert_allclose(p, [1.0, 0.05, np.sqrt(499 / 500)])
    ids, p = exposure_propensity(make_log(np.zeros((0, 2)), np.zeros(0)))
    assert ids.shape == p.shape == (0,) and ids.dtype == np.int64


@pytest.mark.parametrize("debias", ["ips", "snips"])
def test_click_weights_are_float32_inverse_propensities(debias):
    """``1 / P_i`` per click in float32; a never-shown clicked item is refused.

    The propensities use the agent's power and floor.
    """
    slates = [[4, 2], [4, 7], [4, 2], [4, 9]]
    log = make_log(slates, [0, 1, 1, -1])
    params = DebiasParams(debias=debias, propensity_power=1.0, min_propensity=0.3)
    w = click_weights(log, np.array([7, 2, 4, 7]), params)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, [1 / 0.3, 2.0, 1.0, 1 / 0.3], rtol=1e-6)
    with pytest.raises(AssertionError, match="never shown"):
        click_weights(log, np.array([4, 5]), params)
    assert click_weights(log, np.array([4]), DebiasParams()) is None


def test_debias_params_defaults_and_bounds():
    """Defaults none / 0.5 / 0.05; power in (0, 2], floor in (0, 1]; anything else named."""
    p = DebiasParams()
    assert (p.debias, p.propensity_power, p.min_propensity) == ("none", 0.5, 0.05)
    DebiasParams(propensity_power=2.0, min_propensity=1.0)  # the upper edges are allowed
    DebiasParams(propensity_power=1e-9, min_propensity=1e-9)
    for bad in (
        {"propensity_power": 0.0},
        {"propensity_power": 2.0001},
        {"min_propensity": 0.0},
        {"min_propensity": 1.0001},
        {"debias": "dr"},
    ):
        with pytest.raises(ValidationError, match=next(iter(bad))):
            DebiasParams(**bad)
