"""Loss landscapes: the line from the initial to the final weights, the plane around them."""

import jax
import numpy as np
import pytest
from conftest import exact_matmuls, read_image
from flax import nnx

import nets
import train
from dashboards import pictures
from training import landscape, losses, steps


@pytest.fixture
def small_net(xor_config):
    model = nets.build_model(xor_config.model, (2,), 1, nnx.Rngs(0), None, nets.features.PLAIN)
    graphdef, params = nnx.split(model, nnx.Param)
    return graphdef, jax.device_get(params)


def test_filter_normalised_directions_have_each_units_norm(small_net):
    _, final = small_net
    directions = landscape.raw_directions(final)
    d1, _ = landscape.normalised(final, directions, landscape.scales(final, directions))
    kernel, direction = final["layers"][0]["kernel"][...], d1["layers"][0]["kernel"][...]
    np.testing.assert_allclose(np.linalg.norm(direction, axis=0),
                               np.linalg.norm(kernel, axis=0), rtol=1e-5)  # fmt: skip
    assert not np.any(d1["layers"][0]["bias"][...])  # biases stay put (Li et al.)


def test_the_path_is_projected_onto_the_plane(small_net):
    """Weights at final + a d1 + b d2 come back as (a, b), from unit dot products alone."""
    _, final = small_net
    directions = landscape.raw_directions(final, seed=3)
    d1, d2 = landscape.normalised(final, directions, landscape.scales(final, directions))
    points = [(0.5, -0.25), (-1.0, 2.0), (0.0, 0.0)]

    def at(a, b):
        return jax.tree.map(lambda f, u, v: f + a * u + b * v, final, d1, d2)

    history = [landscape.unit_dots(at(a, b), directions) for a, b in points]
    np.testing.assert_allclose(landscape.project(history, final, directions), points, atol=1e-4)


def test_the_line_and_plane_are_the_losses_there(small_net):
    graphdef, final = small_net
    initial = jax.tree.map(lambda w: w * 0.5, final)
    bce = losses.get_loss("bce")
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0], np.int32)
    directions = landscape.raw_directions(final)
    d1, d2 = landscape.normalised(final, directions, landscape.scales(final, directions))
    objective = steps.TrainStep(graphdef, bce, None, None).loss
    losses_at = landscape.make_losses(objective, 41, 1.0, one_at_a_time=False)

    def loss(params, n=4):
        return float(bce(nnx.merge(graphdef, params)(x[:n]), y[:n]))

    corner = jax.tree.map(lambda f, u, v: f - u + v, final, d1, d2)  # a = -1, b = 1
    with exact_matmuls():  # the grid's and the references' products at float32, on a GPU too
        line, plane = losses_at(initial, final, d1, d2, (x, y), (x[:2], y[:2]))
        expected = [loss(initial), loss(final, 2), loss(final), loss(corner)]
    assert line[0][10] == pytest.approx(expected[0], rel=1e-5)  # a = 0
    assert line[1][30] == pytest.approx(expected[1], rel=1e-5)  # a = 1, the eval split
    assert plane[20, 20] == pytest.approx(expected[2], rel=1e-5)  # the centre
    assert plane[0, 40] == pytest.approx(expected[3], rel=1e-5)


def test_a_run_draws_its_landscapes_and_says_how_long(xor_config, tmp_path, capsys):
    xor_config.probes.landscape = True
    train.train_and_evaluate(xor_config, str(tmp_path))
    plane = read_image(tmp_path, "views/landscape/plane", 600)
    line = read_image(tmp_path, "views/landscape/line", 600)
    for picture in (plane, line):  # their text as large as TensorBoard's own in its card
        assert pictures.FONT * pictures.shown_scale(picture.shape) >= 11.5, picture.shape
    # The path's ends: green (the first log step) and red (the last, the centre).
    side = plane.shape[1]
    title = plane.shape[0] - side
    red = np.argwhere(np.all(plane == [214, 39, 40], axis=-1)).mean(axis=0)
    assert np.abs(red - [title + (side - 1) / 2, (side - 1) / 2]).max() < 3
    assert np.all(plane == [44, 160, 44], axis=-1).any()
    assert "landscape: the line and a 41x41 plane for 1 member in" in capsys.readouterr().out
