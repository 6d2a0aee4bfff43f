"""The convolutional network of the Flax examples (examples/mnist)."""

from collections.abc import Callable, Sequence

import jax
from flax import nnx

from nets.activations import per_layer


def avg_pool(x: jax.Array) -> jax.Array:
    """The Flax examples' pooling: 2x2 windows, stride 2 (VALID).

    Shapes: (batch, height, width, channels) -> (batch, height // 2,
    width // 2, channels).
    """
    return nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2))


class CNN(nnx.Module):
    """Conv 32 3x3 -> act -> avg-pool 2 -> Conv 64 3x3 -> act -> avg-pool 2
    -> flatten -> Dense 256 -> act -> Dense out.

    The seminar's MNIST network and the Flax examples' `CNN`, with the
    activation taken from the registry (maxout included: it acts per
    channel, so each conv layer's maxout has one set of lines per channel).

    Args:
      image_shape: (height, width, channels) of the inputs, e.g. (28, 28, 1).
      out_features: logits, e.g. 10 classes.
      activation: factory `num_features -> module` (nets.make_activation),
        or one per activation layer (3: after conv1, conv2 and dense1).
      conv: `(nnx.Conv module, x) -> y`, how each conv layer is applied;
        by default the layer's own call, `conv1(x)`.
      pool: `x -> y`, the 2x2 average pooling with stride 2.
      dropout: the rate at which dense1's 256 outputs are zeroed in
        training, where a call is given a `dropout_key` (not at evaluation).
      rngs: random streams for initialisation.

    `conv` and `pool` let `nets.build_model` swap in the rewrites that
    XLA:CPU runs faster, with the same numbers (nets/kernels.py).

    Shapes: x (batch, height, width, channels) float -> logits (batch, out).
    Parameters for 28x28x1 and 10 classes: 320 + 18,496 + 803,072 + 2,570
      = 824,458 (plus maxout's lines).
    """

    NUM_ACTIVATIONS = 3  # after conv1, conv2 and dense1

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        out_features: int,
        activation: Callable[[int], nnx.Module] | Sequence[Callable[[int], nnx.Module]],
        *,
        conv: Callable[[nnx.Conv, jax.Array], jax.Array] = nnx.Conv.__call__,
        pool: Callable[[jax.Array], jax.Array] = avg_pool,
        dropout: float = 0.0,
        rngs: nnx.Rngs,
    ):
        height, width, channels = image_shape
        self.image_shape = tuple(image_shape)
        self.conv, self.pool = conv, pool
        self.dropout = nnx.Dropout(dropout) if dropout else None
        self.conv1 = nnx.Conv(channels, 32, kernel_size=(3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
        flat = (height // 4) * (width // 4) * 64
        self.dense1 = nnx.Linear(flat, 256, rngs=rngs)
        self.dense2 = nnx.Linear(256, out_features, rngs=rngs)
        act = per_layer(activation, self.NUM_ACTIVATIONS)
        self.activations = nnx.List([act[0](32), act[1](64), act[2](256)])

    def features(self, x: jax.Array, dropout_key: jax.Array | None = None) -> jax.Array:
        """The 256 units before the last layer: (batch, 256); with a
        `dropout_key` (training), after dropout."""
        assert x.shape[1:] == self.image_shape, (
            f"CNN expects images of shape (batch, {self.image_shape}), got {x.shape}"
        )
        # Named scopes label the layers in TensorBoard's GRAPHS and in profiles.
        with jax.named_scope("conv1"):
            x = self.pool(self.activations[0](self.conv(self.conv1, x)))
        with jax.named_scope("conv2"):
            x = self.pool(self.activations[1](self.conv(self.conv2, x)))
        with jax.named_scope("dense1"):
            x = self.activations[2](self.dense1(x.reshape(x.shape[0], -1)))
        if self.dropout is not None and dropout_key is not None:
            x = self.dropout(x, rngs=dropout_key)
        return x

    def __call__(self, x: jax.Array, dropout_key: jax.Array | None = None) -> jax.Array:
        x = self.features(x, dropout_key)
        with jax.named_scope("dense2"):
            return self.dense2(x)
