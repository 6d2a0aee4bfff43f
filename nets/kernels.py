"""The measured CPU kernels, and which backend gets them.

The models in `nets/` build plain Flax layers (`nnx.Linear`, `nnx.Conv`,
`nnx.avg_pool`) and take the few parts that XLA:CPU runs faster written
another way as constructor arguments, the way Flax's ResNet takes `conv`
and `norm`. This module holds those rewrites; each one computes the same
numbers as the op it replaces (tests/test_cnn.py, tests/test_mlp.py check
values and gradients on every backend):

- `dot_general`, for `nnx.Linear`: a small product (XOR's 4 x 2 x 16) as a
  multiply and a sum, which XLA fuses with the ops around it, where a dot
  is a call of its own into Eigen and oneDNN. The XOR loop: 425,000 ->
  755,000 steps/s.
- `conv_layer`, for `nnx.Conv`: the first convolution (few input channels)
  as one matrix product (`conv_as_matmul`), XLA:CPU's 1-channel convolution
  running at 18 GFLOP/s; later ones with the bias as the weight of a
  constant input (`conv_with_bias`), so that no slow windowed reduction
  sums the bias's gradient. Each: the CNN's train step about 10% faster.
- `avg_pool_2x2`: 2x2 pooling as a reshape and a mean, whose gradient is a
  broadcast instead of `reduce_window`'s windowed gradient: the CNN's
  train step about 10% faster again.

All are measured on XLA:CPU only, so they are injected only there:
`for_backend("cpu")` is `CPU`, any other backend gets `PLAIN`, the Flax ops
themselves. `for_backend` is the one place in `nets/` that looks at the
backend; the kernels do not.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from nets.cnn import avg_pool

# At most this many multiply-adds, a layer's product is written as a
# multiply and a sum (below).
SMALL_PRODUCT = 1024


def dot_general(x, kernel, dimension_numbers, precision=None, **options):
    """`jax.lax.dot_general` for `nnx.Linear`, with a small product (XOR's
    4 x 2 x 16) as a multiply and a sum over the inputs.

    XLA fuses those with the ops around them, where a dot is a call of its
    own into Eigen and oneDNN that costs microseconds of set-up whatever
    its size: XOR's training loop ran 425,000 steps/s with dots, 755,000
    without. Above `SMALL_PRODUCT` multiply-adds (a Playground net on 500
    points: 2x slower), the dot itself. Measured on XLA:CPU: `CPU` only.
    """
    (contract_x, contract_kernel), batch = dimension_numbers
    plain = contract_x == (x.ndim - 1,) and contract_kernel == (0,) and not batch[0]
    if plain and x.size * kernel.shape[-1] <= SMALL_PRODUCT:
        with jax.named_scope("weighted_sum"):  # its name in GRAPHS
            return (x[..., None] * kernel.reshape((1,) * (x.ndim - 1) + kernel.shape)).sum(-2)
    return jax.lax.dot_general(x, kernel, dimension_numbers, precision, **options)


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


def _all_ones(value) -> bool:
    return value is None or (value == 1 if isinstance(value, int) else all(v == 1 for v in value))


def conv_layer(conv: nnx.Conv, x: jax.Array) -> jax.Array:
    """`conv(x)`: for a stride-1 "SAME" 2-D convolution with a bias (the
    CNN's), by `conv_as_matmul` for up to 4 input channels, else by
    `conv_with_bias`: the same numbers, and the CNN's train step about 10%
    faster (README, Speed). Any other convolution: `conv(x)` itself."""
    rewritable = (
        conv.kernel.ndim == 4
        and conv.padding == "SAME"
        and all(map(_all_ones, (conv.strides, conv.input_dilation, conv.kernel_dilation)))
        and conv.feature_group_count == 1
        and conv.use_bias
        and conv.mask is None
    )
    if not rewritable:
        return conv(x)
    kernel, bias = conv.kernel[...], conv.bias[...]
    if kernel.shape[2] <= 4:
        return conv_as_matmul(x, kernel, bias)
    return conv_with_bias(x, kernel, bias)


@dataclasses.dataclass(frozen=True)
class Kernels:
    """The parts a model takes as arguments (`nets.build_model` passes them).

    dot_general: `jax.lax.dot_general`'s signature, for every `nnx.Linear`
      of the MLP.
    conv: `(nnx.Conv module, x) -> y`, how the CNN applies each conv layer.
    pool: `x -> y`, the CNN's 2x2 average pooling with stride 2.
    """

    dot_general: Callable[..., jax.Array] = jax.lax.dot_general
    conv: Callable[[nnx.Conv, jax.Array], jax.Array] = nnx.Conv.__call__
    pool: Callable[[jax.Array], jax.Array] = avg_pool


# The Flax ops themselves: the models' defaults.
PLAIN = Kernels()
# The rewrites above, measured faster on XLA:CPU.
CPU = Kernels(dot_general=dot_general, conv=conv_layer, pool=avg_pool_2x2)


def for_backend(backend: str) -> Kernels:
    """The fastest measured kernels for `backend` (`jax.default_backend()`):
    `CPU` for "cpu", `PLAIN` elsewhere (nothing else is measured)."""
    return CPU if backend == "cpu" else PLAIN
