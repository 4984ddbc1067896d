"""The slate-ts click model's MAP fit and Laplace posterior against written-out references.

``fit_map`` is compared with a reference mini-batch Adam on the objective as documented
(mean in-slate softmax NLL of each batch plus half the negative log prior over ``M``, the
batches drawn by the keyed torch generator), written here with explicit loops over slots;
``laplace_std`` with the closed-form Hessian diagonal summed impression by impression, with
every parameter (``A``, ``W``, slot offsets) non-zero.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from simlab.agents.slate_ts_model import ClickData, Priors, fit_map, laplace_std  # noqa: E402
from simlab.rng import torch_generator  # noqa: E402

U, N, K, DU, D, F, M = 4, 6, 3, 2, 3, 2, 23
PRIORS = Priors(delta=0.7, bias=1.3, user=0.9)
KEY = (3, "agent/slate-ts/batches", 5)


def click_data(seed: int = 0, shown: int = N) -> ClickData:
    """``M`` impressions of ``K`` distinct items among the first ``shown``, some clicked."""
    rng = np.random.default_rng(seed)
    return ClickData(
        users=rng.integers(0, U, M).astype(np.int64),
        slates=np.stack([rng.permutation(shown)[:K] for _ in range(M)]).astype(np.int64),
        target=rng.integers(0, K + 1, M).astype(np.int64),
        user_features=rng.normal(size=(U, DU)).astype(np.float32),
        item_features=rng.normal(size=(N, D)).astype(np.float32),
    )


def init_model(seed: int = 1, f: int = F) -> dict[str, np.ndarray]:
    """Every parameter non-zero (``f`` factors)."""
    rng = np.random.default_rng(seed)
    shapes = {"A": (DU, f), "W": (D, f), "P": (U, f), "delta": (N, f), "c": (N,), "b0": (1,)}
    out = {k: (0.5 * rng.normal(size=s)).astype(np.float32) for k, s in shapes.items()}
    out["pos"] = np.array([0.0, -0.3, -0.6], np.float32)
    return out


def logits_by_slot(t, data: ClickData, rows) -> torch.Tensor:
    """``(R, K + 1)``: ``b0``, then ``<z_u, v_i> + c_i + pos_j`` slot by slot."""
    g = torch.from_numpy(data.user_features)
    f = torch.from_numpy(data.item_features)
    out = []
    for r in rows.tolist():
        u = int(data.users[r])
        z = g[u] @ t["A"] + t["P"][u]
        row = [t["b0"][0]]
        for j, i in enumerate(data.slates[r].tolist()):
            v = f[i] @ t["W"] + t["delta"][i]
            row.append((z * v).sum() + t["c"][i] + t["pos"][j])
        out.append(torch.stack(row))
    return torch.stack(out)


def reference_fit(data: ClickData, init, params, priors: Priors):
    """Mini-batch Adam on mean NLL + 0.5 * (negative log prior) / M, as documented."""
    t = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in init.items()}
    learned = [k for k in t if k != "pos" or params.learn_position_bias]
    opt = torch.optim.Adam([t[k] for k in learned], lr=params.lr)
    gen = torch_generator(*KEY)
    target = torch.from_numpy(data.target)
    for _ in range(params.epochs):
        order = torch.randperm(M, generator=gen)
        for start in range(0, M, params.batch_size):
            rows = order[start : start + params.batch_size]
            nll = torch.nn.functional.cross_entropy(logits_by_slot(t, data, rows), target[rows])
            log_prior = (
                (t["delta"] ** 2).sum() / priors.delta**2
                + (t["c"] ** 2).sum() / priors.bias**2
                + (t["P"] ** 2).sum() / priors.user**2
            )
            for k in ("A", "W", "b0", "pos"):
                log_prior = log_prior + params.l2 * (t[k] ** 2).sum()
            loss = nll + 0.5 * log_prior / M
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {k: v.detach().numpy() for k, v in t.items()}


@pytest.mark.parametrize(("batch", "learn_pos"), [(M, True), (8, True), (5, False)])
def test_fit_map_equals_the_reference_adam(batch, learn_pos):
    """Same parameters as the written-out objective and batches, every parameter learned."""
    params = SimpleNamespace(
        epochs=6, lr=0.05, batch_size=batch, l2=0.4, learn_position_bias=learn_pos
    )
    data, init = click_data(), init_model()
    got = fit_map(data, init, params, PRIORS, KEY)
    want = reference_fit(data, init, params, PRIORS)
    assert set(got) == set(init)
    for k in init:
        assert got[k].shape == init[k].shape and got[k].dtype == np.float32, k
        np.testing.assert_allclose(got[k], want[k], rtol=2e-4, atol=2e-5, err_msg=k)
        if k != "pos" or learn_pos:
            assert not np.allclose(got[k], init[k]), k  # it moved
    if not learn_pos:
        np.testing.assert_array_equal(got["pos"], init["pos"])
    np.testing.assert_array_equal(init_model()["A"], init["A"])  # the init is not changed


def test_fit_map_batches_follow_the_keyed_generator():
    """Another key shuffles other batches (another result); the same key repeats exactly."""
    params = SimpleNamespace(epochs=3, lr=0.05, batch_size=7, l2=0.1, learn_position_bias=True)
    data, init = click_data(), init_model()
    a = fit_map(data, init, params, PRIORS, KEY)
    b = fit_map(data, init, params, PRIORS, KEY)
    c = fit_map(data, init, params, PRIORS, (KEY[0], KEY[1], KEY[2] + 1))
    for k in init:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["delta"], c["delta"])


@pytest.mark.parametrize("f", [2, 3])  # an odd factor count too
def test_laplace_std_equals_the_hessian_diagonal_with_every_parameter_set(f):
    """Prior precision plus ``p(1-p) z^2``, ``p(1-p)`` and the user term, per impression."""
    data, model = click_data(2, shown=N - 1), init_model(3, f)
    item_std, user_std = laplace_std(data, model, PRIORS)
    assert item_std.shape == (N, f + 1) and user_std.shape == (U, f)
    g, fi = data.user_features.astype(np.float64), data.item_features.astype(np.float64)
    m = {k: v.astype(np.float64) for k, v in model.items()}
    items, users = np.zeros((N, f + 1)), np.zeros((U, f))
    for r in range(M):
        u, s = data.users[r], data.slates[r]
        z = g[u] @ m["A"] + m["P"][u]
        v = np.stack([fi[i] @ m["W"] + m["delta"][i] for i in s])
        logit = np.array(
            [m["b0"][0]] + [z @ v[j] + m["c"][i] + m["pos"][j] for j, i in enumerate(s)]
        )
        p = np.exp(logit - logit.max())
        p = p[1:] / p.sum()
        for j, i in enumerate(s):
            items[i, :f] += p[j] * (1 - p[j]) * z**2
            items[i, f] += p[j] * (1 - p[j])
        users[u] += (p[:, None] * v**2).sum(0) - ((p[:, None] * v).sum(0)) ** 2
    items[:, :f] += 1 / PRIORS.delta**2
    items[:, f] += 1 / PRIORS.bias**2
    users += 1 / PRIORS.user**2
    np.testing.assert_allclose(item_std, 1 / np.sqrt(items), rtol=2e-5)
    np.testing.assert_allclose(user_std, 1 / np.sqrt(users), rtol=2e-5)
    # item N - 1 was never shown: exactly its prior std
    np.testing.assert_allclose(item_std[N - 1], [*[PRIORS.delta] * f, PRIORS.bias], rtol=1e-6)


def test_the_fit_and_its_laplace_sums_repeat_on_any_number_of_torch_threads():
    """On 2 torch threads, the values of 1 thread, bit for bit, and the thread count kept.

    Multi-threaded scatter-adds (the backward of the batches' indexing, ``index_add_``)
    added in a run-dependent order: the same scenario gave other metrics.
    """
    rng = np.random.default_rng(9)
    m, users, items, k, f = 20_000, 500, 300, 5, 16
    data = ClickData(
        users=rng.integers(0, users, m).astype(np.int64),
        slates=np.stack([rng.permutation(items)[:k] for _ in range(m)]).astype(np.int64),
        target=rng.integers(0, k + 1, m).astype(np.int64),
        user_features=rng.normal(size=(users, DU)).astype(np.float32),
        item_features=rng.normal(size=(items, D)).astype(np.float32),
    )
    shapes = {"A": (DU, f), "W": (D, f), "P": (users, f), "delta": (items, f), "c": (items,)}
    init = {n: (0.3 * rng.normal(size=s)).astype(np.float32) for n, s in shapes.items()}
    init.update(b0=np.zeros(1, np.float32), pos=np.zeros(k, np.float32))
    params = SimpleNamespace(epochs=2, lr=0.05, batch_size=4096, l2=1.0, learn_position_bias=True)
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 2):
            torch.set_num_threads(threads)
            model = fit_map(data, init, params, PRIORS, KEY)
            runs.append((model, laplace_std(data, model, PRIORS)))
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    for model, stds in runs[1:]:
        for name in init:
            np.testing.assert_array_equal(model[name], runs[0][0][name])
        for got, want in zip(stds, runs[0][1], strict=True):
            np.testing.assert_array_equal(got, want)
