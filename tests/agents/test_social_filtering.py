"""Social filtering (Chaney's replication): checkpoints, the graph's binding and new items."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import sparse
from test_chaney_agents import CTX, FEATS, _catalog, _log, _obs

from simlab.agents.social_filtering import SocialFilteringAgent

CLICKS = {0: [(1, 0), (2, 0), (4, 3)], 1: [(1, 2), (2, 4), (5, 1)], 2: [(2, 0), (0, 5)]}


def _graph() -> sparse.csr_matrix:
    adj = np.zeros((6, 6))
    for a, b in [(0, 1), (0, 2), (3, 4), (5, 0)]:
        adj[a, b] = adj[b, a] = 1
    return sparse.csr_matrix(adj)


def _trained(**params) -> SocialFilteringAgent:
    agent = SocialFilteringAgent(SocialFilteringAgent.Params(**params), CTX)
    agent.bind_social_graph(_graph())
    agent.retrain(_log({k: v for k, v in CLICKS.items() if k < 2}, FEATS))
    return agent


def test_declares_that_it_needs_the_worlds_graph():
    """The world binds its social graph only to agents that declare they need it."""
    assert SocialFilteringAgent.needs_social_graph is True
    agent = SocialFilteringAgent(SocialFilteringAgent.Params(), CTX)
    with pytest.raises(RuntimeError, match="social graph"):
        agent.retrain(_log(CLICKS, FEATS))


@pytest.mark.parametrize("graph_first", [True, False])
def test_state_round_trip_gives_the_same_rankings(graph_first):
    """Restored from its state, with the graph bound before or after, it ranks as before."""
    agent = _trained()
    obs = _obs(2, _catalog(2, 6, FEATS, np.zeros(6, np.int64)))
    want = agent.act(obs).item_ids
    copy = SocialFilteringAgent(SocialFilteringAgent.Params(), CTX)
    if graph_first:
        copy.bind_social_graph(_graph())
        copy.load_state_dict(agent.state_dict())
    else:
        copy.load_state_dict(agent.state_dict())
        copy.bind_social_graph(_graph())
    np.testing.assert_array_equal(copy._friend_counts.toarray(), agent._friend_counts.toarray())
    np.testing.assert_array_equal(copy.act(obs).item_ids, want)


@pytest.mark.parametrize("score_new", [False, True])
def test_new_items_last_unless_they_are_scored(score_new):
    """Items newer than the data rank after every other, unless ``score_new_items``.

    With it they rank by their (zero) counts among the other zero-count items.
    """
    agent = _trained(score_new_items=score_new)
    assert SocialFilteringAgent.Params().score_new_items is False
    published = np.array([0, 0, 0, 0, 0, 2])  # item 5 is newer than the data (step 1)
    users = np.arange(6)
    last = []
    for step in range(2, 40):
        obs = _obs(step, _catalog(step, 6, FEATS, published), users=users)
        slates = agent.act(obs).item_ids
        last.append(slates[:, -1] == 5)
    last = np.array(last)
    if score_new:
        assert not last.all() and last.any()
    else:
        assert last.all()


@pytest.mark.parametrize("bind", [False, True])
@pytest.mark.parametrize("step", [0, 3])
def test_before_any_data_every_candidate_is_ranked_at_random(bind, step):
    """Without data (graph bound or not) the lists are random orders of all the candidates."""
    agent = SocialFilteringAgent(SocialFilteringAgent.Params(), CTX)
    if bind:
        agent.bind_social_graph(_graph())
    obs = _obs(step, _catalog(step, 6, FEATS, np.zeros(6, np.int64)), users=np.arange(6))
    obs = dataclasses.replace(obs, slate_size=6)
    slates = agent.act(obs).item_ids
    np.testing.assert_array_equal(np.sort(slates, axis=1), np.sort(obs.candidates, axis=1))
    assert len({tuple(r) for r in slates.tolist()}) > 1
