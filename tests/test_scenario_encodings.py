"""Scenario files in other encodings than UTF-8: one error line that says which and what to do.

A valid scenario saved in UTF-16/UTF-32 (with and without a byte-order mark) or in a legacy
encoding used to fail with Python's codec message or PyYAML's "unacceptable character #x0000".
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
import yaml
from conftest import SMALL

from simlab.errors import ScenarioError
from simlab.scenario import load_scenario

TEXT = "# a small scenario\n" + yaml.safe_dump(SMALL, sort_keys=False)

WIDE = {  # name: the file's bytes, the encoding the message names
    "utf-16 (mark)": (TEXT.encode("utf-16"), "is UTF-16 text"),
    "utf-16-le + mark": (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "is UTF-16 text"),
    "utf-16-be + mark": (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "is UTF-16 text"),
    "utf-32 (mark)": (TEXT.encode("utf-32"), "is UTF-32 text"),
    "utf-32-le + mark": (codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"), "is UTF-32 text"),
    "utf-32-be + mark": (codecs.BOM_UTF32_BE + TEXT.encode("utf-32-be"), "is UTF-32 text"),
    "utf-16-le": (TEXT.encode("utf-16-le"), "is UTF-16 or UTF-32 text"),
    "utf-16-be": (TEXT.encode("utf-16-be"), "is UTF-16 or UTF-32 text"),
    "utf-32-le": (TEXT.encode("utf-32-le"), "is UTF-16 or UTF-32 text"),
    "utf-32-be": (TEXT.encode("utf-32-be"), "is UTF-16 or UTF-32 text"),
}


def _error(tmp_path: Path, raw: bytes) -> tuple[Path, str]:
    path = tmp_path / "scenario.yaml"
    path.write_bytes(raw)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    assert "codec" not in message and "#x0000" not in message, message
    return path, message


@pytest.mark.parametrize("name", sorted(WIDE))
def test_utf16_and_utf32_files_are_named_as_such(tmp_path, name):
    """With or without a byte-order mark, the message names the encoding and the fix."""
    raw, what = WIDE[name]
    path, message = _error(tmp_path, raw)
    assert message == f"{path}: scenario file {what}; save it as UTF-8"


# name: (text before the bad byte, the bad text, its encoding, line, column, the first bad byte)
NARROW = {
    "latin-1 comment": ("name: x\n# caf", "é", "latin-1", 2, 6, 0xE9),
    "cp1252 quotes": ("name: x\nsteps: 3\ndescription: ", "“q”", "cp1252", 3, 14, 0x93),
    "gb18030": ("# ", "中文", "gb18030", 1, 3, 0xD6),
    "shift_jis": ("name: x\n\n  # ", "日本", "shift_jis", 3, 5, 0x93),
    "after utf-8": ("description: naïve ", "ß", "latin-1", 1, 20, 0xDF),
    "a binary file": ("", "\x89PNG\r\n", "latin-1", 1, 1, 0x89),
}


@pytest.mark.parametrize("name", sorted(NARROW))
def test_other_encodings_name_the_first_bad_byte_and_its_place(tmp_path, name):
    """Latin-1, cp1252, GB18030, Shift JIS, binary: line and column of the first bad byte."""
    before, bad, encoding, line, column, byte = NARROW[name]
    raw = before.encode("utf-8") + bad.encode(encoding) + b"\nsteps: 3\n"
    path, message = _error(tmp_path, raw)
    assert message == (
        f"{path}:{line}:{column}: not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8"
    )


def test_a_truncated_character_at_the_end_is_found(tmp_path):
    """A multi-byte character cut off at the end of the file."""
    raw = "name: x\nsteps: 3\n# é".encode()[:-1]
    path, message = _error(tmp_path, raw)
    assert message.startswith(f"{path}:3:3: not UTF-8 text (byte 0xc3)"), message


@pytest.mark.parametrize("mark", [b"", codecs.BOM_UTF8])
def test_utf8_with_or_without_its_mark_still_loads(tmp_path, mark):
    """UTF-8 (also with a byte-order mark and non-ASCII text) loads as before."""
    path = tmp_path / "ok.yaml"
    path.write_bytes(mark + ("description: naïve café 中文\n" + TEXT).encode("utf-8"))
    assert load_scenario(path).description == "naïve café 中文"


def test_a_nul_byte_alone_is_still_a_control_character(tmp_path):
    """Short NUL-bearing text is not taken for UTF-16: PyYAML's place-naming message stands."""
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"a\x00\n")
    with pytest.raises(ScenarioError, match=r"nul.yaml:1:2: YAML syntax error: unacceptable char"):
        load_scenario(path)
