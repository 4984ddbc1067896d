"""The RecSim NG-style building blocks: topic means, the item table, the rules, the protocols."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from simlab.environments.content import CreatorEcosystem
from simlab.environments.interest_evolution import InterestEvolutionUsers, RecSimCorpus
from simlab.environments.recsim_common import RecSimItems, check_dims, topic_means
from simlab.errors import ScenarioError
from simlab.world_context import WorldContext


@pytest.mark.parametrize("topics", [1, 2, 3, 5, 10])
@pytest.mark.parametrize("share", [0.0, 0.3, 0.7, 1.0])
def test_topic_means_split_trashy_and_nutritious(topics, share):
    """``int(T share)`` trashy means from lo up to 0, then nutritious ones from 0 up to hi."""
    got = topic_means(topics, share, -2.0, 3.0)
    trashy = int(topics * share)
    want = []
    for i in range(trashy):
        want.append(-2.0 + 2.0 * i / (trashy - 1) if trashy > 1 else -2.0)
    rest = topics - trashy
    for i in range(rest):
        want.append(3.0 * i / (rest - 1) if rest > 1 else 0.0)
    assert got.dtype == np.float64 and got.shape == (topics,)
    np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize(
    "field, good, bad",
    [("topic_min_utility", 0.0, 0.5), ("topic_max_utility", 0.0, -0.5), ("doc_length", 0.5, 0.0)],
)
def test_corpus_bounds(field, good, bad):
    """Worst mean at most 0, best mean at least 0, a positive document length."""
    assert getattr(RecSimCorpus.Params(**{field: good}), field) == good
    with pytest.raises(ValueError, match=field):
        RecSimCorpus.Params(**{field: bad})


def items(ids) -> RecSimItems:
    """Documents of the given ids (features name the id)."""
    ids = np.asarray(ids, np.int64)
    n = ids.size
    f = np.stack([ids, -ids], axis=1).astype(np.float32)
    return RecSimItems(
        item_ids=ids,
        creator=ids.copy(),
        source=np.zeros(n, np.int8),
        topic=ids % 2,
        latent=f,
        features=f,
        quality=ids.astype(np.float32),
        published=np.full(n, -1, np.int64),
        length=np.full(n, 2.0, np.float32),
    )


@pytest.mark.parametrize(
    "ids", [[0, 1, 2, 3], [0], [1, 2, 3], [0, 2, 5], [3, 4, 9, 10], [0, 1, 5, 6], [2]]
)
def test_rows_are_the_positions_of_the_ids(ids):
    """``rows`` finds each id's row, in any shape (ids ``0..N-1`` are their own rows)."""
    table = items(ids)
    ask = np.array([[ids[-1], ids[0]], [ids[0], ids[len(ids) // 2]]])
    want = [[ids.index(int(i)) for i in row] for row in ask]
    assert table.rows(ask).tolist() == want
    assert table.rows(np.array(ids)).tolist() == list(range(len(ids)))
    # ids 0..N-1 are their own rows: the ids are handed back without a search
    assert (table.rows(ask) is ask) == (ids == list(range(len(ids))))


def test_select_keeps_the_rows_and_the_lengths():
    """``select`` is a RecSimItems of the masked rows, lengths included."""
    table = items([0, 1, 2, 3, 4])
    table.length[:] = np.arange(5)
    part = table.select(np.array([True, False, True, False, True]))
    assert isinstance(part, RecSimItems)
    assert part.item_ids.tolist() == [0, 2, 4] and part.length.tolist() == [0, 2, 4]
    assert part.rows(np.array([4, 0])).tolist() == [2, 0]


def ctx(dim: int, topics: int, user_range=None) -> WorldContext:
    """A world context."""
    return WorldContext(0, dim, topics, 1.0, 5, 2, 3, user_range=user_range)


@pytest.mark.parametrize("dim, topics", [(3, 2), (2, 3)])
def test_dimension_rule_names_both_values(dim, topics):
    """``world.dim != world.num_topics`` is a ScenarioError naming the component and both."""
    msg = f"who: document features .* got world.dim={dim}, world.num_topics={topics} "
    with pytest.raises(ScenarioError, match=msg + re.escape("(RecSim NG's default is 2 and 2)")):
        check_dims(ctx(dim, topics), "who")
    check_dims(ctx(topics, topics), "who")  # equal: fine


@pytest.mark.parametrize("size", [2, 64, 257, 300, 4096])
def test_equal_dimensions_of_any_size_pass(size):
    """Equal values pass however large, as two separate int objects (e.g. parsed from YAML)."""
    dim, topics = int(str(size)), int(str(size))  # equal values, distinct objects past 256
    check_dims(ctx(dim, topics), "who")
    assert RecSimCorpus.check_scenario(None, scenario(dim, topics)) == []
    assert InterestEvolutionUsers.check_scenario(None, scenario(dim, topics)) == []
    with pytest.raises(ScenarioError, match=f"got world.dim={dim}, world.num_topics={size + 1}"):
        check_dims(ctx(dim, size + 1), "who")


def scenario(dim: int, topics: int, content=RecSimCorpus, model="recsim-corpus"):
    """The parts of a scenario the validate-time rules read."""
    return SimpleNamespace(
        world=SimpleNamespace(dim=dim, num_topics=topics),
        users=SimpleNamespace(model="interest-evolution"),
        content=SimpleNamespace(cls=content, model=model),
    )


def test_validate_time_rules_of_the_corpus_and_the_users():
    """Dimensions that differ and documents without a length are reported, one line each."""
    assert RecSimCorpus.check_scenario(None, scenario(2, 2)) == []
    assert InterestEvolutionUsers.check_scenario(None, scenario(4, 4)) == []
    for dim, topics in ((3, 2), (2, 3)):
        [line] = RecSimCorpus.check_scenario(None, scenario(dim, topics))
        assert line.startswith("content.model: document features")
        assert f"world.dim={dim}, world.num_topics={topics} " in line
    lines = InterestEvolutionUsers.check_scenario(
        None, scenario(3, 2, CreatorEcosystem, "creators")
    )
    assert len(lines) == 2 and lines[0].startswith("users.model: document features")
    assert lines[1] == (
        "users.model: 'interest-evolution' users consume documents with a `length` (RecSim's "
        "corpus); content.model 'creators' has none; use content.model: recsim-corpus (or "
        "recsim-ng-corpus)"
    )


def test_static_corpus_steps_and_checkpoints_the_step_only():
    """The corpus never changes and is read-only; its state is the step."""
    corpus = RecSimCorpus(RecSimCorpus.Params(num_docs=6), ctx(2, 2))
    assert corpus.t == -1 and corpus.state_dict() == {"t": -1}
    before = corpus.latent().latent.copy()
    corpus.step(4, None)
    assert corpus.state_dict() == {"t": 4}
    np.testing.assert_array_equal(corpus.latent().latent, before)
    assert corpus.catalog(False).age.tolist() == [5] * 6
    assert corpus.catalog(True).source.tolist() == [0] * 6
    for arr in corpus.latent().__dict__.values():
        assert not arr.flags.writeable
    other = RecSimCorpus(RecSimCorpus.Params(num_docs=6), ctx(2, 2))
    other.load_state_dict({"t": np.int64(7)})
    assert other.t == 7 and type(other.t) is int
    assert corpus.new_item_sources().shape == (0,)


@pytest.mark.parametrize("user_range", [None, (3, 8)])
def test_users_arrive_every_step_and_show_a_zero_profile(user_range):
    """Every user of the shard every step; a read-only zero profile of any batch size."""
    pop = InterestEvolutionUsers(InterestEvolutionUsers.Params(num_users=8), ctx(2, 2, user_range))
    lo, hi = user_range or (0, 8)
    assert (pop.lo, pop.hi, pop.num_users) == (lo, hi, 8)
    assert pop.arrivals(0).tolist() == list(range(lo, hi)) == pop.arrivals(5).tolist()
    for b in (1, 2, 5, 1, 5, 0):
        feats = pop.observable_features(np.arange(b))
        assert feats.shape == (b, 2) and feats.dtype == np.float32 and not feats.any()
        assert not feats.flags.writeable
    # one zero block, grown when a larger batch comes, serves every smaller batch
    assert pop.observable_features(np.arange(3)).base is feats.base
    cur, initial = pop.interests()
    assert cur.shape == initial.shape == (hi - lo, 2)
    assert not cur.flags.writeable and not initial.flags.writeable
    np.testing.assert_array_equal(cur, initial)
