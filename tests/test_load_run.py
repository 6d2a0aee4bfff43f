"""load_run: a trained run's network, back from its directory, on new inputs."""

import json
import os
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

import data
import nets
import train
from plumbing.failures import UserError
from training import losses
from training.checkpoints import load_run

XOR = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


def eval_loss_and_accuracy(model, config) -> tuple[float, float]:
    """What the run's evaluation computes, from the loaded model."""
    dataset = data.load_dataset(config.data)
    logits = model(dataset.x_eval)
    loss = losses.get_loss(config.loss, config.loss_power)(logits, dataset.y_eval)
    right = nets.predictions(logits) == dataset.y_eval
    return float(loss), float(jnp.mean(right))


def test_a_loaded_run_classifies_as_it_was_evaluated(xor_config, tmp_path):
    final = train.train_and_evaluate(xor_config, str(tmp_path))
    model, config = load_run(str(tmp_path))
    assert config.model.activation == "relu" and config.num_steps == 600
    loss, accuracy = eval_loss_and_accuracy(model, config)
    assert loss == pytest.approx(final["eval/loss"], rel=1e-4, abs=1e-7)
    assert accuracy == final["eval/accuracy"] == 1.0
    assert nets.predictions(model(XOR)).tolist() == [0, 1, 1, 0]
    near = jnp.array([[0.1, 0.9], [0.9, 0.1], [0.05, 0.0], [0.95, 1.0]])  # new points
    assert nets.predictions(model(near)).tolist() == [1, 1, 0, 0]
    assert np.all((nets.probabilities(model(near)) > 0.5) == jnp.array([[1], [1], [0], [0]]))


def test_a_sweep_member_is_its_own_network(xor_config, tmp_path):
    """Two programs (one per activation) of two members each, in checkpoints
    at the sweep's root; each member's folder only holds its TensorBoard run."""
    xor_config.num_steps = 300
    xor_config.num_seeds = 2
    xor_config.sweep.model.activation = ("relu", "tanh")
    final = train.train_and_evaluate(xor_config, str(tmp_path))
    assert not os.path.exists(tmp_path / "activation=tanh" / "checkpoints")
    shutil.rmtree(tmp_path / "activation=tanh" / "seed=1")  # as above max_member_runs
    losses_seen = set()
    for activation in ("relu", "tanh"):
        for seed in (0, 1):
            name = f"activation={activation}/seed={seed}"
            model, config = load_run(str(tmp_path / name))
            assert (config.model.activation, config.seed, config.num_seeds) == (activation, seed, 1)
            loss, accuracy = eval_loss_and_accuracy(model, config)
            assert loss == pytest.approx(final[f"{name}/eval/loss"], rel=1e-4, abs=1e-7)
            assert accuracy == final[f"{name}/eval/accuracy"]
            losses_seen.add(loss)
    assert len(losses_seen) == 4  # four networks, not one four times


def test_what_is_not_a_trained_network_is_one_line(xor_config, tmp_path):
    xor_config.num_steps = 10
    xor_config.num_seeds = 2
    seeds = tmp_path / "seeds"
    train.train_and_evaluate(xor_config, str(seeds))  # a sweep of seeds
    unsaved = tmp_path / "unsaved"  # a run stopped before its first checkpoint
    unsaved.mkdir()
    single = json.loads((seeds / "config.json").read_text()) | {"num_seeds": 1}
    (unsaved / "config.json").write_text(json.dumps(single))
    cases = {
        tmp_path / "nowhere": "does not exist",
        tmp_path: "is not a trained run: no config.json",
        seeds: f"is a sweep of 2 networks: load one of them, e.g. {seeds}/seed=0",
        seeds / "aggregate": "has no network 'aggregate'",
        unsaved: "holds no checkpoint yet: a run saves one every checkpoint_every=",
    }
    for path, message in cases.items():
        with pytest.raises(UserError) as error:
            load_run(str(path))
        assert message in str(error.value) and "\n" not in str(error.value)
