"""MLP: shapes, exact parameter counts, per-layer learnable activations."""

import jax
import jax.numpy as jnp
import ml_collections
import pytest
from flax import nnx

import nets
from nets import MLP, make_activation
from registry import UserError


def count(module):
    return sum(p.size for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


@pytest.mark.parametrize(
    "hidden, activation, expected",
    [
        ((), "relu", 2 * 1 + 1),  # a single-layer perceptron
        ((2,), "tanh", (2 * 2 + 2) + (2 * 1 + 1)),  # the classic 2-2-1 XOR net
        ((16,), "relu", (2 * 16 + 16) + (16 + 1)),
        ((4, 3), "sigmoid", (2 * 4 + 4) + (4 * 3 + 3) + (3 + 1)),
        # maxout adds slopes and intercepts: 2 pieces per unit, per layer.
        ((4, 3), "maxout", (2 * 4 + 4) + (4 * 3 + 3) + (3 + 1) + 2 * 2 * (4 + 3)),
    ],
)
def test_parameter_count_and_output_shape(hidden, activation, expected):
    mlp = MLP(2, hidden, 1, make_activation(activation), rngs=nnx.Rngs(0))
    assert count(mlp) == expected
    assert mlp(jnp.ones((7, 2))).shape == (7, 1)
    assert mlp.features(jnp.ones((7, 2))).shape == (7, hidden[-1] if hidden else 2)


def test_learnable_activation_has_own_parameters_per_layer():
    mlp = MLP(2, (4, 3), 1, make_activation("maxout"), rngs=nnx.Rngs(0))
    assert mlp.activations[0].slopes[...].shape == (4, 2)
    assert mlp.activations[1].slopes[...].shape == (3, 2)
    assert mlp.activations[0].slopes is not mlp.activations[1].slopes


def test_build_model_from_config_and_unknown_model():
    config = ml_collections.ConfigDict(
        {"name": "mlp", "hidden_sizes": (5,), "activation": "maxout", "maxout_pieces": 3}
    )
    model = nets.build_model(config, (2,), 3, nnx.Rngs(0))
    assert model.activations[0].slopes[...].shape == (5, 3)
    assert model(jnp.ones((1, 2))).shape == (1, 3)
    config.name = "transformer"
    with pytest.raises(UserError, match="unknown model 'transformer'.*mlp"):
        nets.build_model(config, (2,), 3, nnx.Rngs(0))


def test_models_registry_all_tested():
    tested = {"mlp", "cnn", "maxout_mlp"}  # cnn and maxout_mlp: tests/test_cnn.py
    assert set(nets.MODELS) == tested, "a new model needs tests in its own module"


def test_wrong_input_size_is_a_clear_assertion():
    mlp = MLP(2, (4,), 1, make_activation("relu"), rngs=nnx.Rngs(0))
    with pytest.raises(AssertionError, match="expects 2 input features"):
        mlp(jnp.ones((1, 3)))
