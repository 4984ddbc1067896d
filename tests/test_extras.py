"""Peer simulators' environments (simlab.extras): readiness, clear errors, the CLI command."""

from __future__ import annotations

import json

import pytest

from simlab import extras
from simlab.cli import main
from simlab.errors import DependencyNotInstalled


@pytest.fixture
def envs(tmp_path, monkeypatch):
    """An empty environments folder."""
    monkeypatch.setenv("SIMLAB_ENVS_DIR", str(tmp_path))
    return tmp_path


def _fake_env(name: str, fingerprint: str) -> None:
    python = extras.python_of(name)
    python.parent.mkdir(parents=True)
    python.write_text("")
    marker = extras.env_dir(name) / "simlab-extra.json"
    marker.write_text(json.dumps({"fingerprint": fingerprint}))


def test_missing_environment_names_the_command(envs):
    """Without the environment, require() says which command creates it."""
    assert not extras.is_ready("recsim-ng")
    with pytest.raises(DependencyNotInstalled, match="simlab extras recsim-ng"):
        extras.require("recsim-ng")


def test_ready_only_with_the_current_pins(envs):
    """An environment made with other pins is not ready; one with these pins is reused."""
    _fake_env("trecs", "stale")
    assert not extras.is_ready("trecs")  # created with other pins: rebuilt on ensure
    (extras.env_dir("trecs") / "simlab-extra.json").write_text(
        json.dumps({"fingerprint": extras._fingerprint("trecs")})
    )
    assert extras.is_ready("trecs")
    assert extras.require("trecs") == extras.python_of("trecs")
    assert extras.ensure("trecs", log=None) == extras.python_of("trecs")  # reused, no pip


def test_unknown_extra_is_a_clear_error(envs, capsys):
    """An unknown name lists the known ones, in the API and in the CLI (exit 2)."""
    known = r"expected one of \['gym-latest', 'obp', 'recsim-ng', 'trecs'\]"
    with pytest.raises(DependencyNotInstalled, match=known):
        extras.env_dir("recsim")
    assert main(["extras", "trec"]) == 2
    err = capsys.readouterr().err
    assert "Unknown extra environment 'trec'" in err and "Did you mean 'trecs'" in err
