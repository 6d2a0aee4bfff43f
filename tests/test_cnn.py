"""The image models: the Flax-examples CNN and the maxout network."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

import nets
from plumbing.failures import UserError


def count(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def model_config(**fields):
    config = ml_collections.ConfigDict(
        {"name": "cnn", "hidden_sizes": (240, 240), "activation": "relu", "maxout_pieces": 5}
    )
    config.update(fields)
    return config


def test_cnn_shapes_and_exact_parameter_count():
    cnn = nets.build_model(model_config(), (28, 28, 1), 10, nnx.Rngs(0))
    assert count(cnn) == 320 + 18_496 + 803_072 + 2_570  # = 824,458
    x = jnp.zeros((3, 28, 28, 1))
    assert cnn(x).shape == (3, 10) and cnn.features(x).shape == (3, 256)


@pytest.mark.parametrize("size", [(28, 28), (7, 9)])
def test_pooling_equals_flax_avg_pool_values_and_gradients(size):
    x = jax.random.normal(jax.random.key(0), (2, *size, 3))
    flax_pool = lambda x: nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2))  # noqa: E731
    ours, theirs = nets.cnn.avg_pool_2x2(x), flax_pool(x)
    assert ours.shape == theirs.shape == (2, size[0] // 2, size[1] // 2, 3)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    weights = jax.random.normal(jax.random.key(1), ours.shape)
    grad = lambda pool: jax.grad(lambda x: jnp.sum(pool(x) * weights))(x)  # noqa: E731
    np.testing.assert_allclose(grad(nets.cnn.avg_pool_2x2), grad(flax_pool), rtol=1e-6)


@pytest.mark.parametrize(
    "channels, kernel_size",
    [(1, (3, 3)), (3, (3, 3)), (5, (3, 3)), (2, (2, 2)), (1, (5, 4))],
)
@pytest.mark.parametrize("layer", [nets.cnn.conv_as_matmul, nets.cnn.conv_with_bias])
def test_conv_layers_equal_nnx_conv_in_values_and_gradients(layer, channels, kernel_size):
    conv = nnx.Conv(channels, 6, kernel_size=kernel_size, rngs=nnx.Rngs(0))
    conv.bias[...] = jax.random.normal(jax.random.key(1), (6,))  # not the initial zeros
    x = jax.random.normal(jax.random.key(2), (2, 7, 6, channels))
    cotangent = jax.random.normal(jax.random.key(3), (2, 7, 6, 6))

    def pulled_back(f):
        out, pullback = jax.vjp(f, x, conv.kernel[...], conv.bias[...])
        return out, *pullback(cotangent)

    def flax_conv(x, kernel, bias):
        copy = nnx.clone(conv)
        copy.kernel[...], copy.bias[...] = kernel, bias
        return copy(x)

    ours, theirs = pulled_back(layer), pulled_back(flax_conv)
    for name, a, b in zip(["output", "d input", "d kernel", "d bias"], ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)


def test_cnn_convolves_its_first_layer_as_a_matmul_and_equals_nnx_conv():
    cnn = nets.build_model(model_config(), (28, 28, 1), 10, nnx.Rngs(0))
    images = jax.random.normal(jax.random.key(0), (2, 28, 28, 1))
    features = jax.random.normal(jax.random.key(1), (2, 14, 14, 32))
    for conv, x in [(cnn.conv1, images), (cnn.conv2, features)]:
        np.testing.assert_allclose(nets.cnn.conv_layer(conv, x), conv(x), rtol=1e-5, atol=1e-5)
    jaxpr = str(jax.make_jaxpr(lambda x: nets.cnn.conv_layer(cnn.conv1, x))(images))
    assert "dot_general" in jaxpr and "conv_general_dilated" not in jaxpr


def test_cnn_with_maxout_has_lines_per_channel():
    cnn = nets.build_model(model_config(activation="maxout"), (28, 28, 1), 10, nnx.Rngs(0))
    assert [a.slopes[...].shape for a in cnn.activations] == [(32, 5), (64, 5), (256, 5)]
    graphdef, params = nnx.split(cnn, nnx.Param)
    loss = lambda p: jnp.sum(nnx.merge(graphdef, p)(jnp.ones((2, 28, 28, 1))))  # noqa: E731
    grads = jax.tree_util.tree_leaves_with_path(jax.grad(loss)(params))
    slopes = [g for path, g in grads if "slopes" in jax.tree_util.keystr(path)]
    assert len(slopes) == 3 and all(float(jnp.abs(g).sum()) > 0 for g in slopes)


def test_cnn_refuses_flat_inputs_and_wrong_images():
    with pytest.raises(UserError, match="model 'cnn' needs images"):
        nets.build_model(model_config(), (2,), 1, nnx.Rngs(0))
    cnn = nets.build_model(model_config(), (28, 28, 1), 10, nnx.Rngs(0))
    with pytest.raises(AssertionError, match="CNN expects images of shape"):
        cnn(jnp.zeros((1, 32, 32, 1)))


def test_maxout_network_after_goodfellow_and_its_relu_twin():
    maxout = nets.build_model(model_config(name="maxout_mlp"), (28, 28, 1), 10, nnx.Rngs(0))
    # 784 -> 240 units x 5 pieces -> 240 x 5 -> 10
    assert count(maxout) == (784 * 1200 + 1200) + (240 * 1200 + 1200) + (240 * 10 + 10)
    assert maxout(jnp.zeros((2, 28, 28, 1))).shape == (2, 10)
    relu = nets.build_model(
        model_config(name="mlp", hidden_sizes=(782, 782)), (28, 28, 1), 10, nnx.Rngs(0)
    )
    assert abs(count(relu) - count(maxout)) < 0.001 * count(maxout)  # the same budget


def test_off_cpu_the_cnn_convolves_with_nnx_conv_itself(monkeypatch):
    cnn = nets.build_model(model_config(), (28, 28, 1), 10, nnx.Rngs(0))
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    jaxpr = str(
        jax.make_jaxpr(lambda x: nets.cnn.conv_layer(cnn.conv1, x))(jnp.ones((1, 28, 28, 1)))
    )
    assert "conv_general_dilated" in jaxpr and "dot_general" not in jaxpr
