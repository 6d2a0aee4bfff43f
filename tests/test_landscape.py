"""Loss landscapes: the line from the initial to the final weights, the plane around them."""

import re

import jax
import numpy as np
import pytest
from conftest import exact_matmuls, read_image, refused, write_mnist
from flax import nnx

import data
import nets
import train
from configs import mnist_cnn, playground
from dashboards import pictures
from training import checkpoints, landscape, losses, steps


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


# The path's own plane (probes.landscape_directions="path"): PCA of the
# logged weights' moves from the final ones.


def test_path_directions_are_the_principal_directions_of_the_moves():
    rng = np.random.default_rng(0)
    snapshots = rng.standard_normal((9, 30)) * np.linspace(3, 0.1, 30)  # some axes move more
    final = snapshots[-1]  # the last log step is the end
    directions, variance, coordinates = landscape.path_directions(snapshots, final)
    np.testing.assert_allclose(directions @ directions.T, np.eye(2), atol=1e-12)
    moves = snapshots - final
    eigenvalues, eigenvectors = np.linalg.eigh(moves.T @ moves)  # NumPy's own PCA, ascending
    np.testing.assert_allclose(variance, eigenvalues[::-1][:2] / eigenvalues.sum(), rtol=1e-10)
    top = eigenvectors[:, ::-1][:, :2]
    np.testing.assert_allclose(directions.T @ directions, top @ top.T, atol=1e-10)  # same plane
    np.testing.assert_allclose(coordinates, moves @ directions.T, atol=1e-12)
    np.testing.assert_allclose(coordinates @ directions, moves @ top @ top.T, atol=1e-10)
    assert np.all(coordinates[-1] == 0)  # the final weights: the centre
    assert np.all(coordinates[0] >= 0)  # SVD's signs, fixed: the path starts at a, b >= 0


def test_a_path_in_a_plane_is_all_of_its_variance():
    """Moves along two orthogonal directions only: both shares add to 1, and
    the coordinates keep every distance between the points."""
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.standard_normal((50, 2)))[0].T  # (2, 50) orthonormal
    points = np.array([[4.0, 1.0], [3.0, -1.0], [1.0, 0.5], [0.0, 0.0]])
    final = rng.standard_normal(50)
    _, variance, coordinates = landscape.path_directions(points @ basis + final, final)
    assert variance.sum() == pytest.approx(1.0)
    assert variance[0] > variance[1] > 0

    def distances(x):
        return np.linalg.norm(x[:, None] - x[None], axis=-1)

    np.testing.assert_allclose(distances(coordinates), distances(points), atol=1e-12)
    unit = landscape.path_unit(coordinates, span=2.0)  # the farthest point at FILL x span
    assert np.abs(coordinates / unit).max() == pytest.approx(landscape.FILL * 2.0)
    still = landscape.path_directions(np.tile(final, (3, 1)), final)  # weights that never moved
    assert np.all(still[1] == 0) and landscape.path_unit(still[2], 1.0) == 1.0


def test_flattened_weights_come_back_as_the_same_tree(small_net):
    _, final = small_net
    flat = landscape.flatten(final)
    assert flat.dtype == np.float32 and flat.shape == (65,)  # XOR's 2-16-1
    back = landscape.unflatten(flat, final)
    assert jax.tree.structure(back) == jax.tree.structure(final)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(final), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def drawn(monkeypatch) -> list[dict]:
    """What each landscape_pictures call of a run got: line, plane, path, title."""
    calls, draw = [], pictures.landscape_pictures

    def recording(line, plane, span, path, plane_title=None):
        calls.append({"line": line, "plane": plane, "path": path, "title": plane_title})
        return draw(line, plane, span, path, plane_title)

    monkeypatch.setattr(pictures, "landscape_pictures", recording)
    return calls


def test_a_run_draws_the_plane_of_its_paths_top_directions(tmp_path, capsys, drawn):
    """Circles, 300 steps: the plane's centre is the final weights' train loss
    on the first probes.examples examples; the path ends there and fills
    FILL of the plane; the title and the console give its variance."""
    config = playground.get_config("circles")
    config.num_steps, config.log_every = 300, 50
    config.probes.landscape, config.probes.landscape_directions = True, "path"
    config.probes.examples = 100
    with exact_matmuls():
        train.train_and_evaluate(config, str(tmp_path))
        model, _ = checkpoints.load_run(str(tmp_path))
        dataset = data.load_dataset(config.data)
        x, y = dataset.x_train[:100], dataset.y_train[:100]
        final_loss = float(losses.get_loss("bce")(model(x), y))
    (call,) = drawn
    assert call["plane"][20, 20] == pytest.approx(final_loss, rel=1e-5)
    assert call["line"][0][30] == pytest.approx(final_loss, rel=1e-5)  # a = 1: the same weights
    path = call["path"]
    assert path.shape == (7, 2)  # steps 0, 50, ..., 300
    assert np.all(path[-1] == 0) and np.abs(path).max() == pytest.approx(landscape.FILL)
    shares = re.fullmatch(r"train loss on the path's top 2 directions \((\S+)%, (\S+)% of its "
                          r"variance\); the path", call["title"]).groups()  # fmt: skip
    assert 50 < float(shares[0]) <= 100 and float(shares[0]) + float(shares[1]) <= 100.05
    plane = read_image(tmp_path, "views/landscape/plane", 300)
    assert np.all(plane == [44, 160, 44], axis=-1).any()  # the path's start, drawn
    printed = capsys.readouterr().out
    assert (f"landscape: the line and a 41x41 plane on the path's top 2 directions ({shares[0]}%, "
            f"{shares[1]}% of its variance) for 1 member in") in printed  # fmt: skip


def test_a_resumed_run_draws_the_uninterrupted_runs_path_plane(xor_config, tmp_path, drawn):
    """The weights logged before the checkpoint come back from it, bit for bit."""
    xor_config.checkpoint_every = 200
    xor_config.probes.landscape, xor_config.probes.landscape_directions = True, "path"
    train.train_and_evaluate(xor_config, str(tmp_path / "whole"))
    xor_config.num_steps = 400  # the same run in two parts: 400 steps, then on to 600
    train.train_and_evaluate(xor_config, str(tmp_path / "parts"))
    xor_config.num_steps = 600
    train.train_and_evaluate(xor_config, str(tmp_path / "parts"))
    whole, _, resumed = drawn
    assert whole["path"].shape == (4, 2)  # steps 0, 200, 400, 600
    for key in ("line", "plane", "path"):
        np.testing.assert_array_equal(resumed[key], whole[key])
    assert resumed["title"] == whole["title"]
    pixels = [
        read_image(tmp_path / run, "views/landscape/plane", 600) for run in ("whole", "parts")
    ]
    np.testing.assert_array_equal(*pixels)


def test_each_probed_member_of_a_sweep_gets_its_own_path_plane(xor_config, tmp_path, drawn,
                                                               capsys):  # fmt: skip
    xor_config.num_seeds = 2
    xor_config.probes.landscape, xor_config.probes.landscape_directions = True, "path"
    train.train_and_evaluate(xor_config, str(tmp_path))
    assert len(drawn) == 2
    assert not np.array_equal(drawn[0]["path"], drawn[1]["path"])  # each seed its own path
    for m in range(2):
        assert read_image(tmp_path / f"seed={m}", "views/landscape/plane", 600).size
    assert "of their paths' variance) for 2 members in" in capsys.readouterr().out


def test_the_cnns_path_plane(tmp_path, drawn):
    """The CNN's weights (824,458 of them) at 3 log steps; its plane's centre
    is the line's a = 1, the final weights."""
    write_mnist(tmp_path / "mnist", n_train=32, n_test=8)
    config = mnist_cnn.get_config()
    config.data.data_dir = str(tmp_path / "mnist")
    config.batch_size, config.num_steps = 16, 4
    config.log_every = config.eval_every = config.picture_every = 2
    config.embedding_examples = 4
    config.probes.landscape, config.probes.landscape_directions = True, "path"
    config.probes.landscape_resolution = 5
    train.train_and_evaluate(config, str(tmp_path / "run"))
    (call,) = drawn
    assert call["path"].shape == (3, 2) and np.all(call["path"][-1] == 0)
    assert call["plane"][2, 2] == pytest.approx(call["line"][0][3], rel=1e-5)
    assert read_image(tmp_path / "run", "views/landscape/plane", 4).size


def test_unknown_directions_are_one_line(tmp_path):
    line = refused("--config=configs/xor.py", "--config.probes.landscape=true",
                   "--config.probes.landscape_directions=pca",
                   workdir=tmp_path / "runs")  # fmt: skip
    assert line == ("error: probes.landscape_directions must be one of random, path, got 'pca'")


def test_a_path_too_long_to_keep_is_one_line_before_any_step(tmp_path):
    """XOR's 65 weights at 160,001 log steps: 10,400,065 numbers; log_every 2
    keeps 80,001, 5,200,065 numbers."""
    line = refused("--config=configs/xor.py", "--config.probes.landscape=true",
                   "--config.probes.landscape_directions=path", "--config.num_steps=160000",
                   "--config.log_every=1", workdir=tmp_path / "runs")  # fmt: skip
    assert line == (
        "error: probes.landscape_directions=path keeps the 65 weights of 1 probed member at "
        "160,001 log steps: 10,400,065 numbers, more than the 10,000,000 a run may keep: raise "
        "log_every to 2 or more, or use probes.landscape_directions=random"
    )
