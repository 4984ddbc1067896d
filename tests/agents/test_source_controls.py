"""The source-bias experiment's controls and its label-free debiaser.

``frozen`` (never retrained), ``history_frozen_at`` (scores on a fixed history snapshot) and
the isotropy re-ranker (all-but-the-top, no source labels) each do what the experiment's
causal decomposition relies on.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from test_agents import aligned_world, make_catalog
from test_rerank import build
from test_two_tower import obs_with_history

from simlab.agents.isotropy import IsotropyReranker, isotropy_map
from simlab.agents.two_tower import TwoTowerAgent
from simlab.batch import Catalog

CTX = SimpleNamespace(seed=0, num_users=40, dim=4)


def _agent(**params) -> TwoTowerAgent:
    base = {"factors": 4, "init": "identity", "towers": "shared", "epochs": 5, "lr": 0.05}
    return TwoTowerAgent(TwoTowerAgent.Params(**{**base, **params}), CTX)


def _histories(rng, num_users: int, num_items: int, length: int = 3) -> np.ndarray:
    return np.stack([rng.permutation(num_items)[:length] for _ in range(num_users)]).astype(
        np.int64
    )


# ---------------------------------------------------------------------------- frozen


@pytest.mark.parametrize("seed", range(4))
def test_frozen_scorer_serves_content_similarity_from_step_0_and_never_learns(seed):
    """``frozen``: top-k by <mean clicked features, f_i> from step 0; retrains change nothing."""
    catalog, log, _, _ = aligned_world(seed)
    _, other, _, _ = aligned_world(seed + 10)
    rng = np.random.default_rng(seed)
    hist = _histories(rng, 40, catalog.num_items)
    agent = _agent(frozen=True)
    first = agent.act(obs_with_history(catalog, hist, step=0, k=4)).item_ids
    feats = catalog.features
    expected = np.argsort(-(feats[hist].mean(axis=1) @ feats.T), axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(np.sort(first, axis=1), np.sort(expected, axis=1))
    model = {k: v.copy() for k, v in agent._model.items()}
    for t, lg in enumerate((log, other, log)):
        agent.retrain(lg)
        assert all(np.array_equal(agent._model[k], model[k]) for k in model), t
    again = agent.act(obs_with_history(catalog, hist, step=5, k=4)).item_ids
    np.testing.assert_array_equal(again, first)
    # the same agent not frozen serves random slates first, then learns from the log
    learner = _agent()
    learner.act(obs_with_history(catalog, hist, step=0, k=4))
    assert learner._model is None
    learner.retrain(log)
    assert not np.array_equal(learner._model["A"], model["A"])


# ---------------------------------------------------------------------------- fixed history


@pytest.mark.parametrize(("at", "seed"), [(0, 0), (2, 1), (3, 2), (5, 3)])
def test_history_frozen_at_scores_on_the_snapshot_not_the_live_history(at, seed):
    """After step ``at`` a user is scored on the last history served at or before it."""
    catalog, _, _, _ = aligned_world(seed)
    rng = np.random.default_rng(seed)
    n = catalog.num_items
    fixed = _agent(frozen=True, history_frozen_at=at)
    live = _agent(frozen=True)
    snapshot = None
    for step in range(at + 4):
        hist = _histories(rng, 40, n)
        o = obs_with_history(catalog, hist, step=step, k=4)
        got = fixed.score(o, np.tile(catalog.item_ids, (40, 1))) if step else None
        fixed.act(o)
        live.act(o)
        if step <= at:
            snapshot = hist
        if step > at:
            want = live.score(
                obs_with_history(catalog, snapshot, step, 4), np.tile(np.arange(n), (40, 1))
            )
            np.testing.assert_allclose(got, want, rtol=1e-6)
            differs = live.score(o, np.tile(np.arange(n), (40, 1)))
            assert not np.allclose(got, differs)  # the live history would score otherwise


def test_users_first_served_after_the_snapshot_have_an_empty_history():
    """A user never served by step ``at`` is scored as a user without clicks."""
    catalog, _, _, _ = aligned_world(0)
    rng = np.random.default_rng(0)
    agent = _agent(frozen=True, history_frozen_at=1)
    hist = _histories(rng, 40, catalog.num_items)
    half = obs_with_history(catalog, hist[:20], step=0, k=4)
    agent.act(half)  # users 0..19 only
    late = obs_with_history(catalog, hist, step=4, k=4)
    got = agent.score(late, np.tile(catalog.item_ids, (40, 1)))
    # without clicks the user tower reads zero features: every score is 0
    assert np.abs(got[20:]).max() == 0.0
    assert np.abs(got[:20]).max() > 0.0
    live = _agent(frozen=True)
    live.act(late)
    assert np.abs(live.score(late, np.tile(catalog.item_ids, (40, 1)))[20:]).max() > 0.0


# ---------------------------------------------------------------------------- isotropy


@pytest.mark.parametrize("components", [0, 1, 2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_isotropy_map_centres_and_removes_the_top_directions(components, seed):
    """Mapped catalog: zero mean, orthogonal to its top principal directions; a shift is erased."""
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(60, 6)) * np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.2])
    mapped = isotropy_map(feats, components)(feats).astype(np.float64)
    np.testing.assert_allclose(mapped.mean(axis=0), 0.0, atol=1e-4)
    _, sv, vt = np.linalg.svd(feats - feats.mean(0), full_matrices=False)
    np.testing.assert_allclose(mapped @ vt[:components].T, 0.0, atol=1e-3)
    # what is left is the rest of the spectrum, untouched
    _, left, _ = np.linalg.svd(mapped, full_matrices=False)
    np.testing.assert_allclose(left[: 6 - components], sv[components:], rtol=1e-4)
    # a direction shared by every item (anisotropy) leaves no trace, whatever its size
    shift = rng.normal(size=6) * 10
    moved = isotropy_map(feats + shift, components)(feats + shift)
    np.testing.assert_allclose(moved, mapped, atol=1e-3)


def _styled_catalog(seed: int, style: float, anisotropy: float, labels: bool = True) -> Catalog:
    """Half AIGC; every item carries ``anisotropy * s``, AIGC ``style * s`` on top."""
    rng = np.random.default_rng(seed)
    n, d = 80, 4
    source = np.arange(n) % 2
    s = np.zeros(d)
    s[0] = 1.0
    feats = rng.normal(size=(n, d)) + np.outer(anisotropy + style * source, s)
    cat = make_catalog(np.arange(n), feats.astype(np.float32), dim=d)
    return Catalog(
        item_ids=cat.item_ids, features=cat.features, creator=cat.creator, age=cat.age,
        source=np.asarray(source, np.int8) if labels else None,
    )  # fmt: skip


def _aigc_share(seed: int, debias: bool, labels: bool = True, style: float = 3.0) -> float:
    catalog = _styled_catalog(seed, style=style, anisotropy=2.0, labels=labels)
    rng = np.random.default_rng(seed + 100)
    hist = _histories(rng, 40, catalog.num_items, length=5)  # clicks of both sources
    agent = _agent(frozen=True)
    obs = obs_with_history(catalog, hist, step=0, k=10)
    slates = agent.act(obs).item_ids
    if debias:
        rr = build(IsotropyReranker, 10, components=1)
        rr.bind_scorer(agent.score)
        ranked = rr.rerank(obs, np.tile(catalog.item_ids, (40, 1)))
        slates = ranked[:, :10]
    src = np.arange(catalog.num_items) % 2
    return float(src[slates].mean())


@pytest.mark.parametrize("seed", range(5))
def test_isotropy_takes_away_the_bonus_aigc_gets_for_every_user(seed):
    """Anisotropic, styled encoder: similarity fills slates with AIGC; isotropy undoes it.

    The re-ranker, without labels, brings the share back toward the catalog's half.
    """
    biased = _aigc_share(seed, debias=False)
    debiased = _aigc_share(seed, debias=True)
    assert biased > 0.8
    assert abs(debiased - 0.5) < abs(biased - 0.5) - 0.2


@pytest.mark.parametrize("seed", range(3))
def test_isotropy_reads_no_source_labels(seed):
    """The same slates with the labels removed from the catalog."""
    assert _aigc_share(seed, True, labels=True) == _aigc_share(seed, True, labels=False)
