"""The convolutional network of the Flax examples (examples/mnist)."""

from collections.abc import Callable

import jax
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
            x = avg_pool_2x2(self.activations[0](self.conv1(x)))
        with jax.named_scope("conv2"):
            x = avg_pool_2x2(self.activations[1](self.conv2(x)))
        with jax.named_scope("dense1"):
            return self.activations[2](self.dense1(x.reshape(x.shape[0], -1)))

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.features(x)
        with jax.named_scope("dense2"):
            return self.dense2(x)
