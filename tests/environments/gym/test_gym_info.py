"""The envs' ``info`` (same keys at reset and step), Minari recording, rendering, flat actions."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest

import simlab.environments.gym  # noqa: F401 - registers the ids
from simlab.environments.gym import PlatformEnv, SlateRecEnv, SlateRecVectorEnv

TINY = {
    "users.num_users": 4,
    "users.churn_threshold": 0.0,
    "content.initial_items": 60,
    "platform.max_candidates": 8,
}


def structure(x):
    """Keys (recursively), and dtype kind and shape of every leaf."""
    if isinstance(x, dict):
        return {k: structure(v) for k, v in x.items()}
    a = np.asarray(x)
    return (a.dtype.kind, a.shape)


MAKERS = {
    "slate": lambda: SlateRecEnv(overrides=TINY, max_steps=12),
    "platform": lambda: PlatformEnv(overrides=TINY, max_steps=12),
    "vector": lambda: SlateRecVectorEnv(3, overrides=TINY, max_steps=5),
}


@pytest.mark.parametrize("kind", list(MAKERS))
def test_info_has_the_same_structure_at_reset_and_every_step(kind):
    """Keys, dtypes and shapes of ``info`` never change, over resets and episode ends."""
    env = MAKERS[kind]()
    env.action_space.seed(0)
    _, info = env.reset(seed=3)
    want = structure(info)
    for _ in range(14):
        _, _, term, trunc, info = env.step(env.action_space.sample())
        assert structure(info) == want
        if np.all(term) or np.all(trunc):
            _, info = env.reset()
            assert structure(info) == want


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_info_reports_the_executed_slate_and_the_choice(seed):
    """``slate_items`` is what the users saw, ``clicked_position``/``engagement`` what they did."""
    env = PlatformEnv(overrides=TINY)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    for _ in range(5):
        cands = env.sessions.candidate_ids.copy()
        action = env.action_space.sample()
        _, reward, _, _, info = env.step(action)
        fb = env.sessions.world.last_feedback
        served = info["served"]
        assert served.sum() == fb.user_ids.size
        assert np.array_equal(info["slate_items"][served], fb.slates)
        assert np.array_equal(info["clicked_position"][served], fb.clicked_pos)
        picked = np.take_along_axis(cands, info["slate"], axis=1)
        assert np.array_equal(picked[served], info["slate_items"][served])
        eng = info["engagement"]
        assert (eng[~info["clicked"]] == 0).all()
        rows = np.flatnonzero(info["clicked"])
        np.testing.assert_allclose(eng[rows, info["clicked_position"][rows]], eng[rows].sum(axis=1))
        assert reward == pytest.approx(float(eng[served].sum(axis=1).mean()))


def test_reset_info_says_nothing_was_served_yet():
    """At reset nothing is served: slates are -1, no click, zero engagement, metrics undefined."""
    _, info = SlateRecEnv(overrides=TINY).reset(seed=0)
    assert not info["served"] and info["visiting"]
    assert (info["slate"] == -1).all() and (info["slate_items"] == -1).all()
    assert info["clicked_position"] == -1 and not info["clicked"]
    assert not any(info["metrics_defined"].values()) and not any(info["metrics"].values())


def test_native_vector_info_matches_sync_vector_env_layout():
    """The native vector env's info has the layout SyncVectorEnv builds from single envs."""
    # without homogenization: a one-user world (each single env) cannot measure it
    tiny = {**TINY, "metrics": ["engagement", "exposure"]}
    sync = gym.vector.SyncVectorEnv([lambda: SlateRecEnv(overrides=tiny)] * 2)
    native = SlateRecVectorEnv(2, overrides=tiny)
    for env in (sync, native):
        env.action_space.seed(0)
    (_, a), (_, b) = sync.reset(seed=0), native.reset(seed=0)
    assert structure(a) == structure(b)
    a = sync.step(sync.action_space.sample())[4]
    b = native.step(native.action_space.sample())[4]
    assert structure(a) == structure(b)


def test_minari_records_episodes_with_infos(tmp_path, monkeypatch):
    """Minari's DataCollector records episodes with infos on; the dataset loads back."""
    minari = pytest.importorskip("minari")  # declared in the `rl` extra
    from minari import DataCollector

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    env = DataCollector(
        gym.make("simlab/SlateRec-v0", overrides=TINY, max_steps=6),
        record_infos=True,
        data_format="arrow",
    )
    env.action_space.seed(0)
    for ep in range(2):
        env.reset(seed=ep)
        done = False
        while not done:
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            done = term or trunc
    env.create_dataset(dataset_id="simlab/slaterec-test-v0", algorithm_name="random")
    data = minari.load_dataset("simlab/slaterec-test-v0")
    assert data.total_episodes == 2 and data.total_steps == 12
    ep = next(data.iterate_episodes())
    assert ep.infos["slate_items"].shape == (7, 5) and (ep.infos["slate_items"][0] == -1).all()
    assert ep.infos["clicked_position"].shape == (7,)
    ctr = [m["engagement/ctr"] for m in ep.infos["metrics"]]  # a struct per step
    assert ctr == [0.0, *ep.infos["clicked"][1:].astype(float)]
    np.testing.assert_allclose(ep.rewards, ep.infos["engagement"][1:].sum(axis=1), rtol=1e-6)


@pytest.mark.parametrize("kind", list(MAKERS))
def test_ansi_render_shows_the_slate_and_the_choice(kind):
    """``render_mode="ansi"`` returns text with the served items and the clicked slot."""
    env = MAKERS[kind]()
    env.render_mode = "ansi"
    env.reset(seed=0)
    assert "no slate served yet" in env.render()
    clicked = False
    env.action_space.seed(0)
    for _ in range(30):
        _, _, _, _, info = env.step(env.action_space.sample())
        text = env.render()
        if not np.asarray(info["served"]).ravel()[0]:
            continue  # the vector env's sessions restart after max_steps
        items = np.asarray(info["slate_items"]).reshape(-1, 5)[0]
        assert all(re.search(rf"\b{int(i)}\b", text) for i in items)
        pos = int(np.asarray(info["clicked_position"]).ravel()[0])
        if pos >= 0:
            assert f"clicked slot {pos}" in text
            clicked = True
    assert clicked


def test_render_mode_is_accepted_by_make_and_checked():
    """``gym.make(..., render_mode=...)`` works; an unknown mode is a clear error."""
    env = gym.make("simlab/SlateRec-v0", overrides=TINY, render_mode="ansi")
    env.reset(seed=0)
    assert env.render().startswith("simlab/SlateRec-v0")
    with pytest.raises(ValueError, match=re.escape("`render_mode` in ['ansi', 'human']")):
        SlateRecEnv(overrides=TINY, render_mode="rgb_array")


def test_platform_flat_and_2d_actions_are_the_same():
    """The flat action ``U * K`` and the ``(U, K)`` array serve the same slates."""
    a, b = PlatformEnv(overrides=TINY), PlatformEnv(overrides=TINY)
    assert a.action_space.shape == (4 * 5,)
    a.action_space.seed(0)
    a.reset(seed=1), b.reset(seed=1)
    for _ in range(3):
        act = a.action_space.sample()
        ra, rb = a.step(act), b.step(act.reshape(4, 5))
        assert ra[1] == rb[1] and np.array_equal(ra[4]["slate_items"], rb[4]["slate_items"])
