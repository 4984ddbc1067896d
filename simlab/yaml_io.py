"""Reading scenario YAML safely, with YAML 1.2's plain scalars and no YAML 1.1 surprises.

:class:`ScenarioLoader` is PyYAML's safe loader (it builds only plain data: no tags that
construct objects) with these changes:

- **YAML 1.2 scalars.** ``true``/``false`` are booleans, but ``yes``, ``no``, ``on`` and
  ``off`` are strings (a boolean field still accepts them; ``country: no`` stays ``'no'``);
  ``1e-3`` is a float (YAML 1.1 reads it as a string); ``0o17`` and ``0x1F`` are octal and
  hex; dates stay strings.
- **YAML 1.1 surprises are refused**, naming the line: ``1:30`` (YAML 1.1: the base-60
  number 90), ``010`` (YAML 1.1: octal 8) and ``1_000`` (digit separators); quote the value
  for a string or write the number plainly.
- **Duplicate keys** in one mapping are errors (YAML keeps the last silently); **merge
  keys** (``<<: *defaults``) work, and keys written next to a merge override it.
- **UTF-8 text only** (a UTF-8 byte-order mark is fine): a file in UTF-16 or UTF-32 (with or
  without a byte-order mark) or in another encoding is refused, saying so, where the first
  byte that is not UTF-8 is, and to save the file as UTF-8.
- **Bounded size**: a file over 10 MiB, aliases that expand to more than 1,000,000 values
  (a "billion laughs" document) and nesting deeper than the parser allows are refused.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any

import yaml

from simlab.errors import ScenarioError

__all__ = ["ScenarioLoader", "load_yaml", "read_yaml_file", "MAX_FILE_BYTES", "MAX_NODES"]

MAX_FILE_BYTES = 10 << 20
MAX_NODES = 1_000_000

_SURPRISES = {
    "tag:simlab,2024:sexagesimal": (
        "is the base-60 number {value} in YAML 1.1 and a string in YAML 1.2; quote it "
        "('{text}') for a string or write the number {value}"
    ),
    "tag:simlab,2024:leading-zero": (
        "is octal ({value}) in YAML 1.1 and decimal in YAML 1.2; write it without the "
        "leading zero, or as 0o{octal} for octal"
    ),
    "tag:simlab,2024:digit-separator": (
        "uses '_' digit separators, which only YAML 1.1 reads as a number; write {plain}"
    ),
}


class YamlValueError(yaml.MarkedYAMLError):
    """A plain scalar whose meaning differs between YAML 1.1 and 1.2 (refused)."""


class ScenarioLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 scalars, refused 1.1 surprises and unique keys."""

    yaml_implicit_resolvers: dict = {}

    def construct_mapping(self, node, deep=False):  # noqa: D102 - PyYAML hook
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base`: its keys may be overridden next to it
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: PyYAML reports it itself
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key '{key}' (first set on line {first})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)

    def get_single_node(self):  # noqa: D102 - PyYAML hook
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node

    def construct_yaml_int(self, node):  # noqa: D102 - PyYAML hook
        text = self.construct_scalar(node).replace("+", "")
        return int(text, 0) if text.lstrip("-")[:2].lower() in ("0o", "0x") else int(text)

    def construct_surprise(self, node):  # noqa: D102 - PyYAML hook
        text = self.construct_scalar(node)
        plain = text.replace("_", "")
        value: Any = plain
        if node.tag.endswith("sexagesimal"):
            sign = -1 if plain.startswith("-") else 1
            value = 0
            for part in plain.lstrip("+-").split(":"):
                value = value * 60 + float(part)
            value = sign * (int(value) if value == int(value) else value)
        elif node.tag.endswith("leading-zero"):
            value = int(plain, 8) if set(plain.lstrip("+-")) <= set("01234567") else plain
        message = _SURPRISES[node.tag].format(
            value=value, text=text, plain=plain, octal=plain.lstrip("+-0") or "0"
        )
        raise YamlValueError(None, None, f"'{text}' {message}", node.start_mark)


def _resolvers() -> None:
    base = yaml.SafeLoader.yaml_implicit_resolvers
    dropped = {
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:timestamp",
    }
    table: dict = {}
    for first, entries in base.items():
        kept = [(tag, rx) for tag, rx in entries if tag not in dropped]
        if kept:
            table[first] = kept
    ScenarioLoader.yaml_implicit_resolvers = table
    add = ScenarioLoader.add_implicit_resolver
    signs = list("-+0123456789")
    add(
        "tag:simlab,2024:sexagesimal",
        re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$"),
        signs,
    )
    add("tag:simlab,2024:leading-zero", re.compile(r"^[-+]?0[0-9_]+$"), signs)
    add(
        "tag:simlab,2024:digit-separator",
        re.compile(r"^[-+]?(?:[0-9]+_[0-9_]*|[0-9]*\.[0-9]*_[0-9_]*)(?:[eE][-+]?[0-9]+)?$"),
        signs + ["."],
    )
    add(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    add("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), signs)
    add(
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        [*signs, "."],
    )


_resolvers()
ScenarioLoader.add_constructor("tag:yaml.org,2002:int", ScenarioLoader.construct_yaml_int)
for _tag in _SURPRISES:
    ScenarioLoader.add_constructor(_tag, ScenarioLoader.construct_surprise)


def _check_expansion(root) -> None:
    """Refuse a document whose aliases expand to more than ``MAX_NODES`` values, or forever.

    A depth-first walk; a node met again while its own children are being walked (still
    ``open``) contains itself through an alias (``a: &x [*x]``) and is refused.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        if not done and id(node) in open_:
            raise yaml.composer.ComposerError(
                None,
                None,
                "a recursive alias: this node contains itself (a scenario is a tree)",
                node.start_mark,
            )
        children = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            open_.discard(id(node))
            sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in children), MAX_NODES + 1)
            if sizes[id(node)] > MAX_NODES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"its aliases expand to more than {MAX_NODES:,} values; a scenario is "
                    "far smaller (a 'billion laughs' document?)",
                    node.start_mark,
                )
            continue
        open_.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def load_yaml(text: str, source: str) -> Any:
    """Parse ``text`` with :class:`ScenarioLoader`; errors name ``source`` and the line.

    Raises:
        ScenarioError: a syntax error, a duplicate key, a YAML 1.1 surprise, or a document
            too large or too deep.
    """
    try:
        return yaml.load(text, Loader=ScenarioLoader)  # noqa: S506 - a SafeLoader subclass
    except YamlValueError as e:
        raise ScenarioError(f"{_where(source, e)}: {e.problem}") from None
    except yaml.MarkedYAMLError as e:
        raise ScenarioError(f"{_where(source, e)}: YAML syntax error: {e.problem or e}") from None
    except yaml.reader.ReaderError as e:  # a control character: one line, where it is
        where = f"{source}:{_line_column(text, e.position)}"
        raise ScenarioError(f"{where}: YAML syntax error: {_first_line(e)}") from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{source}: YAML syntax error: {_first_line(e)}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: YAML nested too deeply for a scenario") from None


def _where(source: str, e: yaml.MarkedYAMLError) -> str:
    mark = e.problem_mark
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source


def _line_column(text: str, position: int) -> str:
    """``line:column`` (from 1) of character ``position`` of ``text``."""
    line_start = text.rfind("\n", 0, position) + 1
    return f"{text.count(chr(10), 0, position) + 1}:{position - line_start + 1}"


def _first_line(e: yaml.YAMLError) -> str:
    """The error's message without PyYAML's ``in "<unicode string>", position N`` line."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def read_yaml_file(path: Path) -> Any:
    """Read and parse a scenario file (at most :data:`MAX_FILE_BYTES`); None when empty."""
    if not path.exists():
        raise ScenarioError(f"{path}: scenario file not found")
    if path.is_dir():
        raise ScenarioError(f"{path}: is a directory, expected a scenario YAML file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(
                f"{path}: scenario file is {size / (1 << 20):.1f} MiB; a scenario is at most "
                f"{MAX_FILE_BYTES >> 20} MiB"
            )
        raw = path.read_bytes()
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read scenario file ({e})") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(_not_utf8(path, raw, e.start)) from None
    if _wide_text(raw):  # valid UTF-8, but it reads as UTF-16 or UTF-32 without a mark
        raise ScenarioError(f"{path}: scenario file is UTF-16 or UTF-32 text; save it as UTF-8")
    return load_yaml(text, str(path))


_BOMS = (  # UTF-32's little-endian mark begins with UTF-16's: test it first
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _wide_text(raw: bytes) -> bool:
    """Whether ``raw`` begins like ASCII written as UTF-16 or UTF-32 (every other byte NUL)."""
    head = raw[:64]
    return len(head) >= 4 and (not any(head[0::2]) or not any(head[1::2]))


def _not_utf8(path: Path, raw: bytes, start: int) -> str:
    """Why ``raw`` (not UTF-8 from byte ``start``) cannot be read, and what to do."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return f"{path}: scenario file is {name} text; save it as UTF-8"
    before = raw[:start].decode("utf-8")
    where = _line_column(before, len(before))
    return f"{path}:{where}: not UTF-8 text (byte 0x{raw[start]:02x}); save the file as UTF-8"
