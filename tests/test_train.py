"""train_and_evaluate end to end, read back from the event files."""

import math
import re

import numpy as np
import pytest
from conftest import assert_same_numbers, read_events, read_scalars, same_numbers_precision
from tensorboard.util import tensor_util

import train
from plumbing import command_line
from plumbing.failures import UserError


def test_xor_is_learned_and_logged(xor_config, tmp_path):
    final = train.train_and_evaluate(xor_config, str(tmp_path))
    accuracy = read_scalars(tmp_path, "train/accuracy")
    assert sorted(accuracy) == [200, 400, 600]
    assert accuracy[600] == 1.0 == final["train/accuracy"]
    eval_loss = read_scalars(tmp_path, "eval/loss")
    assert sorted(eval_loss) == [0, 300, 600]
    assert eval_loss[600] < 0.1 < eval_loss[0]  # a falling loss curve
    for tag in ("grad_norm", "update_norm", "param_norm"):
        assert 0 < read_scalars(tmp_path, f"train/{tag}")[600] < 1e3
    # The loss is logged for the same weights as param_norm: those before update 600.
    error = read_scalars(tmp_path, "train/classification_error")[600]
    assert error == 1 - accuracy[600]
    assert read_scalars(tmp_path, "train/learning_rate")[600] == pytest.approx(0.05)


def test_a_plateau_is_one_line_that_says_so(xor_config, tmp_path, capsys):
    xor_config.num_steps, xor_config.log_every = 2000, 100
    train.train_and_evaluate(xor_config, str(tmp_path))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step")]
    values = [re.search(r"loss \S+  accuracy \S+", line).group() for line in lines]  # no speed
    assert lines[-1].startswith("step 2000  loss 0.0000")  # the last is always printed
    quiet = [i for i, line in enumerate(lines) if "quiet until it changes" in line]
    assert quiet and len(lines) < 20  # of 20 log steps
    for i in quiet:  # the plateau's first repeat, then nothing until the values change
        assert values[i] == values[i - 1]
        assert values[i + 1] != values[i] or lines[i + 1] == lines[-1]
        assert f"the same since step {lines[i - 1].split()[1]}:" in lines[i]
    assert sorted(read_scalars(tmp_path, "train/loss")) == list(range(100, 2001, 100))  # all logged


def test_histograms_of_every_parameter_and_hparams(xor_config, tmp_path):
    train.train_and_evaluate(xor_config, str(tmp_path))
    events = read_events(tmp_path)
    histograms = set(events.PluginTagToContent("histograms"))
    assert histograms == {f"weights/layers/{i}/{p}" for i in (0, 1) for p in ("kernel", "bias")}
    assert sorted(e.step for e in events.Tensors("weights/layers/0/kernel")) == [0, 200, 400, 600]
    assert events.PluginTagToContent("hparams"), "no HPARAMS summary"
    hparams = events.summary_metadata["_hparams_/session_start_info"].plugin_data.content
    assert b"model.activation" in hparams and b"optimizer.learning_rate" in hparams
    assert (tmp_path / "config.json").read_text().count('"activation": "relu"') == 1


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "maxout"])
def test_xor_solved_by_each_activation(xor_config, tmp_path, activation):
    xor_config.model.activation = activation
    assert train.train_and_evaluate(xor_config, str(tmp_path))["train/accuracy"] == 1.0


def test_step_layer_learns_only_with_straight_through(xor_config, tmp_path):
    def first_layer_moved(run_dir):
        first = read_events(run_dir).Tensors("weights/layers/0/kernel")
        buckets = [tensor_util.make_ndarray(e.tensor_proto) for e in first]
        return not np.array_equal(buckets[0], buckets[-1])

    xor_config.model.activation = "step"
    train.train_and_evaluate(xor_config, str(tmp_path / "a"))
    assert not first_layer_moved(tmp_path / "a")  # zero gradient through the step
    xor_config.model.straight_through = True
    assert train.train_and_evaluate(xor_config, str(tmp_path / "b"))["train/accuracy"] == 1.0
    assert first_layer_moved(tmp_path / "b")


def test_divergence_stops_naming_the_step(xor_config, tmp_path):
    xor_config.optimizer.name = "sgd"
    xor_config.optimizer.learning_rate = 1e9  # overflows at the 3rd update
    with pytest.raises(train.Diverged, match=r"diverged at step 3: update_norm.*learning_rate"):
        train.train_and_evaluate(xor_config, str(tmp_path))
    # The compiled loop stopped inside its 200-step chunk; the bad values are
    # logged at the step where they appeared.
    norms = read_scalars(tmp_path, "train/update_norm")
    assert list(norms) == [3] and not math.isfinite(norms[3])


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("num_steps", 0, "num_steps must be > 0"),
        ("log_every", -1, "log_every must be > 0"),
        ("optimizer.learning_rate", 0.0, "learning_rate must be a number > 0"),
        ("optimizer.learning_rate", float("nan"), "learning_rate must be a number > 0"),
        ("model.hidden_sizes", (4, 0), "hidden_sizes must be positive"),
        ("model.maxout_pieces", 0, "maxout_pieces must be >= 1"),
        ("loss_power", 0.5, "loss_power must be a number >= 1"),
        ("model.activation", "sigmoidd", "unknown activation 'sigmoidd'"),
        ("loss", "hinge", "unknown loss 'hinge'"),
        ("loss", "classification_error", "gradient is zero"),
        ("optimizer.name", "lbfgs", "unknown optimizer 'lbfgs'"),
        ("optimizer.schedule", "step", "unknown schedule 'step'"),
        ("data.name", "mnist2", "unknown dataset 'mnist2'"),
        ("model.name", "cnn2", "unknown model 'cnn2'"),
    ],
)
def test_bad_config_fails_before_any_file(xor_config, tmp_path, key, value, message):
    *parents, leaf = key.split(".")
    node = xor_config
    for parent in parents:
        node = node[parent]
    node[leaf] = value
    with pytest.raises(UserError, match=message):
        train.train_and_evaluate(xor_config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_run_names_say_how_runs_differ():
    assert command_line.run_name("configs/xor.py", {}) == "xor/default"
    name = command_line.run_name(
        "configs/xor.py:quick",
        {"optimizer.learning_rate": 0.5, "model.activation": "tanh", "model.hidden_sizes": (4, 4)},
    )
    assert name == (
        "xor-quick/model.activation=tanh,model.hidden_sizes=4x4,optimizer.learning_rate=0.5"
    )
    assert command_line.run_name("c.py", {"data.name": "a b/ü"}) == "c/data.name=a_b__"
    assert command_line.run_name("c.py", {"model.hidden_sizes": ()}) == "c/model.hidden_sizes=none"


def test_run_directory_is_reused_unless_new_run(tmp_path):
    first, created = command_line.make_run_dir(str(tmp_path), "xor/default")
    assert first.endswith("xor/default") and created
    assert command_line.make_run_dir(str(tmp_path), "xor/default") == (first, False)  # resume
    second, created = command_line.make_run_dir(str(tmp_path), "xor/default", new_run=True)
    assert second.endswith("xor/default,run=2") and created


def test_workdir_that_is_a_file_or_empty(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot write to --workdir"):
        command_line.make_run_dir(str(tmp_path / "file"), "xor/default")
    with pytest.raises(UserError, match="--workdir is empty"):
        command_line.make_run_dir("", "xor/default")


def test_is_time():
    assert [s for s in range(1, 12) if train.is_time(s, 5, 11)] == [5, 10, 11]


def test_same_seed_same_numbers(xor_config, tmp_path):
    a = train.train_and_evaluate(xor_config, str(tmp_path / "a"))
    b = train.train_and_evaluate(xor_config, str(tmp_path / "b"))
    assert a == b
    xor_config.seed = 1
    assert train.train_and_evaluate(xor_config, str(tmp_path / "c")) != a
    losses_a, losses_b = (read_scalars(tmp_path / r, "train/loss") for r in "ab")
    assert losses_a == losses_b


def test_chunking_does_not_change_a_bit(xor_config, tmp_path):
    """One compiled call per 300 steps or per 10: the same numbers (bitwise
    on CPU: conftest.assert_same_numbers)."""
    with same_numbers_precision():
        coarse = train.train_and_evaluate(xor_config, str(tmp_path / "coarse"))
        xor_config.log_every = xor_config.eval_every = 10
        fine = train.train_and_evaluate(xor_config, str(tmp_path / "fine"))
    assert_same_numbers(fine, coarse)
