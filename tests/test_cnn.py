"""The image models: the Flax-examples CNN and the maxout network."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

import nets
from nets import kernels
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


def primitives(f, *args):
    return str(jax.make_jaxpr(f)(*args))


@pytest.mark.parametrize("size", [(28, 28), (7, 9)])
def test_pooling_equals_flax_avg_pool_values_and_gradients(size):
    x = jax.random.normal(jax.random.key(0), (2, *size, 3))
    flax_pool = lambda x: nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2))  # noqa: E731
    np.testing.assert_array_equal(kernels.PLAIN.pool(x), flax_pool(x))
    ours, theirs = kernels.avg_pool_2x2(x), flax_pool(x)
    assert ours.shape == theirs.shape == (2, size[0] // 2, size[1] // 2, 3)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    weights = jax.random.normal(jax.random.key(1), ours.shape)
    grad = lambda pool: jax.grad(lambda x: jnp.sum(pool(x) * weights))(x)  # noqa: E731
    np.testing.assert_allclose(grad(kernels.avg_pool_2x2), grad(flax_pool), rtol=1e-6)


@pytest.mark.parametrize(
    "channels, kernel_size",
    [(1, (3, 3)), (3, (3, 3)), (5, (3, 3)), (2, (2, 2)), (1, (5, 4))],
)
@pytest.mark.parametrize(
    "layer",
    [
        kernels.conv_as_matmul,
        kernels.conv_with_bias,
        lambda x, kernel, bias: kernels.conv_layer(conv_of(kernel, bias), x),
    ],
    ids=["conv_as_matmul", "conv_with_bias", "conv_layer"],
)
def test_conv_kernels_equal_nnx_conv_in_values_and_gradients(layer, channels, kernel_size):
    conv = nnx.Conv(channels, 6, kernel_size=kernel_size, rngs=nnx.Rngs(0))
    conv.bias[...] = jax.random.normal(jax.random.key(1), (6,))  # not the initial zeros
    x = jax.random.normal(jax.random.key(2), (2, 7, 6, channels))
    cotangent = jax.random.normal(jax.random.key(3), (2, 7, 6, 6))

    def pulled_back(f):
        out, pullback = jax.vjp(f, x, conv.kernel[...], conv.bias[...])
        return out, *pullback(cotangent)

    def flax_conv(x, kernel, bias):
        return conv_of(kernel, bias)(x)

    with jax.default_matmul_precision("highest"):  # no TF32 off CPU: the same math
        ours, theirs = pulled_back(layer), pulled_back(flax_conv)
    for name, a, b in zip(["output", "d input", "d kernel", "d bias"], ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)


def conv_of(kernel, bias, **options):
    """An `nnx.Conv` holding `kernel` and `bias`."""
    kh, kw, channels, features = kernel.shape
    conv = nnx.Conv(channels, features, kernel_size=(kh, kw), rngs=nnx.Rngs(0), **options)
    conv.kernel[...], conv.bias[...] = kernel, bias
    return conv


@pytest.mark.parametrize(
    "options", [{"strides": 2}, {"padding": "VALID"}, {"kernel_dilation": 2}, {"use_bias": False}]
)
def test_the_cpu_conv_leaves_other_convolutions_to_nnx_conv(options):
    conv = nnx.Conv(1, 4, kernel_size=(3, 3), rngs=nnx.Rngs(0), **options)
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 1))
    np.testing.assert_array_equal(kernels.conv_layer(conv, x), conv(x))
    assert "conv_general_dilated" in primitives(lambda x: kernels.conv_layer(conv, x), x)


def test_the_cpu_kernels_in_the_cnn_are_a_matmul_first_and_nnx_conv_numbers():
    cnn = nets.build_model(model_config(), (28, 28, 1), 10, nnx.Rngs(0), kernels=kernels.CPU)
    images = jax.random.normal(jax.random.key(0), (2, 28, 28, 1))
    features = jax.random.normal(jax.random.key(1), (2, 14, 14, 32))
    with jax.default_matmul_precision("highest"):  # no TF32 off CPU: the same math
        for conv, x in [(cnn.conv1, images), (cnn.conv2, features)]:
            np.testing.assert_allclose(kernels.conv_layer(conv, x), conv(x), rtol=1e-5, atol=1e-5)
    first = primitives(lambda x: kernels.conv_layer(cnn.conv1, x), images)
    assert "dot_general" in first and "conv_general_dilated" not in first
    second = primitives(lambda x: kernels.conv_layer(cnn.conv2, features), features)
    assert "custom_vjp_call" in second  # conv_with_bias
    whole = primitives(cnn, images)
    assert "reduce_window" not in whole  # pooling as a reshape
    plain = nets.build_model(model_config(), (28, 28, 1), 10, nnx.Rngs(0), kernels=kernels.PLAIN)
    with jax.default_matmul_precision("highest"):
        np.testing.assert_allclose(cnn(images), plain(images), rtol=1e-5, atol=1e-5)


def test_the_plain_cnn_reads_like_the_flax_example():
    cnn = nets.CNN((28, 28, 1), 10, nets.make_activation("relu"), rngs=nnx.Rngs(0))
    images = jnp.ones((1, 28, 28, 1))
    jaxpr = primitives(cnn, images)
    assert jaxpr.count("conv_general_dilated") == 2 and jaxpr.count("reduce_window_sum") == 2
    assert "dot_general" in jaxpr and "custom_vjp_call" not in jaxpr
    plain = nets.build_model(model_config(), (28, 28, 1), 10, nnx.Rngs(0), kernels=kernels.PLAIN)
    assert primitives(plain, images) == jaxpr


def test_kernels_for_a_backend():
    assert kernels.for_backend("cpu") is kernels.CPU
    for backend in ("gpu", "cuda", "rocm", "tpu", "METAL"):
        assert kernels.for_backend(backend) is kernels.PLAIN
    assert kernels.CPU != kernels.PLAIN
    assert all(getattr(kernels.CPU, f) is not getattr(kernels.PLAIN, f) for f in ("conv", "pool"))


def test_build_model_defaults_to_the_kernels_of_the_backend(monkeypatch):
    images = jnp.ones((1, 28, 28, 1))
    for backend, expected in [("gpu", kernels.PLAIN), ("cpu", kernels.CPU)]:
        monkeypatch.setattr(jax, "default_backend", lambda b=backend: b)
        default = nets.build_model(model_config(), (28, 28, 1), 10, nnx.Rngs(0))
        chosen = nets.build_model(model_config(), (28, 28, 1), 10, nnx.Rngs(0), kernels=expected)
        assert primitives(default, images) == primitives(chosen, images), backend


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU kernels are CPU's default")
def test_on_cpu_the_default_cnn_convolves_its_first_layer_as_a_matmul():
    cnn = nets.build_model(model_config(), (28, 28, 1), 10, nnx.Rngs(0))
    jaxpr = primitives(lambda x: cnn.features(x), jnp.ones((1, 28, 28, 1)))
    assert jaxpr.count("conv_general_dilated") == 1 and "reduce_window" not in jaxpr


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
