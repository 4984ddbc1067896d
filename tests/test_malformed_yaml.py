"""Malformed scenarios, third part: YAML itself (1.1 readings, abuse, recursion, bytes).

Like ``test_malformed_scenarios.py``: every case must end in a ``ScenarioError`` whose lines
name the place and what is wrong, and nothing else may be raised.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simlab.errors import ScenarioError
from simlab.scenario import load_scenario

# ---------------------------------------------------------------------- YAML
YAML_CASES = [
    ("steps: 1:30\n", "'1:30' is the base-60 number 90 in YAML 1.1"),
    ("steps: 010\n", "'010' is octal (8) in YAML 1.1"),
    ("steps: 1_000\n", "'1_000' uses '_' digit separators"),
    ("steps: 5\nsteps: 6\n", "duplicate key 'steps' (first set on line"),
    ("steps: [5\n", "YAML syntax error"),
    ("steps: !!python/object:os.system ls\n", "YAML syntax error"),
    (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
            for p, c in zip("abcdefg", "bcdefgh", strict=True)
        ),
        "aliases expand to more than",
    ),
    (  # seven levels of ten (10^7 values) and ten more aliases of the sixth: a count that
        # a sign error in the sum (alternating signs per level) would cancel
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
            for p, c in zip("abcdef", "bcdefg", strict=True)
        )
        + "".join(f"p{i}: *f\n" for i in range(10)),
        "aliases expand to more than 1,000,000 values",
    ),
    ("steps: " + "[" * 3000 + "]" * 3000 + "\n", "YAML nested too deeply"),
]


@pytest.mark.parametrize("text, fragment", YAML_CASES, ids=[f[:20] for _, f in YAML_CASES])
def test_yaml_surprises_and_abuse_are_refused(tmp_path, text, fragment):
    """YAML 1.1 readings, duplicate keys, object tags, alias bombs and deep nesting."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert fragment in str(info.value), str(info.value)


RECURSIVE_CASES = [  # an alias inside the node it names: the document would never end
    "a: &x [*x]\n",
    "name: f\nsteps: 2\nagents: &a [{model: random, rerankers: *a}]\n",
    "a: &m {k: *m}\n",
    "a: &x [1, [2, [3, *x]]]\n",
    "a: &x {b: [{c: *x}]}\nd: *x\n",
]


def _load_limited(path: Path) -> subprocess.CompletedProcess:
    """Load ``path`` in a child process with 2 GiB of address space and a minute to run."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    code = "import sys; from simlab.scenario import load_scenario; load_scenario(sys.argv[1])"
    return subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True, text=True, timeout=60, preexec_fn=limit,
    )  # fmt: skip


@pytest.mark.parametrize("text", RECURSIVE_CASES)
def test_a_recursive_alias_is_a_syntax_error_at_its_place(tmp_path, text):
    """Refused at once, naming the line (it used to exhaust memory: an OOM kill)."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    done = _load_limited(path)
    assert done.returncode != 0 and "a recursive alias" in done.stderr, done.stderr[-800:]
    assert "MemoryError" not in done.stderr
    assert f"{path}:" in done.stderr


def test_shared_aliases_are_not_recursive(tmp_path):
    """The same anchor used twice, or nested in another alias, is a tree: not refused."""
    path = tmp_path / "ok.yaml"
    path.write_text("a: &a [1, 2]\nb: &b [*a, *a]\nc: [*b, *a, {k: *b}]\n")
    with pytest.raises(ScenarioError) as info:  # (unknown fields: but no alias error)
        load_scenario(path)
    assert "recursive" not in str(info.value) and "unknown field 'a'" in str(info.value)


CONTROL_CASES = [  # (text, line, column of the bad character)
    ("\x00", 1, 1),
    ("name: f\x07\nsteps: 3\n", 1, 8),
    ("name: f\nsteps: 3\nseeds: [1,\x1b 2]\n", 3, 11),
    ("name: f\n\n\n  \x01\n", 4, 3),
    ("# comment \x7f\nsteps: 3\n", 1, 11),
    ("name: f\r\nsteps: \x08\n", 2, 8),
]


@pytest.mark.parametrize("text, line, column", CONTROL_CASES)
def test_a_control_character_is_one_error_line_at_its_place(tmp_path, text, line, column):
    """Binary or control characters: one message naming the line and column, no position."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(text.encode())
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"{path}:{line}:{column}: YAML syntax error: unacceptable character")
    assert "<unicode string>" not in message


def test_yaml_merge_keys_and_yaml_12_scalars(tmp_path):
    """``<<:`` merges (with local overrides); 1e-3 is a float; yes/no stay strings."""
    path = tmp_path / "merge.yaml"
    path.write_text(
        "name: merged\nsteps: 4\nexecution: {backend: local}\n"
        "agents:\n  - &mf {model: mf, factors: 4, epochs: 1, name: a}\n"
        "  - <<: *mf\n    name: b\n    lr: 1e-3\n"
        "output: {events: yes}\n"
    )
    sc = load_scenario(path)
    assert [a.label for a in sc.agents] == ["a", "b"]
    assert sc.agents[1].params.lr == pytest.approx(0.001)
    assert sc.agents[1].params.factors == 4
    assert sc.output.events is True


def test_oversized_scenario_file_is_refused(tmp_path):
    """A file over the size limit is refused before it is parsed."""
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# " + b"x" * (11 << 20) + b"\nname: a\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert str(e.value) == f"{path}: scenario file is 11.0 MiB; a scenario is at most 10 MiB"


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [("steps: 5\nsteps: 6\n", "steps", 1), ("name: a\n\n\nsteps: 5\nsteps: 6\n", "steps", 4),
     ("users:\n  model: logit\n  num_users: 3\n  model: chaney\n", "model", 2),
     ("a: 1\nb: 2\nc: 3\nd: 4\ne: 5\nf: 6\ng: 7\na: 8\n", "a", 1)],
)  # fmt: skip
def test_a_duplicate_key_names_the_line_it_was_first_set_on(tmp_path, text, key, line):
    """Lines count from 1, as editors show them."""
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert f"duplicate key '{key}' (first set on line {line})" in str(e.value)


def test_aliases_below_the_limit_are_read():
    """Five levels of ten (100,000 values): a large tree, but under the limit."""
    from simlab.yaml_io import load_yaml

    text = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcd", "bcde", strict=True)
    )
    data = load_yaml(text, "aliases")
    assert len(data["e"]) == 10 and data["e"][9][9][9][9] == [1] * 10
