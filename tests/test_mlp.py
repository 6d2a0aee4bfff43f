"""MLP: shapes, exact parameter counts, per-layer learnable activations."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

import nets
from nets import MLP, kernels, make_activation
from plumbing.failures import UserError


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


def primitives(f, *args):
    return str(jax.make_jaxpr(f)(*args))


def test_small_layer_products_are_a_multiply_and_a_sum_with_the_dots_numbers():
    numbers = (((1,), (0,)), ((), ()))
    x, kernel = (
        jax.random.normal(jax.random.key(0), (4, 2)),
        jax.random.normal(jax.random.key(1), (2, 16)),
    )

    def loss(dot):
        return lambda x, kernel: (dot(x, kernel, numbers) ** 2).sum()

    ours, theirs = kernels.dot_general, jax.lax.dot_general
    with jax.default_matmul_precision("highest"):  # no TF32 off CPU: the same math
        np.testing.assert_allclose(ours(x, kernel, numbers), x @ kernel, rtol=1e-6, atol=1e-6)
        for a, b in zip(
            jax.grad(loss(ours), (0, 1))(x, kernel),
            jax.grad(loss(theirs), (0, 1))(x, kernel),
            strict=True,
        ):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert "dot_general" not in primitives(lambda x, k: ours(x, k, numbers), x, kernel)
    big = jnp.ones((500, 16))  # 500 x 16 x 16 multiply-adds: the dot is faster
    assert "dot_general" in primitives(lambda x, k: ours(x, k, numbers), big, jnp.ones((16, 16)))


def test_the_plain_mlp_uses_dots_and_build_model_passes_the_kernels(monkeypatch):
    config = ml_collections.ConfigDict({"name": "mlp", "hidden_sizes": (16,), "activation": "relu"})
    x = jnp.ones((4, 2))
    plain = MLP(2, (16,), 1, make_activation("relu"), rngs=nnx.Rngs(0))
    assert primitives(plain, x).count("dot_general") == 2
    built = nets.build_model(config, (2,), 1, nnx.Rngs(0), kernels=kernels.PLAIN)
    assert primitives(built, x) == primitives(plain, x)
    fast = nets.build_model(config, (2,), 1, nnx.Rngs(0), kernels=kernels.CPU)
    assert "dot_general" not in primitives(fast, x)
    with jax.default_matmul_precision("highest"):  # no TF32 off CPU: the same math
        np.testing.assert_allclose(fast(x), plain(x), rtol=1e-6, atol=1e-6)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")  # None: for_backend's choice
    assert primitives(nets.build_model(config, (2,), 1, nnx.Rngs(0)), x) == primitives(plain, x)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU kernels are CPU's default")
def test_on_cpu_the_default_mlp_multiplies_and_sums_small_layers():
    config = ml_collections.ConfigDict({"name": "mlp", "hidden_sizes": (16,), "activation": "relu"})
    model = nets.build_model(config, (2,), 1, nnx.Rngs(0))
    assert "dot_general" not in primitives(model, jnp.ones((4, 2)))


def test_an_activation_per_layer_from_the_command_line_form():
    model = ml_collections.ConfigDict(
        {"name": "mlp", "hidden_sizes": (3, 2, 2), "activation": "(relu, tanh, maxout)"}
    )
    mlp = nets.build_model(model, (2,), 1, nnx.Rngs(0))
    assert [type(a).__name__ for a in mlp.activations] == ["ReLU", "Tanh", "Maxout"]
    z = jnp.linspace(-2.0, 2.0, 6).reshape(2, 3)
    np.testing.assert_array_equal(mlp.activations[0](z), jax.nn.relu(z))
    model.activation = "(relu, tanh)"  # two names for three layers
    with pytest.raises(UserError, match=r"names 2 activations, but the model has 3 hidden"):
        nets.build_model(model, (2,), 1, nnx.Rngs(0))
    model.activation = "(relu, tahn, relu)"
    with pytest.raises(UserError, match=r"unknown activation 'tahn'. Did you mean 'tanh'"):
        nets.build_model(model, (2,), 1, nnx.Rngs(0))


def test_dropout_only_in_training_and_from_its_key():
    model = ml_collections.ConfigDict(
        {"name": "mlp", "hidden_sizes": (64,), "activation": "tanh", "dropout": 0.5}
    )
    mlp = nets.build_model(model, (2,), 1, nnx.Rngs(0))
    x = jnp.ones((4, 2))
    key = jax.random.key(1)
    ((_, plain),) = mlp.hidden(x)
    ((_, dropped),) = mlp.hidden(x, dropout_key=key)
    zeroed = np.asarray(dropped) == 0
    assert 0.3 < zeroed.mean() < 0.7  # about half the units, in training
    np.testing.assert_allclose(np.asarray(dropped)[~zeroed], 2 * np.asarray(plain)[~zeroed])
    np.testing.assert_array_equal(mlp.hidden(x, dropout_key=key)[0][1], dropped)  # same key
    assert not np.array_equal(mlp.hidden(x, dropout_key=jax.random.key(2))[0][1], dropped)
    model.dropout = 0.0  # evaluation (no key) sees the network without dropout
    np.testing.assert_array_equal(mlp(x), nets.build_model(model, (2,), 1, nnx.Rngs(0))(x))
