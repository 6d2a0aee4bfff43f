"""The gate experiments: fixed truth tables, the delta rule, XOR's failure."""

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import read_events, read_image, read_scalars
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util

from configs import gates as gates_config
from configs import xor_from_gates
from dashboards import network, pictures
from plumbing.failures import UserError
from training import gates


def text(run_dir, tag):
    event = read_events(run_dir).Tensors(tag)[-1]
    return tensor_util.make_ndarray(event.tensor_proto).item().decode()


def delta_config(gate, **overrides):
    config = gates_config.get_config(gate)
    config.mode = "delta"
    config.update(overrides)
    return config


@pytest.mark.parametrize("gate", ["or", "and", "nand"])
def test_fixed_gates_are_exact(gate, tmp_path, capsys):
    result = gates.run(gates_config.get_config(gate), str(tmp_path))
    assert result == {"accuracy": 1.0, "epochs": 0}
    assert "4/4 right" in capsys.readouterr().out
    table = text(tmp_path, "truth_table")
    assert "WRONG" not in table and table.count("right") == 4
    # TEXT reads Markdown: the rule's asterisks are escaped, or they become italics
    assert r"y = 1 if 0.5\*x1 + 0.5\*x2" in table
    # HPARAMS: its own row, named as its run: the gate's fields and its accuracy
    events = read_events(tmp_path)
    content = events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    start = hparams_metadata.parse_session_start_info_plugin_data(content)
    assert start.group_name == tmp_path.name and start.hparams["gate"].string_value == gate
    content = events.SummaryMetadata("_hparams_/experiment").plugin_data.content
    experiment = hparams_metadata.parse_experiment_plugin_data(content)
    assert [m.name.tag for m in experiment.metric_infos] == ["train/accuracy", "train/wrong"]
    assert "experiment" not in [h.name for h in experiment.hparam_infos]


def test_xor_from_gates_truth_table_with_hidden_outputs(tmp_path, capsys):
    result = gates.run(xor_from_gates.get_config(), str(tmp_path))
    assert result["accuracy"] == 1.0
    rows = [
        r
        for r in text(tmp_path, "truth_table").splitlines()
        if r.startswith("| 0") or r.startswith("| 1")
    ]
    # x1 | x2 | OR | NAND | y | target
    assert [r.split(" | ")[:6] for r in rows] == [
        ["| 0", "0", "0", "1", "0", "0"],
        ["| 0", "1", "1", "1", "1", "1"],
        ["| 1", "0", "1", "1", "1", "1"],
        ["| 1", "1", "1", "0", "0", "0"],
    ]
    image = read_events(tmp_path).Tensors("views/decision_regions")[0]
    width, height = tensor_util.make_ndarray(image.tensor_proto)[:2]
    assert (int(width), int(height)) == (200, 200)
    _hidden_units_are_or_and_nand(read_image(tmp_path, "views/network/train"))


def _hidden_units_are_or_and_nand(image):
    """The network picture's hidden heatmaps are OR and NAND, its output XOR = AND of them."""
    place = network.layout(2, [2])
    span = gates.HI - gates.LO

    def colour(top, left, side, x1, x2):  # blue = 1, white = 0, orange = output 0
        r = top + int((gates.HI - x2) / span * (side - 1))
        c = left + int((x1 - gates.LO) / span * (side - 1))
        red, _, blue = image[r, c].astype(int)
        return "blue" if blue > red + 40 else "orange" if red > blue + 40 else "white"

    points = [(0, 0), (0, 1), (1, 0), (1, 1)]
    (or_top, or_left), (nand_top, nand_left) = place.units[1]
    side = place.panel
    assert [colour(or_top, or_left, side, *p) for p in points] == ["white"] + ["blue"] * 3
    assert [colour(nand_top, nand_left, side, *p) for p in points] == ["blue"] * 3 + ["white"]
    top, left, bottom, _ = place.output
    between = [(-0.25, -0.25), (0.5, 0.5), (1.25, 1.25)]  # off the points' discs
    assert [colour(top, left, bottom - top, *p) for p in between] == ["orange", "blue", "orange"]


def test_one_delta_rule_epoch_by_hand():
    # AND from zeros, lr 0.1: (0,0) fires wrongly -> theta 0.1; (0,1), (1,0)
    # are right; (1,1) misses -> w (0.1, 0.1), theta 0.
    x = jnp.asarray(gates.INPUTS)
    w, theta, wrong, (ws, thetas) = gates.delta_rule_epoch(
        jnp.zeros(2), jnp.float32(0), x, jnp.asarray(gates.TARGETS["and"]), jnp.float32(0.1)
    )
    np.testing.assert_allclose(w, [0.1, 0.1], atol=1e-7)
    assert float(theta) == pytest.approx(0.0, abs=1e-7)
    assert np.asarray(wrong).tolist() == [True, False, False, True]
    np.testing.assert_allclose(ws, [[0, 0], [0, 0], [0, 0], [0.1, 0.1]], atol=1e-7)
    np.testing.assert_allclose(thetas, [0.1, 0.1, 0.1, 0.0], atol=1e-7)


@pytest.mark.parametrize("gate", ["or", "and", "nand"])
@pytest.mark.parametrize("seed, init_scale", [(0, 0.0), (1, 0.5), (2, 0.5), (3, 0.5)])
def test_delta_rule_learns_separable_gates_within_10_epochs(gate, seed, init_scale, tmp_path):
    result = gates.run(delta_config(gate, seed=seed, init_scale=init_scale), str(tmp_path))
    assert result["accuracy"] == 1.0 and result["epochs"] <= 10
    accuracy = read_scalars(tmp_path, "train/accuracy")
    assert accuracy[result["epochs"]] == 1.0 and max(accuracy) == result["epochs"]
    assert set(read_scalars(tmp_path, "perceptron/theta")) == set(accuracy)


def test_delta_rule_never_solves_xor(tmp_path, capsys):
    result = gates.run(delta_config("xor", max_epochs=40, init_scale=0.5), str(tmp_path))
    assert result["epochs"] == 40
    accuracy = read_scalars(tmp_path, "train/accuracy")
    assert len(accuracy) == 41 and max(accuracy.values()) <= 0.75
    assert "No straight line separates XOR" in capsys.readouterr().out
    assert "No straight line separates XOR" in text(tmp_path, "truth_table")
    assert [e.step for e in read_events(tmp_path).Tensors("views/decision_line")] == list(
        range(1, 41)
    )


def test_the_xor_picture_shows_the_line_swing_within_every_epoch(tmp_path):
    """From zeros, each epoch from the third on goes: all 0, the diagonal
    x2 >= x1, all 1, x1 <= 0, and back; every point wrong on the way."""
    gates.run(gates_config.get_config("xor"), str(tmp_path))
    image = read_image(tmp_path, "views/decision_line", 3)
    assert pictures.FONT * pictures.shown_scale(image.shape) >= 12
    panel, gap = 80, 4  # gates.updates_picture

    def side(i, x1, x2):  # 'blue' = output 1, 'orange' = output 0, in panel i at (x1, x2)
        span = gates.HI - gates.LO
        r = int((gates.HI - x2) / span * (panel - 1))
        c = i * (panel + gap) + int((x1 - gates.LO) / span * (panel - 1))
        red, _, blue = image[r, c].astype(int)
        return "blue" if blue > red else "orange"

    probes = [(-0.3, 0.5), (0.5, -0.3), (1.3, 0.5), (0.5, 1.3)]  # off the points and lines
    assert [[side(i, *p) for p in probes] for i in range(4)] == [
        ["orange"] * 4,  # after (0, 0): w = (-0.1, 0), theta 0.1
        ["blue", "orange", "orange", "blue"],  # after (0, 1): x2 >= x1
        ["blue"] * 4,  # after (1, 0)
        ["blue", "orange", "orange", "orange"],  # after (1, 1): x1 <= 0
    ]
    text = image[panel:].astype(int)
    red = (text[..., 0] > 150) & (text[..., 1] < 120)  # 'wrong', in red, under every panel
    for i in range(4):
        assert red[:, i * (panel + gap) : (i + 1) * (panel + gap) - gap].any()
    assert np.array_equal(image, read_image(tmp_path, "views/decision_line", 50)), "a cycle"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"gate": "xr"}, "unknown gate 'xr'. Did you mean 'xor'"),
        ({"mode": "deltta"}, "unknown mode 'deltta'"),
        ({"mode": "delta", "learning_rate": 0.0}, "learning_rate must be a number > 0"),
        ({"mode": "delta", "max_epochs": 0}, "max_epochs must be >= 1"),
    ],
)
def test_bad_settings_are_clear_errors(overrides, message, tmp_path):
    config = gates_config.get_config("and")
    config.update(overrides)
    with pytest.raises(UserError, match=message):
        gates.run(config, str(tmp_path))
