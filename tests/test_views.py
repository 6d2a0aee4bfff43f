"""What runs show besides loss: layer statistics, pictures, regression truth."""

import numpy as np
import pytest
from conftest import read_events, read_image, read_scalars

import train
from configs import activations, linear_regression, playground
from dashboards import network, pictures
from plumbing.failures import UserError


def image_shape(run_dir, tag):
    """(height, width, 3) of the last image under `tag`."""
    return read_image(run_dir, tag).shape


def short(config, steps):
    config.num_steps = steps
    config.log_every = config.eval_every = config.picture_every = steps
    return config


@pytest.mark.parametrize("true_w", [(2.0,), (1.0, -3.0, 0.5)])
def test_linear_regression_recovers_w_and_b(true_w, tmp_path, capsys):
    config = linear_regression.get_config()
    config.data.true_w = true_w
    config.num_steps = 300
    final = train.train_and_evaluate(config, str(tmp_path))
    assert final["eval/mse"] < 0.02  # the noise's variance is 0.01
    for i, w in enumerate(true_w):
        learned = read_scalars(tmp_path, f"weights/layers/0/kernel/{i}")[300]
        assert learned == pytest.approx(w, abs=0.06)
    assert read_scalars(tmp_path, "weights/layers/0/bias/0")[300] == pytest.approx(0.5, abs=0.05)
    assert "weights/layers/0/kernel" in read_events(tmp_path).Tags()["tensors"]  # histogram
    assert f"| W[0] | {true_w[0]:.4f} |" in capsys.readouterr().out


def test_regression_refuses_a_classification_loss(tmp_path):
    config = linear_regression.get_config()
    config.loss = "bce"
    with pytest.raises(UserError, match="loss 'bce' needs class labels.*mse, sse"):
        train.train_and_evaluate(config, str(tmp_path))


def ten_layer_ratio(activation, tmp_path):
    """|grad of the first layer| / |grad of the last| after 10 steps."""
    config = short(activations.get_config(), 10)
    config.model.hidden_sizes = (16,) * 10
    config.model.activation = activation
    train.train_and_evaluate(config, str(tmp_path / activation))
    first = read_scalars(tmp_path / activation, "train/grad_norm/layers/0")[10]
    last = read_scalars(tmp_path / activation, "train/grad_norm/layers/10")[10]
    return first / last


def test_sigmoid_gradients_vanish_in_a_deep_stack_and_relus_do_not(tmp_path):
    assert ten_layer_ratio("sigmoid", tmp_path) < 1e-3  # measured 1.4e-6
    assert ten_layer_ratio("relu", tmp_path) > 0.1  # measured 0.48


@pytest.mark.parametrize("activation, dead", [("relu", "most"), ("leaky_relu", "none")])
def test_dead_units_under_a_huge_learning_rate(activation, dead, tmp_path):
    config = short(activations.get_config(), 20)
    config.model.hidden_sizes = (16, 16, 16)
    config.model.activation = activation
    config.optimizer.name, config.optimizer.learning_rate = "sgd", 10.0
    train.train_and_evaluate(config, str(tmp_path))
    fractions = [read_scalars(tmp_path, f"views/layers/{i}/dead")[20] for i in range(3)]
    if dead == "most":
        assert np.mean(fractions) > 0.5, fractions  # measured 0, 0.69, 1.0
    else:
        assert fractions == [0.0, 0.0, 0.0]


def test_saturation_and_layer_histograms(tmp_path):
    config = short(activations.get_config(), 5)
    config.model.hidden_sizes = (8, 8)
    config.model.activation = "maxout"
    train.train_and_evaluate(config, str(tmp_path))
    tags = read_events(tmp_path).Tags()["tensors"]
    for i in range(2):
        for name in ("preactivations", "activations", "maxout_winner"):
            assert f"views/layers/{i}/{name}" in tags
        assert sorted(read_scalars(tmp_path, f"views/layers/{i}/saturated")) == [0, 5]  # each log
    assert image_shape(tmp_path, "views/activation/maxout_learned/layers_0") == (80, 8 * 82, 3)


@pytest.mark.parametrize("dataset", ["spiral", "circles"])
def test_decision_boundary_pictures(dataset, tmp_path):
    config = short(playground.get_config(dataset), 20)
    config.picture_every = 10
    train.train_and_evaluate(config, str(tmp_path))
    events = read_events(tmp_path)
    assert [e.step for e in events.Tensors("views/decision_boundary/train")] == [0, 10, 20]
    assert image_shape(tmp_path, "views/decision_boundary/eval") == (200, 200, 3)
    assert image_shape(tmp_path, "views/activation/tanh") == (224, 336, 3)  # pictures.chart


GREEN, RED = (pictures.CLASS_COLORS[i].astype(np.uint8) for i in (2, 3))  # fitted, true line


def line_rows(image, color) -> dict[int, float]:
    """{column: mean row} of the pixels of exactly `color`."""
    rows, cols = np.nonzero((image == color).all(axis=-1))
    return {c: rows[cols == c].mean() for c in np.unique(cols)}


def test_linear_regression_draws_its_fit_as_it_learns(tmp_path):
    config = short(linear_regression.get_config(), 40)
    config.picture_every = 20
    train.train_and_evaluate(config, str(tmp_path))
    events = read_events(tmp_path)
    assert [e.step for e in events.Tensors("views/fit/train")] == [0, 20, 40]

    def gap(step):  # how far the fitted line is drawn from the true one, in pixels
        image = read_image(tmp_path, "views/fit/train", step)
        fitted, true = line_rows(image, GREEN), line_rows(image, RED)
        shared = [c for c in fitted if c in true]
        assert len(shared) > 50, "both lines are drawn across the chart"
        return np.median([abs(fitted[c] - true[c]) for c in shared])

    assert gap(0) > 20 and gap(40) < 3  # from W = 0 (a flat line) to the true one
    data_points = read_image(tmp_path, "views/fit/train") == pictures.BLUE.astype(np.uint8)
    assert data_points.all(axis=-1).sum() > 50 * 10, "50 dots"


def test_a_sweep_draws_each_members_fit_once(tmp_path):
    config = short(linear_regression.get_config(), 20)
    config.data.true_w = (1.0, -3.0)  # two inputs: predictions against targets
    config.sweep.optimizer.learning_rate = (0.001, 0.01)
    train.train_and_evaluate(config, str(tmp_path))
    for point in ("learning_rate=0.001", "learning_rate=0.01"):
        member = tmp_path / point / "seed=0"
        assert [e.step for e in read_events(member).Tensors("views/fit/train")] == [0, 20]
        assert (
            "views/fit/train" not in read_events(tmp_path / point / "aggregate").Tags()["tensors"]
        )


def test_a_deep_networks_picture_is_drawn_in_bands(tmp_path):
    config = short(activations.get_config(), 1)  # 8 hidden layers of 16
    train.train_and_evaluate(config, str(tmp_path))
    tags = [t for t in read_events(tmp_path).Tags()["tensors"] if t.startswith("views/network/")]
    bands = ["layers_1-3", "layers_4-6", "layers_7-8"]
    assert sorted(tags) == sorted(
        f"views/network/{s}/{b}" for s in ("train", "eval") for b in bands
    )
    for band in bands:  # was one picture 1,676 px wide
        shape = image_shape(tmp_path, f"views/network/train/{band}")
        assert shape[0] <= network.SIZE[0] and shape[1] <= network.SIZE[1]
        assert pictures.FONT * pictures.shown_scale(shape) >= 12


def test_buckets_are_tensorboards():
    """The device's buckets are those TensorBoard's own histogram summary makes."""
    from tensorboard.plugins.histogram.summary_v2 import histogram_pb
    from tensorboard.util import tensor_util

    from dashboards import views

    rng = np.random.default_rng(0)
    for data in (rng.normal(size=1000), np.full(7, 0.5), np.arange(4.0)):
        data = data.astype(np.float32)
        reference = tensor_util.make_ndarray(histogram_pb("w", data).value[0].tensor)
        counted = np.asarray(views.buckets(data, np.ones(len(data), np.float32)))
        np.testing.assert_array_equal(counted[:, 2], reference[:, 2])
        np.testing.assert_allclose(counted[:, :2], reference[:, :2], rtol=1e-6, atol=1e-6)
    # a member left out (diverged) counts nothing and sets no edge
    counted = np.asarray(views.buckets(np.float32([0, 1, 100]), np.float32([1, 1, 0])))
    assert counted[:, 2].sum() == 2 and counted[-1, 1] == 1


def test_a_sweep_without_member_runs_has_each_points_weight_histograms(xor_config, tmp_path):
    """Counted where the weights are, over the point's seeds together, in its aggregate run."""
    from tensorboard.plugins.histogram.summary_v2 import histogram_pb
    from tensorboard.util import tensor_util

    from training.checkpoints import load_run

    xor_config.num_seeds, xor_config.max_member_runs = 3, 2
    xor_config.sweep.optimizer.learning_rate = (0.01, 0.1)
    train.train_and_evaluate(xor_config, str(tmp_path))
    for point in ("learning_rate=0.01", "learning_rate=0.1"):
        events = read_events(tmp_path / point / "aggregate").Tensors("weights/layers/0/kernel")
        assert [e.step for e in events] == [0, 200, 400, 600]
        kernels = [load_run(str(tmp_path / point / f"seed={s}"))[0].layers[0].kernel[...]
                   for s in range(3)]  # fmt: skip
        reference = histogram_pb("w", np.concatenate([np.ravel(k) for k in kernels]))
        reference = tensor_util.make_ndarray(reference.value[0].tensor)
        written = tensor_util.make_ndarray(events[-1].tensor_proto)
        np.testing.assert_array_equal(written[:, 2], reference[:, 2])  # 3 seeds x 2 x 16
        np.testing.assert_allclose(written[:, :2], reference[:, :2], rtol=1e-5, atol=1e-6)
