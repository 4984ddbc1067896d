"""The gym sessions' building blocks against by-hand references: slates, seeds, feature table."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.environments.gym import PlatformEnv
from simlab.environments.gym.sessions import (
    EpisodeSeeds,
    RewardKind,
    WorldSessions,
    _FeatureTable,
    dedupe_slates,
    episode_seed,
)
from simlab.errors import ScenarioError


def _dedupe_loop(row: list[int], c: int) -> list[int]:
    """The documented rule, slot by slot: a taken index becomes the lowest unused one."""
    out: list[int] = []
    for a in row:
        out.append(a if a not in out else min(x for x in range(c) if x not in out))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_dedupe_slates_matches_the_slot_by_slot_rule(seed):
    """Random slates (many repeats) resolve as the loop reference does, rows independent."""
    rng = np.random.default_rng(seed)
    c = int(rng.integers(1, 9))
    k = int(rng.integers(1, c + 1))
    n = int(rng.integers(1, 7))
    idx = rng.integers(0, min(c, 3) if seed % 2 else c, size=(n, k))
    got = dedupe_slates(idx, c)
    assert got.dtype == np.int64 and got.shape == (n, k)
    assert got.tolist() == [_dedupe_loop(r, c) for r in idx.tolist()]
    assert idx.tolist() == np.asarray(idx).tolist()  # the input is not modified
    one = dedupe_slates(idx[-1:], c)  # a row alone gives the same row
    assert one.tolist() == got[-1:].tolist()


def test_dedupe_slates_leaves_distinct_slates_alone_and_copies():
    """Distinct slates come back equal, as a new array."""
    idx = np.array([[4, 0, 2], [1, 3, 0]])
    out = dedupe_slates(idx, 5)
    assert out.tolist() == idx.tolist() and out is not idx
    out[0, 0] = 9
    assert idx[0, 0] == 4


@pytest.mark.parametrize("base", [0, 1, 7, 2**40])
def test_episode_seeds_start_at_the_seed_then_draw_distinct_keyed_seeds(base):
    """Episode 0 is the seed itself; later ones are keyed draws, distinct and reproducible."""
    seeds = [episode_seed(base, e) for e in range(6)]
    assert seeds[0] == base and len(set(seeds)) == 6
    assert all(0 <= s < 2**62 for s in seeds)
    assert seeds == [episode_seed(base, e) for e in range(6)]
    assert seeds[1:] != [episode_seed(base + 1, e) for e in range(1, 6)]
    stream = EpisodeSeeds()
    rng = np.random.default_rng(0)
    assert [stream.next(base if e == 0 else None, rng) for e in range(6)] == seeds
    assert stream.next(base, rng) == base and stream.next(None, rng) == seeds[1]


def test_episode_seeds_without_a_seed_draw_the_base_from_the_rng():
    """Before any seed, the base is one draw of the env's rng; the stream then goes on."""
    a, b = EpisodeSeeds(), EpisodeSeeds()
    first = [a.next(None, np.random.default_rng(5)) for _ in range(3)]
    base = int(np.random.default_rng(5).integers(2**62))
    assert first == [episode_seed(base, e) for e in range(3)]
    assert b.next(None, np.random.default_rng(6)) != first[0]


@pytest.mark.parametrize("bad", ["clicks", "", "Click", None, 1])
def test_reward_kind_parse_lists_the_valid_values(bad):
    """An unknown reward names the valid values and the value given."""
    with pytest.raises(ValueError, match=r"Expects `reward` in \['click', 'engagement'\]"):
        RewardKind.parse(bad)
    assert RewardKind.parse("click") is RewardKind.CLICK
    assert RewardKind.parse(RewardKind.ENGAGEMENT) is RewardKind.ENGAGEMENT


@pytest.mark.parametrize("seed", range(6))
def test_feature_table_keeps_every_item_ever_added(seed):
    """Batches of consecutive ids (overlapping, past the initial 1024 rows) match a dict."""
    rng = np.random.default_rng(seed)
    table, want, top = _FeatureTable(3), {}, 0
    for _ in range(8):
        old = np.array([i for i in want if i >= top - 40], np.int64)  # still live, stored
        new = np.arange(top, top + int(rng.integers(1, 700)))
        new = new[rng.random(new.size) < 0.8]  # ids skipped here never come back
        top = top + 700
        ids = np.concatenate([old, new])
        if not ids.size:
            continue
        feats = rng.normal(size=(ids.size, 3)).astype(np.float32)
        table.add(ids, feats)
        for i, f in zip(ids.tolist(), feats, strict=True):
            want.setdefault(i, f)  # items never change: the first features stay
        assert table.known == max(want) + 1
        assert table.table.shape[0] >= table.known and table.table.dtype == np.float32
        got = np.stack([table.table[i] for i in want])
        np.testing.assert_array_equal(got, np.stack(list(want.values())))
        missing = np.setdiff1d(np.arange(table.known), list(want))
        assert not table.table[missing].any()  # ids never added stay zero


def test_feature_table_ignores_a_batch_of_known_items():
    """Adding ids already stored changes nothing."""
    table = _FeatureTable(2)
    table.add(np.arange(5), np.ones((5, 2), np.float32))
    table.add(np.arange(3), np.full((3, 2), 7.0, np.float32))
    assert table.known == 5 and (table.table[:5] == 1).all()


TINY = {
    "users.num_users": 4,
    "users.churn_threshold": 0.0,
    "content.initial_items": 60,
    "platform.max_candidates": 8,
}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_history_observation_holds_the_clicked_items_features(seed):
    """``obs["history"]`` is each user's click history, by the items' published features."""
    env = PlatformEnv(overrides=TINY)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    seen: dict[int, np.ndarray] = {}
    clicks = 0
    for _ in range(8):
        s = env.sessions
        seen.update(zip(s.catalog.item_ids.tolist(), s.catalog.features, strict=True))
        hist = s.world.platform.history(s.user_ids)  # (U, H) item ids, PAD (-1) pads
        want = np.zeros(hist.shape + (s.obs["candidates"].shape[-1],), np.float32)
        for (u, h), i in np.ndenumerate(hist):
            if i >= 0:
                want[u, h] = seen[int(i)]
        np.testing.assert_array_equal(s.obs["history"], want)
        clicks += int((hist >= 0).sum())
        np.testing.assert_array_equal(
            s.obs["candidates"], np.stack([[seen[int(i)] for i in r] for r in s.candidate_ids])
        )
        env.step(env.action_space.sample())
    assert clicks > 0  # some history was observed


@pytest.mark.parametrize("initial", [1, 2, 3])
def test_fewer_live_items_than_max_candidates_is_a_scenario_error(initial):
    """A step with fewer live items than ``platform.max_candidates`` names the setting."""
    over = {**TINY, "content.initial_items": initial}
    with pytest.raises(ScenarioError, match=r"platform\.max_candidates: .* needs? a fixed number"):
        PlatformEnv(overrides=over)


@pytest.mark.parametrize("per", [3, 5, 0, -2])
def test_users_per_session_must_divide_the_population(per):
    """``users_per_session`` must be >= 1 and divide ``users.num_users`` (here 4)."""
    scenario = PlatformEnv(overrides=TINY).scenario
    with pytest.raises(ValueError, match=rf"divide the population 4, actual value: {per}"):
        WorldSessions(scenario, 0, per)


@pytest.mark.parametrize("users", [2, 4])
def test_max_candidates_0_serves_every_live_item_of_a_static_catalog(users):
    """``platform.max_candidates: 0`` over a catalog that never changes: every live item.

    Each user's candidates are all 60 items (as many as the catalog, not as the users).
    """
    over = {
        **TINY,
        "users.num_users": users,
        "platform.max_candidates": 0,
        "content.items_per_step": 0,
        "content.lifetime": 1000,
    }
    env = PlatformEnv(overrides=over)
    obs, _ = env.reset(seed=0)
    s = env.sessions
    assert s.num_candidates == 60
    assert obs["candidates"].shape[:2] == (users, 60)
    for row in s.candidate_ids:
        assert sorted(row.tolist()) == sorted(s.catalog.item_ids.tolist())
    env.step(env.action_space.sample())
    assert env.sessions.candidate_ids.shape == (users, 60)


@pytest.mark.parametrize("skipped", [[0], [1, 3], [0, 1, 2, 3]])
def test_sessions_not_served_report_no_slate_and_no_click(skipped):
    """A skipped session (being reset) shows slot -1 everywhere: no slate, no click."""
    scenario = PlatformEnv(overrides=TINY).scenario
    s = WorldSessions(scenario, 0, 1)
    skip = np.zeros(s.num_sessions, bool)
    skip[skipped] = True
    result = s.step(np.zeros((s.num_sessions, s.slate_size), np.int64), skip=skip)
    np.testing.assert_array_equal(result.clicked_position[skip], -1)
    np.testing.assert_array_equal(result.slate[skip], -1)
    assert not result.clicked[skip].any()
