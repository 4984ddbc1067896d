"""Data-only state trees: what a checkpoint may hold, and a file format that cannot run code.

A *state tree* is nested ``dict``/``list``/``tuple`` containers whose leaves are plain values
(``None``, ``bool``, ``int``, ``float``, ``str``), numpy arrays and scalars of a numeric,
boolean or string dtype, and torch tensors. That is what a component's ``state_dict()``
returns. :func:`write_tree` stores a tree as one zip file: ``tree.json`` (the structure,
every container and scalar as tagged JSON) and ``arrays/<i>.npy`` (every array and tensor
in numpy's ``.npy`` format). :func:`read_tree` reads it back with ``json`` and
``numpy.lib.format.read_array(allow_pickle=False)`` only: nothing in the file can name a
class, a function or a module, so loading a crafted file cannot execute code; anything
outside the allowed leaves is refused with :class:`StateFormatError`.

Components that define no ``state_dict()`` get :func:`component_state`: every instance
attribute that is data (and, recursively, the attributes of simlab-defined helper objects
such as ``ItemCounts``); what is rebuilt from the scenario (``ctx``, ``params``, keyed random
streams, bound callables) is skipped, and anything else is an error naming the attribute.
"""

from __future__ import annotations

import inspect
import io
import json
import math
import tokenize
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from simlab.errors import RunStoreError

__all__ = [
    "StateFormatError",
    "encode",
    "decode",
    "write_tree",
    "read_tree",
    "component_state",
    "load_component_state",
    "writable",
]

_ALLOWED_KINDS = frozenset("biufcUSmM")
"""numpy dtype kinds a checkpoint may hold (no objects, no raw void records)."""

_OBJECT = "__attrs__"
"""Key marking the attributes of a nested helper object in a generic component state."""


class StateFormatError(RunStoreError):
    """Raised when a state tree holds something other than data, or a file is not one."""


# ---------------------------------------------------------------------- encoding
def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def encode(value: Any, arrays: list[np.ndarray], path: str = "state") -> Any:
    """The JSON form of the tree ``value``; its arrays are appended to ``arrays``.

    Raises:
        StateFormatError: a leaf is not data; the message names its path in the tree.
    """
    if isinstance(value, np.generic):  # before the plain types: np.float64 is a float
        node = encode(np.asarray(value), arrays, path)
        return {"$scalar": node["$array"]}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ALLOWED_KINDS:
            raise StateFormatError(f"{path}: arrays of dtype {value.dtype} cannot be saved")
        # (np.ascontiguousarray would make a 0-d array, and so a numpy scalar, 1-D)
        arrays.append(value if value.flags.c_contiguous else np.ascontiguousarray(value))
        return {"$array": len(arrays) - 1}
    if _is_torch(value):
        return _encode_tensor(value, arrays, path)
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, arrays, f"{path}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, arrays, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not (k is None or isinstance(k, (str, int, float, bool))):
                raise StateFormatError(f"{path}: a key of type {type(k).__name__} cannot be saved")
            items.append([encode(k, arrays, path), encode(v, arrays, f"{path}.{k}")])
        return {"$dict": items}
    raise StateFormatError(
        f"{path}: a {type(value).__module__}.{type(value).__qualname__} cannot be saved in a "
        "checkpoint (allowed: dicts, lists and tuples of numpy arrays, torch tensors, int, "
        "float, str, bool and None)"
    )


def _encode_tensor(value: Any, arrays: list[np.ndarray], path: str) -> dict[str, Any]:
    import torch

    t = value.detach().cpu()
    dtype = str(t.dtype).removeprefix("torch.")
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: float32 holds it exactly
        t = t.to(torch.float32)
    node = encode(t.numpy(), arrays, path)
    return {"$tensor": node["$array"], "dtype": dtype}


def decode(node: Any, arrays: list[np.ndarray], path: str = "state") -> Any:
    """The tree that :func:`encode` turned into ``node`` (strict: unknown forms are refused)."""
    if node is None or isinstance(node, (bool, str, int, float)):
        return node
    if isinstance(node, list):
        return [decode(v, arrays, f"{path}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise StateFormatError(f"{path}: not a state node: {str(node)[:80]}")
    if "$float" in node and node["$float"] in ("nan", "inf", "-inf"):
        return float(node["$float"])
    if "$array" in node:
        return _array(node["$array"], arrays, path)
    if "$scalar" in node:
        return _array(node["$scalar"], arrays, path)[()]
    if "$tensor" in node:
        return _decode_tensor(node, arrays, path)
    if "$tuple" in node and isinstance(node["$tuple"], list):
        return tuple(decode(v, arrays, f"{path}[{i}]") for i, v in enumerate(node["$tuple"]))
    if "$dict" in node and isinstance(node["$dict"], list):
        out = {}
        for pair in node["$dict"]:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise StateFormatError(f"{path}: a dict entry is not a [key, value] pair")
            key = decode(pair[0], arrays, path)
            if not (key is None or isinstance(key, (str, int, float, bool))):
                raise StateFormatError(f"{path}: a dict key is not a plain value")
            out[key] = decode(pair[1], arrays, f"{path}.{key}")
        return out
    raise StateFormatError(f"{path}: unknown state node {sorted(node)}")


def _array(index: Any, arrays: list[np.ndarray], path: str) -> np.ndarray:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(arrays):
        raise StateFormatError(f"{path}: refers to array {index!r}, which the file lacks")
    return arrays[index]


def _decode_tensor(node: dict[str, Any], arrays: list[np.ndarray], path: str) -> Any:
    import torch

    dtype = getattr(torch, str(node.get("dtype")), None)
    if not isinstance(dtype, torch.dtype):
        raise StateFormatError(f"{path}: unknown tensor dtype {node.get('dtype')!r}")
    array = _array(node["$tensor"], arrays, path)
    return torch.from_numpy(np.array(array)).to(dtype)


# ---------------------------------------------------------------------- files
def write_tree(path: Path, tree: Any, meta: dict[str, Any]) -> None:
    """Write ``tree`` (and the JSON-able ``meta``) to ``path`` as a data-only zip file."""
    arrays: list[np.ndarray] = []
    body = encode(tree, arrays)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("meta.json", json.dumps(meta, allow_nan=False))
        z.writestr("tree.json", json.dumps(body, allow_nan=False))
        for i, a in enumerate(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a, allow_pickle=False)
            z.writestr(f"arrays/{i}.npy", buf.getvalue())


_READ_ERRORS = (
    OSError,
    KeyError,
    ValueError,
    EOFError,
    RecursionError,
    RuntimeError,
    NotImplementedError,
    SyntaxError,  # numpy parsing a damaged ``.npy`` header (ast, then tokenize)
    tokenize.TokenError,
    zipfile.BadZipFile,
)
"""What reading a damaged zip, JSON or ``.npy`` member raises."""


def _unreadable(path: Path, e: BaseException) -> StateFormatError:
    text = str(e)
    return StateFormatError(f"{path}: not a readable state file ({type(e).__name__}: {text[:200]})")


def _strict_json(text: bytes, what: str) -> Any:
    def refuse(name: str) -> Any:
        raise StateFormatError(f"{what}: holds the non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def read_meta(path: Path) -> dict[str, Any]:
    """The ``meta.json`` of a state file (cheap: the arrays are not read)."""
    try:
        with zipfile.ZipFile(path) as z:
            meta = _strict_json(z.read("meta.json"), f"{path}: meta.json")
    except StateFormatError:
        raise
    except _READ_ERRORS as e:
        raise _unreadable(path, e) from None
    if not isinstance(meta, dict):
        raise StateFormatError(f"{path}: meta.json is not a mapping")
    return meta


def read_tree(path: Path) -> tuple[dict[str, Any], Any]:
    """``(meta, tree)`` of a file written by :func:`write_tree`, reading data only.

    Raises:
        StateFormatError: the file is damaged, or holds anything but data (object arrays,
            unknown nodes, names of classes or functions).
    """
    meta = read_meta(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            body = _strict_json(z.read("tree.json"), f"{path}: tree.json")
            count = sum(1 for n in names if n.startswith("arrays/"))
            arrays = []
            for i in range(count):
                with z.open(f"arrays/{i}.npy") as f:
                    a = np.lib.format.read_array(f, allow_pickle=False)
                if a.dtype.kind not in _ALLOWED_KINDS:
                    raise StateFormatError(f"{path}: arrays/{i}.npy has dtype {a.dtype}")
                arrays.append(a)
    except StateFormatError:
        raise
    except _READ_ERRORS as e:
        # ValueError: numpy refusing an object array ("allow_pickle=False") or a bad header
        raise _unreadable(path, e) from None
    try:
        return meta, decode(body, arrays)
    except RecursionError as e:
        raise _unreadable(path, e) from None


# ---------------------------------------------------------------------- generic state
def _rebuilt(value: Any) -> bool:
    """Whether an attribute is rebuilt from the scenario (not state): skipped by the default.

    Functions and bound methods (re-bound by the world), classes, the params, the world
    context, keyed random streams and the world's hooks (``Truth``, ``Rewriter``).
    """
    from pydantic import BaseModel

    from simlab.rng import Stream
    from simlab.world_context import Rewriter, Truth, WorldContext

    return (
        inspect.isroutine(value)
        or inspect.isclass(value)
        or isinstance(value, (BaseModel, Stream, WorldContext, Truth, Rewriter))
    )


def _is_data(value: Any) -> bool:
    try:
        encode(value, [])
    except StateFormatError:
        return False
    return True


def component_state(obj: Any, path: str = "component") -> dict[str, Any]:
    """``obj.state_dict()``, or by default its data attributes (see the module docstring).

    Raises:
        StateFormatError: an attribute is neither data, nor rebuilt from the scenario, nor a
            simlab helper object; the component then needs its own ``state_dict``.
    """
    if hasattr(obj, "state_dict"):
        return obj.state_dict()
    out: dict[str, Any] = {}
    for name, value in vars(obj).items():
        where = f"{path}.{name}"
        if _is_data(value):
            out[name] = value
        elif _rebuilt(value):
            continue
        elif type(value).__module__.startswith("simlab") and hasattr(value, "__dict__"):
            out[name] = {_OBJECT: component_state(value, where)}
        else:
            raise StateFormatError(
                f"{where}: holds a {type(value).__qualname__}, which a checkpoint cannot "
                f"hold; give {type(obj).__qualname__} state_dict()/load_state_dict()"
            )
    return out


def load_component_state(obj: Any, state: Any) -> None:
    """Put ``state`` (from :func:`component_state`) back into a freshly built ``obj``."""
    if hasattr(obj, "load_state_dict"):
        obj.load_state_dict(state)
        return
    if not isinstance(state, dict):
        raise ValueError(f"expects a mapping of attributes, got {type(state).__name__}")
    for name, value in state.items():
        if not isinstance(name, str) or name.startswith("__"):
            raise ValueError(f"attribute name {name!r} is not allowed")
        current = getattr(obj, name, None)
        if isinstance(value, dict) and set(value) == {_OBJECT} and hasattr(current, "__dict__"):
            load_component_state(current, value[_OBJECT])
        elif callable(current) and not _is_data(current):
            raise ValueError(f"attribute {name!r} is a method, not state")
        else:
            setattr(obj, name, value)


def writable(tree: Any) -> Any:
    """``tree`` with each read-only numpy array replaced by a writable copy.

    A state that reached a Ray actor through the object store holds read-only views; a
    component may keep the arrays it is given and write into them later (as on a state
    loaded from a file), so states are made writable before they are loaded there.
    """
    if isinstance(tree, np.ndarray):
        return tree if tree.flags.writeable else tree.copy()
    if isinstance(tree, dict):
        return {k: writable(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(writable(v) for v in tree)
    return tree
