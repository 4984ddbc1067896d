"""Field paths and ``--set`` overrides of scenario data (``a.b[0].c=value``).

Re-exported by :mod:`simlab.scenario`; sweeps and variants apply their values through
:func:`apply_overrides` too.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from simlab.errors import ScenarioError
from simlab.validation import format_path, short
from simlab.yaml_io import load_yaml

__all__ = ["parse_set", "set_path", "apply_overrides"]


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parse_path(path: str) -> list[str | int]:
    """``"agents[2].factors"`` or ``"agents.2.factors"`` -> ``["agents", 2, "factors"]``."""
    if not path or path.startswith(".") or path.endswith(".") or ".." in path:
        raise ScenarioError(f"--set: malformed field path '{path}'")
    if re.search(r"\[\s*-\s*\d+\s*\]", path):
        raise ScenarioError(
            f"--set: field path '{path}': list positions count from 0 (no negative positions: "
            "write the position, e.g. agents[2] for the third agent)"
        )
    tokens: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        gap = path[pos : m.start()]
        if gap not in ("", "."):
            raise ScenarioError(f"--set: malformed field path '{path}'")
        name, index = m.group(1), m.group(2)
        tokens.append(int(index) if index is not None else (int(name) if name.isdigit() else name))
        pos = m.end()
    if pos != len(path):
        raise ScenarioError(f"--set: malformed field path '{path}'")
    return tokens


def parse_set(item: str) -> tuple[str, Any]:
    """Parse one ``path.to.field=value`` override; the value is read as YAML."""
    if "=" not in item:
        raise ScenarioError(f"--set '{item}': expected path.to.field=value")
    path, _, text = item.partition("=")
    path = path.strip()
    try:
        value = load_yaml(text, "value") if text.strip() else ""
    except ScenarioError as e:
        problem = str(e).removeprefix("value").lstrip(":0123456789 ")
        shown = short(text)  # repr's quotes, or its first quote and "..." when cut
        shown = shown[1:] if len(shown) < len(repr(text)) else shown[1:-1]
        raise ScenarioError(
            f"--set {path}: value '{shown}' is not valid YAML ({problem}); "
            "quote it to pass a string"
        ) from None
    _parse_path(path)
    return path, value


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` in nested ``data`` (dicts and lists), creating missing mapping keys.

    A ``None`` value (YAML ``null``) for a mapping key removes the key, so the field's
    default applies (every field whose default is not ``None`` rejects ``None`` anyway).
    """
    tokens = _parse_path(path)
    node: Any = data
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        where = format_path(tokens[: i + 1])
        if isinstance(node, list):
            if not isinstance(tok, int):
                raise ScenarioError(f"{where}: '{format_path(tokens[:i])}' is a list; use an index")
            if not -len(node) <= tok < len(node):
                raise ScenarioError(
                    f"{where}: index out of range; '{format_path(tokens[:i])}' has "
                    f"{len(node)} entries"
                )
        elif isinstance(node, dict):
            if isinstance(tok, int):
                raise ScenarioError(
                    f"{where}: '{format_path(tokens[:i])}' is a mapping, not a list"
                )
            if not last and tok not in node:
                if isinstance(tokens[i + 1], int):
                    raise ScenarioError(
                        f"{where}: not set in the scenario, so it has no entries to index; "
                        f"set the whole list instead, e.g. {where}=[...]"
                    )
                node[tok] = {}
        else:
            raise ScenarioError(
                f"{where}: cannot set inside '{format_path(tokens[:i])}', which is "
                f"{type(node).__name__} {node!r}"
            )
        if last and value is None and isinstance(node, dict):
            node.pop(tok, None)  # null removes the field: its default applies
        elif last:
            node[tok] = value
        else:
            node = node[tok]


def apply_overrides(data: dict[str, Any], overrides: Iterable[str | tuple[str, Any]]) -> dict:
    """Return a deep copy of ``data`` with ``--set`` overrides applied."""
    if isinstance(overrides, (str, bytes)):
        raise TypeError(
            "Expects `overrides` to be a list of 'path.to.field=value' strings or (path, "
            f"value) pairs, actual value: the single string {overrides!r}"
        )
    out = copy.deepcopy(data)
    for item in overrides:
        if isinstance(item, str):
            path, value = parse_set(item)
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            path, value = item
        else:
            raise TypeError(
                "Expects each override to be a 'path.to.field=value' string or a (path, "
                f"value) pair with a str path, actual value: {item!r}"[:300]
            )
        set_path(out, path, value)
    return out
