"""Golden values of the random streams: a change of stream layout must be deliberate.

Every world draws through :mod:`simlab.rng`, so the same scenario and seed give the same
run only while these values hold. A change that alters any of them (a hash constant, the key
derivation, the counter layout, a transform) must bump :data:`simlab.rng.STREAM_VERSION` and
update this table in the same commit; runs record the version in their manifest.
"""

from __future__ import annotations

import numpy as np
import pytest

from simlab import rng

VERSION = 2  # 2: the all-ones uniform is below 1 (test_rng_extremes.py); the rest unchanged
GOLDEN = {
    "bits": (
        lambda: rng.Stream(7, "users/arrivals").bits([0, 1, 2, 1_000_000], 3),
        [9432668005075852383, 12787144536490353863, 4504890744433946251, 12182738563171374220],
    ),
    "uniform": (
        lambda: rng.Stream(7, "users/arrivals").uniform([0, 1, 2, 1_000_000], 3),
        [0.5113459571718875, 0.6931924943174494, 0.24421061659625626, 0.6604275808506668],
    ),
    "uniform_size": (
        lambda: rng.Stream(7, "users/arrivals").uniform([5], 0, size=3),
        [[0.30645879756407307, 0.19574095037575584, 0.649972081578315]],
    ),
    "normal": (
        lambda: rng.Stream(0, "x").normal([0, 1, 2], 11),
        [-1.706525963030135, 0.7654096011815482, 0.3003004824654447],
    ),
    "normal_size": (
        lambda: rng.Stream(0, "x").normal([4], 2, size=(2, 2)),
        [[[-2.278222170665311, 0.3487097448232286], [0.45110785886722055, -0.42949197298063724]]],
    ),
    "gumbel": (
        lambda: rng.Stream(0, "x").gumbel([0, 1, 2], 11),
        [-0.5261606753738723, -0.5652033477612975, 2.201110564778284],
    ),
    # shapes below 1 (boosted: one more uniform), exactly 1 and just above (direct)
    "log_gamma": (
        lambda: rng.Stream(5, "g").log_gamma([0, 1, 2, 3], 4, np.array([0.5, 1.0, 1 + 1e-12, 3.0])),
        [
            [-3.7626550295844936, 0.2524709835288199, 1.0396320032318347, 1.1340252892784395],
            [-3.650919536911691, 0.01415595550497723, -0.30728239432907944, -0.9738529710322088],
            [-1.5054308771897917, -0.31552979876320497, -0.17632661483349127, -0.7622743473951622],
            [-0.2926770124650927, -0.028020133276223595, -0.052065742473170806, 1.9087016933570033],
        ],
    ),
    "log_gamma_scalar_shape": (
        lambda: rng.Stream(5, "g").log_gamma([7], 0, 1.0),
        [1.4512621612172103],
    ),
    "dirichlet_grid": (  # ids of any shape: one simplex vector per id, on the last axis
        lambda: rng.Stream(5, "d").dirichlet(
            np.array([[0, 1], [2, 3]]), 1, np.array([0.3, 1.0, 4.0])
        ),
        [
            [
                [0.0013448577876178204, 0.15135038722582256, 0.8473047549865595],
                [0.059886338544214046, 0.38960821844234916, 0.5505054430134367],
            ],
            [
                [0.02310177038634877, 0.29247138699244574, 0.6844268426212055],
                [0.031987788063996526, 0.2881160197551899, 0.6798961921808137],
            ],
        ],
    ),
    "integers": (lambda: rng.Stream(3, "y").integers([0, 1, 2, 3], 2, 10), [2, 3, 1, 7]),
    "categorical": (
        lambda: rng.Stream(3, "y").categorical([0, 1, 2, 3], 2, np.array([0.1, 0.2, 0.7])),
        [1, 2, 1, 2],
    ),
    "child": (lambda: rng.Stream(3, "y").child("z").uniform([0], 0), [0.7732607111863574]),
    "big_seed": (
        lambda: rng.Stream(2**63 - 1, "content/items").uniform([0, 2**40], 10**6),
        [0.16947040119293905, 0.3797251896770864],
    ),
    "functional": (
        lambda: rng.uniform(7, "users/arrivals", [0, 1], 3),
        [0.5113459571718875, 0.6931924943174494],
    ),
    "numpy_generator": (
        lambda: rng.numpy_generator(1, "train", 4).bit_generator.random_raw(3),
        [416820932763898239, 18374147199430988919, 7887788476198779196],
    ),
    "torch_generator": (
        lambda: rng.torch_generator(1, "train", 4).initial_seed(),
        7363020268954110842,
    ),
    "stream_key": (
        lambda: [
            rng.stream_key(7, "users/arrivals"),
            rng.stream_key(0, "a"),
            rng.stream_key(2**63 - 1, "content/items"),
        ],
        [13317879912224724274, 6539243125055167529, 4376265241370553803],
    ),
    "normal_scalar": (lambda: rng.Stream(0, "x").normal(5, 3), 1.9075119618891494),
    "normal_loc_scale": (
        lambda: rng.Stream(0, "x").normal([5, 6], 3, loc=2.0, scale=3.0),
        [7.722535885667448, 3.503745196101689],
    ),
    "normal_scalar_loc_scale": (
        lambda: rng.Stream(0, "x").normal(5, 3, loc=-1.0, scale=0.5),
        -0.0462440190554253,
    ),
    "gumbel_scalar": (lambda: rng.Stream(0, "x").gumbel(5, 3), -0.9815693998481186),
    "uniform_scalar": (lambda: rng.Stream(0, "x").uniform(5, 3), 0.06934639459098374),
    "uniform_one_id_list": (lambda: rng.Stream(0, "x").uniform([5], 3), [0.06934639459098374]),
    "categorical_2d": (
        lambda: rng.Stream(3, "y").categorical([[0, 1], [2, 3]], 2, np.array([0.1, 0.2, 0.7])),
        [[1, 2], [1, 2]],
    ),
    "categorical_rows": (
        lambda: rng.Stream(3, "y").categorical(
            [0, 1], 2, np.array([[0.5, 0.5, 0.0], [0.0, 0.1, 0.9]])
        ),
        [0, 2],
    ),
    "categorical_2d_rows": (
        lambda: rng.Stream(3, "y").categorical(
            [[0, 1], [2, 3]],
            2,
            np.array([[[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]], [[0.2, 0.2, 0.6], [0.9, 0.05, 0.05]]]),
        ),
        [[0, 2], [0, 0]],
    ),
    "integers_per_entity": (
        lambda: rng.Stream(3, "y").integers([0, 1, 2], 2, np.array([2, 1000, 2**40])),
        [0, 399, 203232668389],
    ),
    "numpy_generator_default_step": (
        lambda: rng.numpy_generator(1, "train").bit_generator.random_raw(2),
        [16945136283850084521, 14908950895195069871],
    ),
    "torch_generator_top_bit": (
        # the stream key of step 1 has its top bit set: the seed is the key's low 63 bits
        lambda: rng.torch_generator(1, "train", 1).initial_seed(),
        7198452981451946248,
    ),
    "torch_generator_odd_key": (
        # an odd stream key (step 2): every one of the key's low 63 bits is kept
        lambda: rng.torch_generator(1, "train", 2).initial_seed(),
        6272562757834849123,
    ),
    "torch_generator_default_step": (
        lambda: rng.torch_generator(1, "train").initial_seed(),
        4688985007886970692,
    ),
}


def test_the_table_is_of_the_current_stream_version():
    """Bump both together: the version and the golden values."""
    assert rng.STREAM_VERSION == VERSION


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_draws(name: str):
    """Each stream function gives exactly the pinned values (bit for bit)."""
    draw, expected = GOLDEN[name]
    got = np.asarray(draw())
    np.testing.assert_array_equal(got, np.asarray(expected, dtype=got.dtype))


def test_dirichlet_of_a_grid_of_ids_is_the_draw_of_each_id():
    """A grid of ids gives each id's own vector (the draw of the flat ids, reshaped)."""
    alpha = np.array([0.3, 1.0, 4.0])
    grid = rng.Stream(5, "d").dirichlet(np.array([[0, 1], [2, 3]]), 1, alpha)
    flat = rng.Stream(5, "d").dirichlet(np.arange(4), 1, alpha)
    np.testing.assert_array_equal(grid.reshape(4, 3), flat)
    np.testing.assert_allclose(grid.sum(axis=-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("rows", [1, 3, 5])
def test_categorical_refuses_probs_of_another_number_of_rows(rows: int):
    """Per-row probabilities must have one row per id (fewer or more is an error)."""
    with pytest.raises(ValueError, match="Expects `probs` of shape"):
        rng.Stream(3, "y").categorical([0, 1, 2, 3], 2, np.full((rows, 3), 1 / 3))


def test_scalar_draws_are_numpy_scalars_equal_to_the_array_draws():
    """A single id gives a numpy scalar equal to the same id's draw in an array."""
    s = rng.Stream(0, "x")
    for method in (s.uniform, s.normal, s.gumbel):
        one, many = method(5, 3), method([4, 5], 3)
        assert np.ndim(one) == 0 and isinstance(one, np.floating)
        assert one == many[1]


def test_golden_world_draws():
    """A small world's first arrivals and item ids are pinned (the streams as models use them)."""
    from conftest import make_small

    from simlab.world import World

    world = World(make_small(steps=3), 0, 5)
    catalog, active = world.begin(0)
    assert active.size == 243
    assert active[:8].tolist() == [0, 1, 2, 4, 5, 6, 7, 8]
    assert int(active.sum()) == 37333
    assert catalog.num_items == 200
    np.testing.assert_allclose(float(catalog.features.sum()), -25.810924530029297, rtol=1e-6)
