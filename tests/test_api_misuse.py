"""The Python API refuses arguments of the wrong kind with a message naming them.

``load_scenario``, ``parse_scenario``, ``run_scenario``, ``resume_run`` and ``World`` are the
documented ways in besides the command line. A wrong argument type, a run id that leaves the
runs folder, or a step out of order is refused up front, naming the argument, the value and
what is allowed, before any run directory is made or any world state changes; never an
``AttributeError``/``IndexError`` from deep inside, and never a silently wrong simulation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL, make_small

from simlab.runner import resume_run, run_scenario
from simlab.scenario import load_scenario, parse_scenario
from simlab.world import World


@pytest.fixture(scope="module")
def sc():
    """A scenario of two agents, four steps."""
    return make_small(steps=4, agents=[{"model": "random"}, {"model": "popularity"}])


NOT_SCENARIOS = [dict(SMALL), "scenario.yaml", Path("scenario.yaml"), None, 5, [SMALL]]


@pytest.mark.parametrize("bad", NOT_SCENARIOS, ids=lambda b: type(b).__name__)
def test_world_and_run_need_a_scenario(bad, tmp_path: Path):
    """A dict, a path, None...: refused naming `scenario`; no run directory."""
    with pytest.raises(
        TypeError, match=r"`scenario`.*Scenario.*actual type: " + type(bad).__name__
    ):
        World(bad, 0, 0)
    with pytest.raises(
        TypeError, match=r"`scenario`.*Scenario.*actual type: " + type(bad).__name__
    ):
        run_scenario(bad, out_dir=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("index", [2, 3, -1, -2, 10**6])
def test_agent_index_out_of_range(sc, index):
    """No wrap-around of negative indices: the range is named."""
    with pytest.raises(ValueError, match=rf"`agent_index`.*\[0, 2\).*actual value: {index}"):
        World(sc, index, 0)


@pytest.mark.parametrize("index", [0.0, 1.5, "0", None, True, [0]])
def test_agent_index_of_the_wrong_type(sc, index):
    """Floats, strings, None and bools are not agent indices."""
    with pytest.raises(TypeError, match=r"`agent_index`.*int.*actual type"):
        World(sc, index, 0)


def test_numpy_agent_index_and_step_are_ints(sc):
    """Integers of numpy count as ints."""
    w = World(sc, np.int64(1), 0)
    assert w.agent_label == "popularity"
    w.step(np.int64(0))
    w.step(np.int32(1))
    assert w.t == 2


@pytest.mark.parametrize("done, t", [(0, -1), (0, 1), (0, 5), (1, 0), (2, 1), (2, 3), (3, 0)])
def test_steps_run_in_order(sc, done: int, t: int):
    """A step other than the next is refused, and the world is as it was.

    The next step's row equals that of a world that was never asked.
    """
    w, ref = World(sc, 1, 3), World(sc, 1, 3)
    for s in range(done):
        w.step(s)
        ref.step(s)
    with pytest.raises(ValueError, match=rf"next step, {done}, actual value: {t}"):
        w.step(t)
    with pytest.raises(ValueError, match=rf"next step, {done}, actual value: {t}"):
        w.begin(t)  # the gym envs' way in
    assert w.t == done
    np.testing.assert_equal(w.step(done), ref.step(done))


@pytest.mark.parametrize("t", [0.0, 1.0, "0", None, True, np.float64(0)])
def test_step_of_the_wrong_type(sc, t):
    """A float, string, None or bool step is refused; the world is untouched."""
    w = World(sc, 0, 0)
    with pytest.raises(TypeError, match=r"step `t`.*int.*actual type"):
        w.step(t)
    assert w.t == 0


def test_a_restored_world_continues_from_its_checkpoint_step(sc):
    """After restore the next step is the checkpoint's, and it runs as the original."""
    w = World(sc, 1, 0)
    for t in range(2):
        w.step(t)
    state = w.checkpoint()
    again = World(sc, 1, 0)
    again.restore(state)
    with pytest.raises(ValueError, match="next step, 2, actual value: 0"):
        again.step(0)
    np.testing.assert_equal(again.step(2), w.step(2))


def test_stepping_past_the_scenario_is_allowed(sc):
    """``World.run(steps)`` may run more steps than the scenario's, in order."""
    w = World(sc, 0, 0)
    rows = list(w.run(sc.steps + 2))
    assert [t for t, _ in rows] == list(range(sc.steps + 2))


BAD_RUN_IDS = ["../escape", "..", ".", "/tmp/abs", "a/b", "a\x00b", "-x", "x" * 300, "a b", "~me"]


@pytest.mark.parametrize("run_id", BAD_RUN_IDS + [5, 1.5, Path("x"), b"x"], ids=repr)
def test_run_id_names_one_folder(sc, tmp_path: Path, run_id):
    """The CLI's run-id rule holds for the API: nothing written outside, or at all."""
    out = tmp_path / "runs"
    with pytest.raises(ValueError, match=r"`run_id`.*(not a run id|actual type)"):
        run_scenario(sc, out_dir=out, run_id=run_id)
    assert not out.exists() or not any(out.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["runs"])


@pytest.mark.parametrize("run_id", ["base", "fork-at-100", "exp_1.v2", "a@b+c=d", "", None])
def test_good_run_ids(sc, tmp_path: Path, run_id):
    """Plain names are the folder's name; empty or None generates one."""
    store = run_scenario(sc, out_dir=tmp_path, run_id=run_id)
    assert store.path.parent == tmp_path
    if run_id:
        assert store.path.name == run_id
    assert store.status == "completed"


@pytest.mark.parametrize("progress", [5, "bar", [print]])
def test_progress_must_be_callable(sc, tmp_path: Path, progress):
    """A progress that cannot be called is refused before the run starts."""
    with pytest.raises(TypeError, match=r"`progress`.*callable.*actual type"):
        run_scenario(sc, out_dir=tmp_path, progress=progress)
    assert not any(tmp_path.iterdir())
    with pytest.raises(TypeError, match=r"`progress`.*callable.*actual type"):
        resume_run(tmp_path / "anything", progress=progress)


@pytest.mark.parametrize("fork", ["run@2", ["run", 2], ("run", 2, 3), ("run",)], ids=repr)
def test_fork_is_a_pair(sc, tmp_path: Path, fork):
    """``fork`` is ``(run directory, step)``, not 'RUN@STEP' text or another shape."""
    with pytest.raises(TypeError, match=r"`fork`.*\(run directory, step\) pair"):
        run_scenario(sc, out_dir=tmp_path / "new", fork=fork)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("step", [-1, -100, 1.5, "2", None, True])
def test_fork_step_is_a_step_of_the_scenario(sc, tmp_path: Path, step):
    """Negative, fractional or non-number fork steps are refused."""
    from simlab.errors import RunStoreError

    source = run_scenario(
        sc.model_copy(update={"output": sc.output.model_copy(update={"checkpoint_every": 1})}),
        out_dir=tmp_path,
        run_id="src",
    )
    with pytest.raises(RunStoreError, match=rf"--from: expects a step in 0..{sc.steps}, got"):
        run_scenario(sc, out_dir=tmp_path / "new", fork=(source.path, step))
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


@pytest.mark.parametrize("path", [5, None, {"name": "x"}, ["a.yaml"], 2.5])
def test_load_scenario_needs_a_path(path):
    """A mapping or a number is not a path (a mapping goes to parse_scenario)."""
    with pytest.raises(
        TypeError, match=r"`path`.*str or path.*actual type: " + type(path).__name__
    ):
        load_scenario(path)


BAD_OVERRIDES = [[5], [None], [("steps", 4, 5)], [("steps",)], [(3, 4)], [["steps", 4]]]


@pytest.mark.parametrize("overrides", BAD_OVERRIDES, ids=repr)
def test_each_override_is_a_string_or_a_pair(overrides):
    """Numbers, None, triples and lists are not overrides."""
    with pytest.raises(TypeError, match=r"each override.*string or a \(path, value\) pair"):
        parse_scenario(dict(SMALL), overrides)


@pytest.mark.parametrize("overrides", ["steps=4", "seeds=3"])
def test_a_single_string_is_not_a_list_of_overrides(overrides):
    """A bare string is refused, not read a character at a time."""
    with pytest.raises(TypeError, match=r"`overrides`.*list.*single string"):
        parse_scenario(dict(SMALL), overrides)


def test_good_overrides():
    """Strings and pairs mix."""
    sc = parse_scenario(dict(SMALL), ["steps=7", ("seeds", [4, 5]), ("users.num_users", 30)])
    assert (sc.steps, sc.seeds, sc.users.params.num_users) == (7, [4, 5], 30)
