"""Data-only state trees (``simlab.state``): what a checkpoint holds, and what it refuses.

Classes: every kind of leaf and container round-trips through a file with its type, dtype
and value (NaN and infinities, 0-d and empty arrays, views, numpy scalars, torch tensors
including bfloat16, dict keys of every plain type); anything but data is refused when
written, naming its path; a crafted or damaged file (unknown or malformed nodes, array
references the file lacks, pickled arrays, non-standard JSON, not a zip, nesting past the
recursion limit) is refused when read, as a ``StateFormatError``; the default component
state keeps data, skips what the scenario rebuilds, nests simlab helpers and refuses the
rest; ``writable`` copies only read-only arrays.
"""

from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np
import pytest

from simlab import state
from simlab.rng import Stream
from simlab.state import (
    StateFormatError,
    component_state,
    load_component_state,
    read_tree,
    writable,
    write_tree,
)

ARRAYS = {
    "bool": np.array([True, False]),
    "int8": np.array([-128, 127], np.int8),
    "uint64": np.array([0, 2**64 - 1], np.uint64),
    "float32": np.array([1.5, np.nan, -np.inf], np.float32),
    "float64 2-D": np.arange(6.0).reshape(2, 3),
    "complex": np.array([1 + 2j, -0.5j]),
    "str": np.array(["a", "héllo"]),
    "bytes": np.array([b"x", b"yz"]),
    "timedelta": np.array([1, 2], "timedelta64[s]"),
    "datetime": np.array(["2026-12-08"], "datetime64[D]"),
    "0-d": np.array(3.25),
    "empty": np.zeros((0, 4), np.int64),
    "reversed view": np.arange(10)[::-2],
    "fortran": np.asfortranarray(np.arange(6).reshape(2, 3)),
}


def _same(a, b) -> bool:
    """Equal in type, dtype, shape and value (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray | np.generic):
        return (
            a.dtype == b.dtype
            and np.shape(a) == np.shape(b)
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        )
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and str(a) == str(b))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return [(type(k), k) for k in a] == [(type(k), k) for k in b] and all(
            _same(a[k], b[k]) for k in a
        )
    return a == b


def _round_trip(tree, tmp_path):
    path = tmp_path / "s.zip"
    write_tree(path, tree, {"step": 3})
    meta, back = read_tree(path)
    assert meta == {"step": 3}
    return back


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_every_array_kind_round_trips(name, tmp_path):
    """Dtype, shape (0-d included) and values back, and an element as a numpy scalar.

    A view comes back as an array of its values.
    """
    a = ARRAYS[name]
    back = _round_trip({"a": a, "scalar": a.reshape(-1)[0] if a.size else None}, tmp_path)
    assert _same(back["a"], a.copy())
    if a.size:
        assert _same(back["scalar"], a.reshape(-1)[0])


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -(2**70), 2**63, 1.5, -0.0, math.inf, -math.inf, math.nan, "",
     "ünï\ncode", [], (), {}, [1, (2, [3, (4,)])], ((), [()]),
     {"s": 1, 2: "int key", 2.5: "float key", True: "bool key", None: "none key"},
     {"nested": {"deeper": {"deepest": [np.arange(3), (np.float32(2.5),)]}}}],
)  # fmt: skip
def test_plain_values_and_containers_round_trip(value, tmp_path):
    """Types kept (tuples stay tuples, key types stay theirs), values kept, -0.0 and NaN."""
    assert _same(_round_trip({"v": value}, tmp_path)["v"], value)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int32", "bool",
                                   "uint8", "bfloat16", "complex64"])  # fmt: skip
def test_torch_tensors_come_back_with_their_dtype(dtype, tmp_path):
    """Values and dtype (bfloat16 by way of float32, which holds it exactly)."""
    torch = pytest.importorskip("torch")
    t = (torch.arange(6) * 3 - 5).to(getattr(torch, dtype)).reshape(2, 3)
    back = _round_trip([t], tmp_path)[0]
    assert isinstance(back, torch.Tensor) and back.dtype == t.dtype
    assert torch.equal(back, t)


class _Thing:
    pass


@pytest.mark.parametrize(
    ("tree", "where"),
    [
        ({"a": np.array([object()], dtype=object)}, "state.a: arrays of dtype object"),
        ({"a": np.zeros(2, [("x", "i4")])}, "state.a: arrays of dtype"),
        ({"a": [1, {2, 3}]}, "state.a[1]: a builtins.set cannot be saved"),
        ({"a": (1, _Thing())}, "state.a[1]: a test_state_tree._Thing cannot be saved"),
        ({"a": {(1, 2): 3}}, "state.a: a key of type tuple cannot be saved"),
        ({"a": {"b": b"raw"}}, "state.a.b: a builtins.bytes cannot be saved"),
        ({"a": lambda: 1}, "state.a: a builtins.function cannot be saved"),
    ],
)
def test_what_is_not_data_is_refused_when_written_naming_its_path(tree, where, tmp_path):
    """Refused before anything is written."""
    path = tmp_path / "s.zip"
    with pytest.raises(StateFormatError) as e:
        write_tree(path, tree, {})
    assert str(e.value).startswith(where)
    assert not path.exists()


def _file(tmp_path, tree_json, arrays=(), meta="{}", raw_members=None):
    """A state file with the given members (what a crafted or damaged file holds)."""
    path = tmp_path / "c.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("meta.json", meta)
        z.writestr("tree.json", tree_json if isinstance(tree_json, str) else json.dumps(tree_json))
        for i, a in enumerate(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a, allow_pickle=a.dtype.kind == "O")
            z.writestr(f"arrays/{i}.npy", buf.getvalue())
        for name, data in (raw_members or {}).items():
            z.writestr(name, data)
    return path


CRAFTED = {
    "unknown tag": ({"$class": "os.system"}, "unknown state node ['$class']"),
    "three keys": ({"$array": 0, "x": 1, "y": 2}, "not a state node"),
    "empty dict node": ({}, "not a state node"),
    "array index past the file": ({"$array": 3}, "refers to array 3, which the file lacks"),
    "array index one past the last": ({"$array": 1}, "refers to array 1, which the file lacks"),
    "negative array index": ({"$array": -1}, "refers to array -1"),
    "bool array index": ({"$array": True}, "refers to array True"),
    "string array index": ({"$scalar": "0"}, "refers to array '0'"),
    "bad float": ({"$float": "1e999"}, "unknown state node ['$float']"),
    "dict entry not a pair": ({"$dict": [["k"]]}, "a dict entry is not a [key, value] pair"),
    "dict entry a mapping": ({"$dict": [{"k": 1}]}, "a dict entry is not a [key, value] pair"),
    "dict key a list": ({"$dict": [[[1], 2]]}, "a dict key is not a plain value"),
    "tuple of a mapping": ({"$tuple": {"a": 1}}, "unknown state node ['$tuple']"),
    "unknown tensor dtype": ({"$tensor": 0, "dtype": "Tensor"}, "unknown tensor dtype 'Tensor'"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_nodes_are_refused(name, tmp_path):
    """Strict decoding: each malformed node is named with its path."""
    node, message = CRAFTED[name]
    if name == "unknown tensor dtype":
        pytest.importorskip("torch")
    path = _file(tmp_path, {"$dict": [["x", node]]}, arrays=[np.arange(2)])
    with pytest.raises(StateFormatError) as e:
        read_tree(path)
    assert str(e.value).startswith("state.x: ") and message in str(e.value)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("pickled array", "not a readable state file (ValueError"),
        ("NaN constant", "tree.json: holds the non-standard JSON constant NaN"),
        ("meta a list", "meta.json is not a mapping"),
        ("meta NaN", "meta.json: holds the non-standard JSON constant Infinity"),
        ("no tree", "not a readable state file (KeyError"),
        ("missing array member", "not a readable state file (KeyError"),
        ("not a zip", "not a readable state file (BadZipFile"),
        ("truncated array", "not a readable state file"),
        ("nested too deep", "not a readable state file (RecursionError"),
        ("damaged npy header", "not a readable state file ("),
        ("npy header not a dict", "not a readable state file ("),
    ],
)
def test_damaged_or_crafted_files_are_refused(kind, message, tmp_path):
    """A StateFormatError naming the file; no pickle is ever loaded."""
    good = io.BytesIO()
    np.lib.format.write_array(good, np.arange(50), allow_pickle=False)
    path = {
        "pickled array": lambda: _file(
            tmp_path, {"$array": 0}, arrays=[np.array([object()], dtype=object)]
        ),
        "NaN constant": lambda: _file(tmp_path, '{"$float": NaN}'),
        "meta a list": lambda: _file(tmp_path, "1", meta="[1]"),
        "meta NaN": lambda: _file(tmp_path, "1", meta='{"a": Infinity}'),
        "no tree": lambda: _no_tree(tmp_path),
        "missing array member": lambda: _file(
            tmp_path, {"$array": 1}, raw_members={"arrays/1.npy": good.getvalue()}
        ),
        "not a zip": lambda: _bytes(tmp_path, b"PK\x03\x04 not really a zip"),
        "truncated array": lambda: _file(
            tmp_path, {"$array": 0}, raw_members={"arrays/0.npy": good.getvalue()[:90]}
        ),
        "nested too deep": lambda: _file(tmp_path, "[" * 100_000 + "]" * 100_000),
        "damaged npy header": lambda: _file(
            tmp_path, {"$array": 0}, raw_members={"arrays/0.npy": _npy_header(b"{'descr': ")}
        ),
        "npy header not a dict": lambda: _file(
            tmp_path, {"$array": 0}, raw_members={"arrays/0.npy": _npy_header(b"[1, 2]")}
        ),
    }[kind]()
    with pytest.raises(StateFormatError) as e:
        read_tree(path)
    assert message in str(e.value)


def _npy_header(text: bytes) -> bytes:
    """A ``.npy`` member whose header is ``text`` (and no data)."""
    return b"\x93NUMPY\x01\x00" + (len(text) + 1).to_bytes(2, "little") + text + b"\n"


def _no_tree(tmp_path):
    path = tmp_path / "n.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("meta.json", "{}")
    return path


def _bytes(tmp_path, data: bytes):
    path = tmp_path / "b.zip"
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------- component state
class _Helper:  # a simlab-like helper object: its module is faked below
    def __init__(self):
        self.counts = np.arange(3)


_Helper.__module__ = "simlab.fake_helpers"


class _Component:
    def __init__(self):
        self.table = np.ones((2, 2))
        self.step = 4
        self.name = "c"
        self.stream = Stream(0, "x")  # rebuilt from the scenario: skipped
        self.hook = self.method  # a bound method: skipped
        self.kind = int  # a class: skipped
        self.helper = _Helper()

    def method(self):
        return 1


def test_the_default_state_keeps_data_skips_rebuilt_and_nests_helpers():
    """Data attributes kept; streams, methods and classes skipped; helpers nested."""
    s = component_state(_Component())
    assert sorted(s) == ["helper", "name", "step", "table"]
    assert s["helper"] == {"__attrs__": {"counts": s["helper"]["__attrs__"]["counts"]}}
    fresh = _Component()
    fresh.table, fresh.step, fresh.helper.counts = np.zeros((2, 2)), 0, np.zeros(3)
    load_component_state(fresh, s)
    assert (
        fresh.step == 4
        and (fresh.table == 1).all()
        and fresh.helper.counts.tolist()
        == [
            0,
            1,
            2,
        ]
    )


def test_an_attribute_that_is_neither_data_nor_rebuilt_is_refused_naming_it():
    """A foreign object: the path, its type and the fix (state_dict) are named."""
    c = _Component()
    c.other = _Thing()
    with pytest.raises(StateFormatError) as e:
        component_state(c, "agent")
    assert str(e.value).startswith("agent.other: holds a _Thing, which a checkpoint cannot hold")
    assert "give _Component state_dict()/load_state_dict()" in str(e.value)


@pytest.mark.parametrize(
    ("loaded", "message"),
    [
        ([1, 2], "expects a mapping of attributes, got list"),
        ({"__class__": 1}, "attribute name '__class__' is not allowed"),
        ({3: 1}, "attribute name 3 is not allowed"),
        ({"method": 1}, "attribute 'method' is a method, not state"),
    ],
)
def test_loading_refuses_what_no_default_state_holds(loaded, message):
    """Non-mappings, dunder or non-string names, and methods are never set."""
    c = _Component()
    with pytest.raises(ValueError, match=message):
        load_component_state(c, loaded)
    assert c.method() == 1


def test_components_with_their_own_state_dict_are_asked_for_it():
    """``state_dict()`` / ``load_state_dict()`` are used as they are."""

    class Own:
        def __init__(self):
            self.got = None

        def state_dict(self):
            return {"x": 1}

        def load_state_dict(self, s):
            self.got = s

    own = Own()
    assert component_state(own) == {"x": 1}
    load_component_state(own, {"y": 2})
    assert own.got == {"y": 2}


def test_writable_copies_only_read_only_arrays():
    """Read-only arrays become writable copies; writable ones and containers' types stay."""
    ro = np.arange(3)
    ro.setflags(write=False)
    rw = np.arange(3)
    out = writable({"a": ro, "b": [rw, (ro, 5)], "c": "x"})
    assert out["a"].flags.writeable and out["a"] is not ro and out["a"].tolist() == [0, 1, 2]
    assert out["b"][0] is rw and isinstance(out["b"][1], tuple)
    assert out["b"][1][0].flags.writeable and out["b"][1][1] == 5 and out["c"] == "x"


def test_allowed_kinds_are_exactly_numbers_bools_strings_and_times():
    """The dtype kinds a file may hold: no objects, no void records."""
    assert state._ALLOWED_KINDS == frozenset("biufcUSmM")


def test_long_nodes_and_errors_are_cut_to_a_readable_length(tmp_path):
    """A malformed node is quoted to 80 characters, a reader's error to 200."""
    node = {"k" * 120: 1, "b": 2, "c": 3}
    with pytest.raises(StateFormatError) as e:
        read_tree(_file(tmp_path, {"$dict": [["x", node]]}))
    assert str(e.value) == f"state.x: not a state node: {str(node)[:80]}"
    header = _npy_header(b"{" + b" " * 10_050 + b"}")  # numpy's long "too large" error
    path = _file(tmp_path, {"$array": 0}, raw_members={"arrays/0.npy": header})
    with pytest.raises(StateFormatError) as e:
        read_tree(path)
    text = str(e.value)
    kind, inner = text.split("not a readable state file (", 1)[1][:-1].split(": ", 1)
    assert kind == "ValueError"
    assert len(inner) == 200 and text.endswith(")")


def test_a_plain_value_replaces_an_object_attribute():
    """A value is set as it is, not merged into the object the attribute holds.

    Both a loaded dict that is no nested helper state, and any value over an attribute that
    holds a non-data object.
    """
    c = _Component()
    load_component_state(c, {"helper": {"a": 1}, "stream": 5})
    assert c.helper == {"a": 1} and c.stream == 5
