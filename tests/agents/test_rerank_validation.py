"""Re-ranker settings that read source labels are refused at validate time without them."""

from __future__ import annotations

import pytest
from conftest import make_small
from test_rerank import IDS, RERANKERS

from simlab import registry
from simlab.agents.rerank import StyleRemovalReranker
from simlab.errors import ScenarioError


@pytest.mark.parametrize("where", ["platform", "agent"])
@pytest.mark.parametrize("knows", [False, True])
@pytest.mark.parametrize(("rid", "cls", "params", "needs"), RERANKERS, ids=IDS)
def test_source_label_settings_are_refused_at_validate_time(rid, cls, params, needs, knows, where):
    """Without ``knows_source`` a setting that reads labels is a validate-time error.

    It names the re-ranker's path, the setting and the fix (the step-time error above stays
    for re-rankers built outside a scenario); every other setting, and every setting with
    the labels observed, validates.
    """
    name = {registry.resolve("rerankers", n): n for n in registry.names("rerankers")}[cls]
    rr = [{"model": name, **params}]
    knows_set = f"platform.knows_source={str(knows).lower()}"
    if where == "platform":
        path, make = (
            "platform.rerankers[0]",
            lambda: make_small(knows_set, ("platform.rerankers", rr)),
        )
    else:
        path, make = (
            "agents[0].rerankers[0]",
            lambda: make_small(knows_set, agents=[{"model": "popularity", "rerankers": rr}]),
        )
    if not needs or knows:
        make()
        return
    with pytest.raises(ScenarioError) as info:
        make()
    lines = [ln for ln in str(info.value).splitlines() if ln.startswith(path)]
    assert len(lines) == 1, str(info.value)
    assert "needs item source labels" in lines[0] and "set platform.knows_source: true" in lines[0]
    setting = "style-removal" if cls is StyleRemovalReranker else next(iter(params.values()))
    assert str(setting) in lines[0], lines[0]
