"""GRU4Rec's model and training against written-out references.

The recurrence is compared with torch's own GRU cell (``torch.gru_cell``, weights
transposed), the sampled softmax with a click-by-click numpy loop, the click sequences with
a loop over users, and ``train_gru4rec`` with a reference that runs the GRU cell over every
sequence of a batch, scores each click against the batch's negatives (a negative equal to
the target left out), takes the mean / IPS / SNIPS loss plus ``l2 * |q_target|^2`` per
click, and steps with torch's Adam; batches and negatives follow the keyed generator.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from simlab.agents.gru4rec_model import (  # noqa: E402
    _gru_states,
    _sampled_softmax_nll,
    click_sequences,
    train_gru4rec,
)
from simlab.batch import PAD, Log  # noqa: E402
from simlab.rng import torch_generator  # noqa: E402

F, N, D = 3, 7, 2
KEY = (5, "test/gru-ref", 1)


def gru_params(seed: int = 0, f: int = F) -> dict[str, np.ndarray]:
    """Every GRU array non-zero, biases and ``h0`` included."""
    rng = np.random.default_rng(seed)
    shapes = {"W_ih": (f, 3 * f), "W_hh": (f, 3 * f), "b_ih": (3 * f,), "b_hh": (3 * f,)}
    out = {k: rng.normal(0, 0.6, s).astype(np.float32) for k, s in shapes.items()}
    out["h0"] = rng.normal(0, 0.5, f).astype(np.float32)
    return out


def cell(t, x, h):
    """Torch's GRU cell with our ``(f, 3f)`` layout (torch's is ``(3f, f)``)."""
    return torch.gru_cell(x, h, t["W_ih"].T, t["W_hh"].T, t["b_ih"], t["b_hh"])


@pytest.mark.parametrize(("b", "length", "f"), [(4, 5, 3), (1, 1, 2), (3, 0, 4)])
def test_gru_states_are_torch_gru_cell_steps_from_h0(b, length, f):
    """``(B, T + 1, f)``: ``h0`` for every row, then one torch GRU cell step per item."""
    t = {k: torch.from_numpy(v) for k, v in gru_params(1, f).items()}
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(b, length, f)).astype(np.float32))
    states = _gru_states(t, x)
    assert states.shape == (b, length + 1, f)
    h = t["h0"].expand(b, f)
    np.testing.assert_array_equal(states[:, 0].numpy(), h.numpy())
    for s in range(length):
        h = cell(t, x[:, s], h)
        np.testing.assert_allclose(states[:, s + 1].numpy(), h.numpy(), rtol=1e-5, atol=1e-6)


def test_sampled_softmax_is_the_target_against_the_negatives_it_is_not():
    """``-log softmax`` of the target's score among the negatives other than the target."""
    rng = np.random.default_rng(3)
    h = rng.normal(size=(6, F)).astype(np.float32)
    vecs, bias = rng.normal(size=(N, F)).astype(np.float32), rng.normal(size=N).astype(np.float32)
    tgt = np.array([0, 1, 2, 3, 4, 1])
    neg = np.array([1, 5, 1, 6, 4])  # item 1 twice; targets 1 and 4 among the negatives
    got = _sampled_softmax_nll(*map(torch.from_numpy, (h, tgt, neg, vecs, bias))).numpy()
    want = []
    for r in range(6):
        s = h[r].astype(np.float64) @ vecs.T.astype(np.float64) + bias
        others = [s[j] for j in neg if j != tgt[r]]
        want.append(np.log(np.exp(s[tgt[r]]) + np.exp(others).sum()) - s[tgt[r]])
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_click_sequences_are_each_users_clicks_in_time_order(seed):
    """Loop reference over users: clicks by step (then log row), ``PAD`` on the right."""
    rng = np.random.default_rng(seed)
    m = 40
    step = np.sort(rng.integers(0, 6, m))
    users = rng.choice([3, 8, 11, 20, 21], m)
    slates = rng.integers(0, 50, (m, 3))
    clicked = rng.integers(-1, 3, m)
    clicked[users == 21] = -1  # a user who never clicks has no row
    log = Log(step, users, slates, clicked, (clicked >= 0).astype(np.float32))
    got_users, seqs = click_sequences(log)
    rows = {}
    for r in range(m):
        if clicked[r] >= 0:
            rows.setdefault(int(users[r]), []).append((step[r], r, slates[r, clicked[r]]))
    want_users = sorted(rows)
    np.testing.assert_array_equal(got_users, want_users)
    longest = max(len(v) for v in rows.values())
    assert seqs.shape == (len(want_users), longest) and seqs.dtype == np.int64
    for k, u in enumerate(want_users):
        items = [i for _, _, i in sorted(rows[u])]
        np.testing.assert_array_equal(seqs[k], items + [PAD] * (longest - len(items)))
    # no click at all: no users, no columns
    none = Log(step, users, slates, np.full(m, -1), np.zeros(m, np.float32))
    u0, s0 = click_sequences(none)
    assert u0.shape == (0,) and s0.shape == (0, 0)


def sequences(seed: int = 0, users: int = 5, longest: int = 4) -> np.ndarray:
    """``(U, T)`` item rows, ragged (``-1`` on the right), every user with a click."""
    rng = np.random.default_rng(seed)
    seqs = rng.integers(0, N, (users, longest))
    lengths = rng.integers(1, longest + 1, users)
    lengths[0] = longest
    seqs[np.arange(longest)[None, :] >= lengths[:, None]] = -1
    return seqs.astype(np.int64)


def init_params(seed: int = 4) -> dict[str, np.ndarray]:
    """GRU arrays, ``W``, ``Q`` and ``b``, all non-zero."""
    rng = np.random.default_rng(seed)
    out = gru_params(seed)
    out.update(W=rng.normal(0, 0.5, (D, F)), Q=rng.normal(0, 0.3, (N, F)), b=rng.normal(0, 0.3, N))
    return out


def reference_gru4rec(seqs, init, feats, cfg, weights):
    """Documented session-parallel training, sequence by sequence and click by click."""
    t = {k: torch.nn.Parameter(torch.tensor(v, dtype=torch.float32)) for k, v in init.items()}
    opt = torch.optim.Adam(list(t.values()), lr=cfg.lr)
    f = torch.from_numpy(feats.astype(np.float32))
    gen = torch_generator(*KEY)
    for _ in range(cfg.epochs):
        order = torch.randperm(seqs.shape[0], generator=gen).tolist()
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            neg = torch.randint(0, N, (cfg.num_negatives,), generator=gen).tolist()
            vecs = f @ t["W"] + t["Q"]
            nll, ws, reg = [], [], 0.0
            for row in batch:
                h = t["h0"][None, :]
                for s, item in enumerate(seqs[row].tolist()):
                    if item < 0:
                        break
                    logits = [h[0] @ vecs[item] + t["b"][item]]
                    logits += [h[0] @ vecs[j] + t["b"][j] for j in neg if j != item]
                    nll.append(-torch.log_softmax(torch.stack(logits), 0)[0])
                    ws.append(1.0 if weights is None else float(weights[row, s]))
                    reg = reg + (t["Q"][item] ** 2).sum()
                    h = cell(t, vecs[item][None, :], h)
            nll, w = torch.stack(nll), torch.tensor(ws)
            if weights is None:
                loss = nll.mean()
            elif cfg.debias == "snips":
                loss = (w * nll).sum() / w.sum()
            else:
                loss = (w * nll).mean()
            loss = loss + cfg.l2 * reg / len(ws)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {k: v.detach().numpy() for k, v in t.items()}


@pytest.mark.parametrize(
    ("debias", "batch", "negatives", "l2"),
    [("none", 2, 4, 0.3), ("ips", 5, 3, 0.0), ("snips", 3, 6, 1.0), ("none", 5, 1, 0.5)],
)
def test_train_gru4rec_equals_the_written_out_fit(debias, batch, negatives, l2):
    """Every parameter as the reference, with short last batches and masked negatives."""
    seqs = sequences(1)
    init = init_params()
    feats = np.random.default_rng(7).normal(size=(N, D))
    cfg = SimpleNamespace(
        epochs=3, lr=0.05, l2=l2, batch_size=batch, num_negatives=negatives, debias=debias
    )
    weights = None
    if debias != "none":
        weights = np.random.default_rng(8).uniform(0.5, 3, seqs.shape).astype(np.float32)
        weights[seqs < 0] = 0.0
    got = train_gru4rec(seqs, init, feats, cfg, weights=weights, seed_key=KEY)
    want = reference_gru4rec(seqs, init, feats, cfg, weights)
    assert set(got) == set(init)
    for k in init:
        assert got[k].shape == np.shape(init[k]) and got[k].dtype == np.float32, k
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=2e-5, err_msg=k)
        assert not np.allclose(got[k], init[k]), k  # every parameter learns
