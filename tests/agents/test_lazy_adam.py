"""LazyAdamRows (mf's user table): Adam on the rows a batch uses, the others untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simlab.agents.lazy_adam import LazyAdamRows
from simlab.agents.neural import train_bpr


def _loss(rows: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((rows - target) ** 2).sum() + rows.sin().sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("lr", [0.01, 0.3])
@pytest.mark.parametrize("steps", [6, 12, 720])
def test_with_every_row_in_every_batch_it_is_torch_adam(seed, lr, steps):
    """A batch that holds every row (in any order, with repeats) steps like torch's Adam.

    Up to 720 steps: past the 7th (``0.9^t < 1/2``) and the 693rd (``0.999^t < 1/2``),
    where a bias correction ``1 - beta^t`` computed any other way would show.
    """
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(7, 3, generator=gen)
    target = torch.randn(7, 3, generator=gen)
    ref = torch.nn.Parameter(table.clone())
    opt = torch.optim.Adam([ref], lr=lr)
    lazy = LazyAdamRows(table.clone(), lr)
    for _ in range(steps):
        extra = torch.randint(0, 7, (4,), generator=gen)
        ids = torch.cat([torch.randperm(7, generator=gen), extra])
        leaf, where = lazy.gather(ids)
        # the loss of each distinct row once: the same gradient per row as the dense loss
        assert torch.equal(leaf[where], lazy.table[ids])
        _loss(leaf, target[torch.unique(ids)]).backward()
        lazy.step(leaf.grad)
        opt.zero_grad()
        _loss(ref, target).backward()
        opt.step()
    np.testing.assert_allclose(lazy.table.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 3])
def test_rows_outside_the_batches_never_move(seed):
    """Rows never in a batch keep their values (and zero moments); the others move."""
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(20, 4, generator=gen)
    before = table.clone()
    lazy = LazyAdamRows(table, 0.1)
    used = torch.tensor([1, 5, 6, 19])
    for _ in range(3):
        ids = used[torch.randint(0, 4, (9,), generator=gen)]
        leaf, where = lazy.gather(ids)
        torch.nn.functional.embedding(where, leaf).pow(2).sum().backward()
        lazy.step(leaf.grad)
    moved = (lazy.table != before).any(dim=1)
    touched = torch.zeros(20, dtype=torch.bool)
    touched[torch.unique(used)] = True
    assert not moved[~touched].any()
    assert (lazy.m[~touched] == 0).all() and (lazy.v[~touched] == 0).all()


def test_bpr_leaves_the_vectors_of_users_without_clicks_as_they_were():
    """The mf retrain touches only the clicking users' rows of P (cost linear in clicks)."""
    rng = np.random.default_rng(4)
    users, n, d, f = 500, 30, 5, 4
    clickers = rng.choice(users, 40, replace=False)
    m = 200
    params = {
        "P": rng.normal(0, 0.1, (users, f)).astype(np.float32),
        "W": rng.normal(0, 0.1, (d, f)),
        "Q": np.zeros((n, f)),
        "b": np.zeros(n),
    }
    who = rng.permutation(np.repeat(clickers, m // 40))  # every clicker clicks 5 times
    out = train_bpr(
        who, rng.integers(0, n, m), rng.integers(0, n, (2, m)), params,
        rng.normal(size=(n, d)), epochs=2, lr=0.05, l2=1e-3, batch_size=64,
        seed_key=(0, "test/lazy", 0),
    )  # fmt: skip
    others = np.setdiff1d(np.arange(users), clickers)
    np.testing.assert_array_equal(out["P"][others], params["P"][others])
    assert (out["P"][clickers] != params["P"][clickers]).any(axis=1).all()
