"""Unit tests of the envs' ``info`` helpers and text view on hand-made sessions and steps.

The sessions object is a stand-in with only the attributes the helpers read (sizes, metric
columns, who visits next, users' observable features, the feature table), so every case,
undefined metrics, odd feature sizes, long slates, is built directly and checked exactly.
"""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from simlab.environments.gym.info import (
    render_sessions,
    session_infos,
    single_info,
    stack_vector_info,
)
from simlab.environments.gym.sessions import StepResult

COLUMNS = ["engagement/ctr", "exposure/gini", "topics/entropy", "source/share"]
SLOT = re.compile(r"^ {4}\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\*?)\s*(\S*)$")


def _sessions(n: int = 3, f: int = 6, d: int = 6, items: int = 12, served=None):
    """A stand-in for ``WorldSessions``: ``n`` sessions, ``(n, f)`` users, ``(items, d)`` table."""
    users = np.sin(np.arange(n * f, dtype=np.float32) + 1.0).reshape(n, f)
    table = np.cos(np.arange(items * d, dtype=np.float32) * 0.7).reshape(items, d)
    return SimpleNamespace(
        num_sessions=n,
        slate_size=4,
        metric_columns=list(COLUMNS),
        served=np.array(served if served is not None else [True] * n),
        t=7,
        user_ids=np.arange(n, dtype=np.int64) * 10 + 5,
        obs={"user": users},
        _items=SimpleNamespace(table=table),
    )


def _result(served, clicked_position, k: int = 4, items: int = 12, metrics=None) -> StepResult:
    """A step of ``len(served)`` sessions; session ``i`` saw items ``(3 i + s) % items``."""
    n = len(served)
    slate = np.tile(np.arange(k, dtype=np.int64)[::-1], (n, 1))
    slate_items = (3 * np.arange(n)[:, None] + np.arange(k)[None, :]) % items
    pos = np.asarray(clicked_position, np.int64)
    engagement = np.zeros((n, k), np.float32)
    for i, p in enumerate(pos):
        if p >= 0:
            engagement[i, p] = 0.25 + 0.125 * i
    return StepResult(
        served=np.asarray(served, bool),
        slate=slate,
        slate_items=slate_items.astype(np.int64),
        clicked_position=pos,
        engagement=engagement,
        metrics=metrics or {},
    )


# ------------------------------------------------------------------ session_infos
@pytest.mark.parametrize(
    ("row", "values", "defined"),
    [
        (
            {"engagement/ctr": 0.5, "exposure/gini": math.nan, "topics/entropy": math.inf},
            [0.5, 0.0, math.inf, 0.0],
            [True, False, True, False],
        ),
        (
            {c: -1.5 for c in COLUMNS} | {"other/x": 2.0},
            [-1.5] * 4,
            [True] * 4,
        ),
        ({c: math.nan for c in COLUMNS}, [0.0] * 4, [False] * 4),
        ({"source/share": -math.inf, "engagement/ctr": 0}, [0.0, 0.0, 0.0, -math.inf], None),
    ],
)
def test_metrics_are_zero_and_undefined_where_nan_or_missing(row, values, defined):
    """NaN or missing metrics read 0.0 with ``defined=False``; any other value is kept."""
    info = session_infos(_sessions(), _result([True] * 3, [0, -1, 2], metrics=row))
    assert list(info["metrics"]) == COLUMNS and list(info["metrics_defined"]) == COLUMNS
    assert list(info["metrics"].values()) == values
    want = defined or [True, False, False, True]
    assert list(info["metrics_defined"].values()) == want
    assert all(type(v) is float for v in info["metrics"].values())


def test_reset_info_serves_nothing():
    """At reset: nothing served, slates and the click -1, zero engagement, no metric defined."""
    sessions = _sessions(served=[True, False, True])
    info = session_infos(sessions, None)
    expect = {
        "served": np.zeros(3, bool),
        "visiting": np.array([True, False, True]),
        "slate": np.full((3, 4), -1),
        "slate_items": np.full((3, 4), -1),
        "clicked": np.zeros(3, bool),
        "clicked_position": np.full(3, -1),
        "engagement": np.zeros((3, 4)),
    }
    for key, want in expect.items():
        assert info[key].shape == want.shape and info[key].dtype.kind == want.dtype.kind, key
        np.testing.assert_array_equal(info[key], want)
    assert info["engagement"].dtype == np.float32 and info["slate"].dtype == np.int64
    assert info["metrics"] == dict.fromkeys(COLUMNS, 0.0)
    assert info["metrics_defined"] == dict.fromkeys(COLUMNS, False)
    sessions.served[:] = False  # the info keeps its own copy
    assert info["visiting"].tolist() == [True, False, True]


def test_step_info_reports_the_result():
    """After a step the info holds the result's slates and choices and who visits next."""
    result = _result([True, False, True], [1, -1, -1])
    info = session_infos(_sessions(served=[False, True, True]), result)
    assert info["served"].tolist() == [True, False, True]
    assert info["visiting"].tolist() == [False, True, True]
    assert info["clicked"].tolist() == [True, False, False]
    for key in ("slate", "slate_items", "clicked_position", "engagement"):
        np.testing.assert_array_equal(info[key], getattr(result, key))
    result.served[:] = False
    assert info["served"].tolist() == [True, False, True]


# ------------------------------------------------------------------ single_info
def test_single_info_picks_one_session_with_python_scalars():
    """Session ``i``'s info: Python scalars for ``(N,)`` keys, row copies, dict copies."""
    batch = session_infos(
        _sessions(served=[True, False, True]),
        _result([True, True, False], [2, -1, -1], metrics={"engagement/ctr": 0.5}),
    )
    for i in range(3):
        info = single_info(batch, i)
        assert info.keys() == batch.keys()
        for key in ("served", "visiting", "clicked", "clicked_position"):
            assert info[key] == batch[key][i] and type(info[key]) in (bool, int), key
        for key in ("slate", "slate_items", "engagement"):
            np.testing.assert_array_equal(info[key], batch[key][i])
            assert isinstance(info[key], np.ndarray) and info[key].shape == (4,)
            info[key][:] = 9  # a copy: the batch does not change
            assert not (batch[key][i] == 9).all()
        assert info["metrics"] == batch["metrics"] and info["metrics"] is not batch["metrics"]
        info["metrics_defined"]["engagement/ctr"] = False
        assert batch["metrics_defined"]["engagement/ctr"] is True
    assert single_info(batch)["clicked_position"] == 2  # session 0 by default
    assert single_info(batch, 1)["served"] is True and single_info(batch, 2)["served"] is False


# ------------------------------------------------------------------ stack_vector_info
@pytest.mark.parametrize(
    "rows", [None, [False, False, False, False], [True, False, False, True], [True] * 4]
)
def test_vector_info_masks_every_key_and_blanks_restarting_sessions(rows):
    """Every key gets an all-True ``_key`` mask; restarting rows read 0.0 and undefined."""
    metrics = {"engagement/ctr": 0.5, "exposure/gini": 0.25, "topics/entropy": math.nan}
    batch = session_infos(
        _sessions(n=4, served=[True] * 4), _result([True] * 4, [0, 1, -1, 3], metrics=metrics)
    )
    out = stack_vector_info(batch, None if rows is None else np.array(rows))
    blank = np.zeros(4, bool) if rows is None else np.array(rows)
    assert set(out) == set(batch) | {"_" + k for k in batch}
    for key, v in batch.items():
        assert out["_" + key].dtype == bool and out["_" + key].tolist() == [True] * 4
        if not isinstance(v, dict):
            assert out[key] is v
            continue
        assert set(out[key]) == set(v) | {"_" + c for c in v}
        for col, x in v.items():
            arr = out[key][col]
            assert arr.shape == (4,) and out[key]["_" + col].tolist() == [True] * 4
            want = [(0.0 if key == "metrics" else False) if b else x for b in blank]
            assert arr.tolist() == want, (key, col)
            assert arr.dtype == (np.float64 if key == "metrics" else bool)


# ------------------------------------------------------------------ render_sessions
def _slot_rows(text: str) -> dict[int, list[tuple]]:
    """``{session: [(slot, cand, item, match, marked, engagement), ...]}`` parsed from text."""
    out: dict[int, list[tuple]] = {}
    session = None
    for line in text.splitlines()[1:]:
        head = re.match(r"^  session (\d+) ", line)
        if head:
            session = int(head.group(1))
            out[session] = []
        elif m := SLOT.match(line):
            s, c, item, match, star, eng = m.groups()
            out[session].append((int(s), int(c), int(item), match, star == "*", eng))
    return out


def test_render_shows_each_slot_with_its_match_and_the_click():
    """Header lines per session, then per slot: candidate, item, match, the click, engagement."""
    sessions = _sessions(n=4, served=[True, False, True, False])
    result = _result([True, True, True, False], [0, -1, 3, -1])
    text = render_sessions(sessions, result, [0, 1, 2, 3], "simlab/X")
    lines = text.splitlines()
    assert lines[0] == "simlab/X · step 7"
    heads = [x for x in lines if x.startswith("  session")]
    assert heads == [
        "  session 0 (user 5): clicked slot 0 · visits next step",
        "  session 1 (user 15): no click · away next step",
        "  session 2 (user 25): clicked slot 3 · visits next step",
        "  session 3 (user 35): no slate served yet · away next step",
    ]
    slots = _slot_rows(text)
    assert sorted(slots) == [0, 1, 2, 3] and slots[3] == []
    users, table = sessions.obs["user"], sessions._items.table
    for i in range(3):
        pos = result.clicked_position[i]
        assert [r[0] for r in slots[i]] == [0, 1, 2, 3]
        for s, cand, item, match, marked, eng in slots[i]:
            assert (cand, item) == (result.slate[i, s], result.slate_items[i, s])
            want = sum(float(a) * float(b) for a, b in zip(users[i], table[item], strict=True))
            assert float(match) == pytest.approx(want, abs=0.006)
            assert marked == (s == pos)
            assert eng == (f"{0.25 + 0.125 * i:.3f}" if s == pos else "")


def test_render_before_any_step_and_for_chosen_rows():
    """With no result every chosen session says nothing was served; other rows are left out."""
    sessions = _sessions(n=3, served=[False, True, True])
    text = render_sessions(sessions, None, [2, 0], "T")
    assert text.splitlines() == [
        "T · step 7",
        "  session 2 (user 25): no slate served yet · visits next step",
        "  session 0 (user 5): no slate served yet · away next step",
    ]


@pytest.mark.parametrize(("f", "d"), [(3, 6), (9, 6), (6, 3), (300, 300), (299, 300)])
def test_render_match_is_nan_unless_user_and_item_features_agree(f, d):
    """The match is ``<user, item>`` when both have one size, else ``nan`` (nothing to compare)."""
    sessions = _sessions(n=2, f=f, d=d)
    result = _result([True, True], [1, -1])
    slots = _slot_rows(render_sessions(sessions, result, [0, 1], "T"))
    for i in (0, 1):
        user = sessions.obs["user"][i]
        for _, _, item, match, _, _ in slots[i]:
            if f != d:
                assert match == "nan"
            else:
                want = float(np.dot(user.astype(np.float64), sessions._items.table[item]))
                assert float(match) == pytest.approx(want, abs=0.006)


def test_render_marks_a_click_far_down_a_long_slate():
    """A click in slot 280 of a 300-item slate is marked there and nowhere else."""
    k = 300
    sessions = _sessions(n=1, items=k)
    result = _result([True], [280], k=k, items=k)
    slots = _slot_rows(render_sessions(sessions, result, [0], "T"))[0]
    assert len(slots) == k
    assert [s for s, *_, marked, _ in slots if marked] == [280]
    assert [(s, eng) for s, *_, eng in slots if eng] == [(280, "0.250")]
