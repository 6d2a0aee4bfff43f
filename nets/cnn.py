"""The convolutional network of the Flax examples (examples/mnist)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx


def avg_pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 average pooling with stride 2, as `nnx.avg_pool(x, (2, 2), (2, 2))`.

    Written as a reshape and a mean (an odd last row or column is dropped,
    as VALID pooling does): the same numbers, but the gradient is a plain
    broadcast, where XLA:CPU runs `reduce_window`'s gradient as a slower
    windowed op. The CNN's train step is about 10% faster so.

    Shapes: (batch, height, width, channels) -> (batch, height // 2,
    width // 2, channels).
    """
    batch, height, width, channels = x.shape
    x = x[:, : height // 2 * 2, : width // 2 * 2]
    return x.reshape(batch, height // 2, 2, width // 2, 2, channels).mean(axis=(2, 4))


def conv_as_matmul(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """A stride-1 "SAME" convolution plus bias, as one matrix product (im2col).

    Row p of the patch matrix holds pixel p's receptive field (kh x kw x
    channels inputs) and a constant 1; the weight matrix is the kernel with
    the bias as its last row: out = patches @ [kernel; bias]. The bias is
    the weight of an input that is always 1, as in the perceptron, and
    autodiff returns its gradient from the same matrix product as the
    kernel's (`patches^T @ grad`) instead of a separate sum over every pixel.

    For the first layer, with few input channels: XLA:CPU's convolution runs
    a 1-channel input at 18 GFLOP/s, and its weight gradient needs the
    output gradient transposed. The patches cost kh x kw x channels + 1
    floats per pixel (10 for 3x3 grey images).

    Shapes: x (batch, height, width, channels), kernel (kh, kw, channels,
    features), bias (features,) -> (batch, height, width, features), equal
    to `nnx.Conv`'s output with the default strides and padding.
    """
    kh, kw, channels, features = kernel.shape
    batch, height, width, _ = x.shape
    x = jnp.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
    taps = [x[:, i : i + height, j : j + width] for i in range(kh) for j in range(kw)]
    ones = jnp.ones((batch, height, width, 1), x.dtype)
    patches = jnp.concatenate([*taps, ones], axis=-1).reshape(batch * height * width, -1)
    weights = jnp.concatenate([kernel.reshape(kh * kw * channels, features), bias[None]])
    return (patches @ weights).reshape(batch, height, width, features)


def _convolve(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


@jax.custom_vjp
def conv_with_bias(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """A stride-1 "SAME" convolution plus bias, as `nnx.Conv` computes it.

    Only the gradient differs, and only in how it is computed: the bias is
    the weight of an input that is always 1, so the kernel's gradient
    convolution, given that input as one more channel, returns the bias's
    gradient too, at the kernel's centre tap (which always sees the 1,
    padding or not). Autodiff of `+ bias` would sum the output gradient over
    every pixel on its own, which XLA:CPU runs as a slow windowed reduction.

    Shapes as `conv_as_matmul`.
    """
    return _convolve(x, kernel) + bias.reshape(1, 1, 1, -1)


def _conv_with_bias_forward(x, kernel, bias):
    return conv_with_bias(x, kernel, bias), (x, kernel)


def _conv_with_bias_backward(saved, grad):
    x, kernel = saved
    kh, kw, channels, features = kernel.shape
    (dx,) = jax.vjp(lambda x: _convolve(x, kernel), x)[1](grad)
    with_ones = jnp.concatenate([x, jnp.ones((*x.shape[:-1], 1), x.dtype)], axis=-1)
    any_kernel = jnp.zeros((kh, kw, channels + 1, features), kernel.dtype)  # (linear in it)
    (dkernel,) = jax.vjp(lambda k: _convolve(with_ones, k), any_kernel)[1](grad)
    return dx, dkernel[:, :, :channels], dkernel[(kh - 1) // 2, (kw - 1) // 2, channels]


conv_with_bias.defvjp(_conv_with_bias_forward, _conv_with_bias_backward)


def conv_layer(conv: nnx.Conv, x: jax.Array) -> jax.Array:
    """`conv(x)` (stride 1, "SAME"). On CPU by `conv_as_matmul` for up to 4
    input channels, else by `conv_with_bias`: the same numbers, and the
    CNN's train step about 10% faster (README, Speed). Elsewhere `conv(x)`
    itself: the rewrites are measured on XLA:CPU only."""
    kernel, bias = conv.kernel[...], conv.bias[...]
    if jax.default_backend() != "cpu":
        return conv(x)
    if kernel.shape[2] <= 4:
        return conv_as_matmul(x, kernel, bias)
    return conv_with_bias(x, kernel, bias)


class CNN(nnx.Module):
    """Conv 32 3x3 -> act -> avg-pool 2 -> Conv 64 3x3 -> act -> avg-pool 2
    -> flatten -> Dense 256 -> act -> Dense out.

    The seminar's MNIST network and the Flax examples' `CNN`, with the
    activation taken from the registry (maxout included: it acts per
    channel, so each conv layer's maxout has one set of lines per channel).

    Args:
      image_shape: (height, width, channels) of the inputs, e.g. (28, 28, 1).
      out_features: logits, e.g. 10 classes.
      activation: factory `num_features -> module` (nets.make_activation).
      rngs: random streams for initialisation.

    Shapes: x (batch, height, width, channels) float -> logits (batch, out).
    Parameters for 28x28x1 and 10 classes: 320 + 18,496 + 803,072 + 2,570
      = 824,458 (plus maxout's lines).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        out_features: int,
        activation: Callable[[int], nnx.Module],
        *,
        rngs: nnx.Rngs,
    ):
        height, width, channels = image_shape
        self.image_shape = tuple(image_shape)
        self.conv1 = nnx.Conv(channels, 32, kernel_size=(3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
        flat = (height // 4) * (width // 4) * 64
        self.dense1 = nnx.Linear(flat, 256, rngs=rngs)
        self.dense2 = nnx.Linear(256, out_features, rngs=rngs)
        self.activations = nnx.List([activation(32), activation(64), activation(256)])

    def features(self, x: jax.Array) -> jax.Array:
        """The 256 units before the last layer: (batch, 256)."""
        assert x.shape[1:] == self.image_shape, (
            f"CNN expects images of shape (batch, {self.image_shape}), got {x.shape}"
        )
        with jax.named_scope("conv1"):
            x = avg_pool_2x2(self.activations[0](conv_layer(self.conv1, x)))
        with jax.named_scope("conv2"):
            x = avg_pool_2x2(self.activations[1](conv_layer(self.conv2, x)))
        with jax.named_scope("dense1"):
            return self.activations[2](self.dense1(x.reshape(x.shape[0], -1)))

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.features(x)
        with jax.named_scope("dense2"):
            return self.dense2(x)
