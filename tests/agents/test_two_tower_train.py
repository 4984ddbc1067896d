"""The two-tower agent's retraining against written-out references.

``history_means`` against a loop over clicks; the negatives against a click-by-click
draw from the keyed uniforms (the catalog served at the click's step, else the log's
items); ``_fit`` against a reference that scores every click of a batch one by one
(``<[m_u, p_u] A, f B> + <f, w>``, one map when shared), adds the l2 term on the batch's
tower outputs and the invariance term, and steps with torch's Adam; ``retrain`` against the
inputs it documents (clicks by user then step, their in-window histories, the profiles as
served). Tiny sizes: milliseconds per test.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from simlab.agents.two_tower import TwoTowerAgent  # noqa: E402
from simlab.agents.two_tower_train import history_means  # noqa: E402
from simlab.batch import PAD, Catalog, Log, Observation  # noqa: E402
from simlab.errors import ScenarioError  # noqa: E402
from simlab.rng import numpy_generator, torch_generator  # noqa: E402

USERS, D, PROFILE, SEED = 5, 3, 2, 7


def ctx() -> SimpleNamespace:
    """Seed, number of users and feature dimension."""
    return SimpleNamespace(seed=SEED, num_users=USERS, dim=D)


@pytest.mark.parametrize("window", [1, 2, 5])
@pytest.mark.parametrize("seed", range(3))
def test_history_means_against_a_loop_over_clicks(window, seed):
    """Mean of the same user's up to ``window`` previous clicks; zero and count 0 at a start."""
    rng = np.random.default_rng(seed)
    users = np.sort(rng.integers(0, 4, 25))
    feats = rng.normal(size=(25, 3))
    means, counts = history_means(users, feats, window)
    assert means.dtype == np.float32 and means.shape == (25, 3)
    for c in range(25):
        prev = [r for r in range(c) if users[r] == users[c]][-window:]
        assert counts[c] == len(prev)
        want = feats[prev].mean(0) if prev else np.zeros(3)
        np.testing.assert_allclose(means[c], want, rtol=1e-5, atol=1e-6)
    m, c = history_means(np.zeros(0, np.int64), np.zeros((0, 3)), window)
    assert m.shape == (0, 3) and c.shape == (0,)


def catalog(ids, seed=0) -> Catalog:
    """A catalog of ``ids`` with random features."""
    ids = np.asarray(ids, np.int64)
    feats = np.random.default_rng(100 + seed).normal(size=(ids.size, D)).astype(np.float32)
    return Catalog(ids, feats, np.zeros(ids.size, np.int64), np.zeros(ids.size, np.int64))


def serve(agent, cat: Catalog, step: int, profiles=None) -> None:
    """One served step of every user with empty histories (records catalog and profiles)."""
    prof = np.arange(USERS * PROFILE, dtype=np.float32).reshape(USERS, PROFILE) / 7 + step
    obs = Observation(
        step=step,
        user_ids=np.arange(USERS, dtype=np.int64),
        user_features=prof if profiles is None else profiles,
        history=np.full((USERS, 2), PAD, np.int64),
        candidates=np.broadcast_to(cat.item_ids, (USERS, cat.item_ids.size)),
        catalog=cat,
        slate_size=2,
        shared_candidates=True,
    )
    agent.act(obs)


def window_log(cats, steps, seed=0, m=24) -> Log:
    """Impressions at ``steps`` of 3 items of that step's catalog, most of them clicked."""
    rng = np.random.default_rng(seed)
    step = np.sort(rng.choice(steps, m))
    slates = np.stack([rng.choice(cats[s].item_ids, 3, replace=False) for s in step])
    clicked = rng.integers(-1, 3, m)
    ids = np.unique(slates)
    feats = np.concatenate([c.features for c in cats.values()])
    every = np.concatenate([c.item_ids for c in cats.values()])
    rows = [int(np.flatnonzero(every == i)[0]) for i in ids]
    return Log(step, rng.integers(0, USERS, m), slates, clicked,
               (clicked >= 0).astype(np.float32), ids, feats[rows])  # fmt: skip


@pytest.mark.parametrize("negatives", ["catalog", "log"])
def test_negatives_are_keyed_draws_from_the_clicks_catalog_or_the_log(negatives):
    """Click by click: ``floor(u * n)`` of its step's catalog, else of the log's items.

    The log's items for a step not served or ``negatives: log``; another retrain index
    draws anew.
    """
    cats = {3: catalog([1, 2, 3, 4]), 4: catalog([10, 11, 12, 13, 14, 15], 1)}
    agent = TwoTowerAgent(TwoTowerAgent.Params(epochs=3, negatives=negatives), ctx())
    serve(agent, catalog([90, 91]), 1)  # before the window: ignored
    for s, c in cats.items():
        serve(agent, c, s)
    log = window_log(cats, [3, 4])
    steps = np.array([3, 4, 4, 5, 3, 2])  # step 5 was never served; 2 is not in the window
    for k in (0, 1):
        agent._num_retrains = k
        got = agent._negatives(log, steps)
        u = numpy_generator(SEED, "agent/two-tower/negatives", k).random((3, steps.size))
        for e in range(3):
            for c, s in enumerate(steps):
                pool = cats[s].item_ids if negatives == "catalog" and s in cats else log.feature_ids
                assert got[e, c] == pool[int(u[e, c] * pool.size)], (k, e, c)


def reference_fit(x_user, fp, pool, neg, sp, sn, init, p, k):
    """The documented BPR of the towers, click by click."""
    shared = p.towers == "shared"
    t = {key: torch.nn.Parameter(torch.tensor(v, dtype=torch.float32)) for key, v in init.items()}
    opt = torch.optim.Adam([v for key, v in t.items() if not (shared and key == "w")], lr=p.lr)
    xu, fp, pool = (torch.tensor(a, dtype=torch.float32) for a in (x_user, fp, pool))
    gen = torch_generator(SEED, "agent/two-tower/batches", k)
    for epoch in range(p.epochs):
        order = torch.randperm(xu.shape[0], generator=gen).tolist()
        for start in range(0, len(order), p.batch_size):
            rows = order[start : start + p.batch_size]
            imap = t["A"][:D] if shared else t["B"]
            nll, reg, gaps = [], 0.0, []
            for c in rows:
                e = xu[c] @ t["A"]
                fi, fj = fp[c], pool[neg[epoch, c]]
                vi, vj = fi @ imap, fj @ imap
                nll.append(-torch.log(torch.sigmoid(e @ (vi - vj) + (fi - fj) @ t["w"])))
                reg = reg + (e**2).sum() + (vi**2).sum() + (vj**2).sum()
                if sp is not None:
                    for dlt in (torch.from_numpy(sp[c]), torch.from_numpy(sn[neg[epoch, c]])):
                        gaps.append((e @ (dlt @ imap) + dlt @ t["w"]).abs())
            loss = torch.stack(nll).mean() + p.l2 * reg / len(rows)
            if gaps:
                loss = loss + p.source_debias * torch.stack(gaps).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    out = {key: v.detach().numpy() for key, v in t.items()}
    if shared:
        out["B"] = out["A"][:D]
    return out


@pytest.mark.parametrize(
    "keys",
    [
        {"factors": 2, "batch_size": 4, "l2": 0.3, "lr": 0.05},
        {"factors": 3, "batch_size": 11, "towers": "shared", "init_scale": 0.5},
        {"factors": 2, "batch_size": 5, "source_debias": 0.9, "l2": 0.0},
        {"factors": 4, "batch_size": 3, "towers": "shared", "source_debias": 0.4,
         "init": "identity"},
    ],
)  # fmt: skip
def test_fit_equals_the_written_out_bpr_of_the_towers(keys):
    """Every map as the reference; shared towers keep ``w`` at zero and ``B = A[:d]``."""
    p = TwoTowerAgent.Params(epochs=3, **keys)
    agent = TwoTowerAgent(p, ctx())
    agent._num_retrains = 2
    rng = np.random.default_rng(3)
    m, n = 13, 6
    x_user = rng.normal(size=(m, D + PROFILE)).astype(np.float32)
    fp, pool = rng.normal(size=(m, D)), rng.normal(size=(n, D))
    neg = rng.integers(0, n, (3, m))
    sp = sn = None
    if p.source_debias > 0:
        sp, sn = (rng.normal(0, 0.5, a.shape).astype(np.float32) for a in (fp, pool))
    init = agent._init_params(D, PROFILE)
    got = agent._fit(x_user, fp, pool, neg, sp, sn)
    want = reference_fit(x_user, fp, pool, neg, sp, sn, init, p, 2)
    assert set(got) == {"A", "B", "w"}
    for key in got:
        assert got[key].dtype == np.float32, key
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-5, err_msg=key)
    if p.towers == "shared":
        assert not got["w"].any()
        np.testing.assert_array_equal(got["B"], got["A"][:D])
    else:
        assert np.abs(got["w"]).max() > 1e-3


@pytest.mark.parametrize(("towers", "init"), [("separate", "random"), ("shared", "identity")])
def test_initial_maps_are_keyed_and_warm_starts_keep_the_last(towers, init):
    """Init from stream ``agent/two-tower/init``; warm starts return the last maps.

    A then B, std init_scale, identity on the feature block; the servable initial model
    is float32.
    """
    p = TwoTowerAgent.Params(factors=4, init_scale=0.3, towers=towers, init=init)
    agent = TwoTowerAgent(p, ctx())
    agent._num_retrains = 3  # the initial maps do not depend on the retrain index
    gen = numpy_generator(SEED, "agent/two-tower/init", 0)
    a, b = gen.normal(0, 0.3, (D + PROFILE, 4)), gen.normal(0, 0.3, (D, 4))
    if init == "identity":
        a[:D] = b = np.eye(D, 4)
    got = agent._init_params(D, PROFILE)
    want_a = np.concatenate([b, a[D:]]) if towers == "shared" else a
    np.testing.assert_array_equal(got["A"], want_a)
    np.testing.assert_array_equal(got["w"], np.zeros(D))
    assert ("B" in got) == (towers == "separate")
    if towers == "separate":
        np.testing.assert_array_equal(got["B"], b)
    model = agent._initial_model(D, PROFILE)
    assert all(v.dtype == np.float32 for v in model.values())
    np.testing.assert_array_equal(model["B"], np.asarray(b, np.float32))
    agent._model = {"A": a * 2, "B": b * 2, "w": np.ones(D)}
    warm = agent._init_params(D, PROFILE)
    assert set(warm) == ({"A", "w"} if towers == "shared" else {"A", "B", "w"})
    for key in warm:
        np.testing.assert_array_equal(warm[key], agent._model[key])
    agent.params = p.model_copy(update={"warm_start": False})
    np.testing.assert_array_equal(agent._init_params(D, PROFILE)["A"], want_a)


@pytest.mark.parametrize("source_debias", [0.0, 0.6])
def test_retrain_feeds_the_documented_inputs_to_the_fit(source_debias):
    """The fit gets the documented inputs; then the counter moves.

    Clicks by user then step, their in-window history means, profiles as last served,
    keyed negatives and their features, rewrites' shifts.
    """
    cats = {3: catalog([1, 2, 3, 4]), 4: catalog([10, 11, 12, 13, 14, 15], 1)}
    p = TwoTowerAgent.Params(epochs=2, history_length=2, source_debias=source_debias)
    agent = TwoTowerAgent(p, ctx())
    agent.bind_rewriter(lambda ids, f: f * 2.0 + ids[:, None])
    for s, c in cats.items():
        serve(agent, c, s)
    log = window_log(cats, [3, 4], seed=2)
    seen = {}
    agent._fit = lambda *args: seen.setdefault("args", args) and {"A": 0}
    agent.retrain(log)
    x_user, fp, pool_feats, neg, sp, sn = seen["args"]
    clicked = np.flatnonzero(log.clicked_pos >= 0)
    rows = sorted(clicked, key=lambda r: (log.user_ids[r], log.step[r], r))
    items = np.array([log.slates[r, log.clicked_pos[r]] for r in rows])
    feats = {int(i): f for c in cats.values() for i, f in zip(c.item_ids, c.features, strict=True)}
    np.testing.assert_array_equal(fp, [feats[i] for i in items])
    users = log.user_ids[rows]
    hist, _ = history_means(users, fp, 2)
    profiles = np.arange(USERS * PROFILE).reshape(USERS, PROFILE) / 7 + 4  # last served: 4
    np.testing.assert_allclose(x_user, np.concatenate([hist, profiles[users]], 1), rtol=1e-6)
    assert agent._num_retrains == 1 and agent._model == {"A": 0}
    agent._num_retrains = 0  # the draws of the retrain that ran (tested above)
    neg_ids = agent._negatives(log, log.step[rows])
    pool = np.unique(neg_ids)
    np.testing.assert_array_equal(pool[neg], neg_ids)
    np.testing.assert_array_equal(pool_feats, [feats[i] for i in pool])
    if source_debias > 0:
        np.testing.assert_allclose(sp, fp + items[:, None], rtol=1e-6)
        np.testing.assert_allclose(sn, pool_feats + pool[:, None], rtol=1e-6)
    else:
        assert sp is None and sn is None


def test_retrain_skips_empty_windows_frozen_models_and_needs_a_rewriter():
    """No click or one item: nothing; frozen: only the features; no rewriter: a clear error."""
    cats = {3: catalog([1, 2, 3, 4])}
    agent = TwoTowerAgent(TwoTowerAgent.Params(), ctx())
    serve(agent, cats[3], 3)
    log = window_log(cats, [3], seed=4)
    no_click = Log(log.step, log.user_ids, log.slates, np.full(log.step.size, -1),
                   log.engagement * 0, log.feature_ids, log.features)  # fmt: skip
    agent.retrain(no_click)
    one = Log(log.step[:2], log.user_ids[:2], log.slates[:2, :1], np.zeros(2, np.int64),
              np.ones(2, np.float32), log.slates[:1, 0], log.features[:1])  # fmt: skip
    agent.retrain(one)
    assert agent._model is None and agent._num_retrains == 0
    frozen = TwoTowerAgent(TwoTowerAgent.Params(frozen=True), ctx())
    serve(frozen, catalog([60, 61], 3), 1)  # before the window: forgotten
    serve(frozen, cats[3], 3)
    initial = {k: v.copy() for k, v in frozen._model.items()}
    serve(frozen, catalog([50, 51], 2), 9)
    # the window also logged item 77, which no remembered catalog holds
    logged = Log(log.step, log.user_ids, log.slates, log.clicked_pos, log.engagement,
                 np.r_[log.feature_ids, 77], np.r_[log.features, np.full((1, D), 7.0)])  # fmt: skip
    frozen.retrain(logged)  # keeps the log's features, forgets catalogs before the window
    assert frozen._num_retrains == 0 and sorted(frozen._catalogs) == [3, 9]
    for k in initial:
        np.testing.assert_array_equal(frozen._model[k], initial[k])
    np.testing.assert_array_equal(frozen._known_ids, np.union1d(logged.feature_ids, [50, 51]))
    np.testing.assert_array_equal(frozen._features_of(np.array([77]))[0], np.full((1, D), 7.0))
    debias = TwoTowerAgent(TwoTowerAgent.Params(source_debias=0.5), ctx())
    serve(debias, cats[3], 3)
    with pytest.raises(ScenarioError, match="two-tower's source_debias needs the content"):
        debias.retrain(log)
