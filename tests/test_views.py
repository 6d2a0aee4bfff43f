"""What runs show besides loss: layer statistics, pictures, regression truth."""

import numpy as np
import pytest
from conftest import read_events, read_image, read_scalars

import train
from configs import activations, linear_regression, playground
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
    assert image_shape(tmp_path, "views/activation/tanh") == (160, 240, 3)
