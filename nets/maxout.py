"""The maxout layer of Goodfellow et al. (2013), "Maxout Networks".

Unlike `nets.activations.Maxout` (a learnable per-unit activation that keeps
the shape), this layer owns the weighted sum too: it projects its input to
`features * pieces` linear units and outputs, for each of its `features`
units, the maximum over its own group of `pieces` of them.
"""

import jax
import jax.numpy as jnp
from flax import nnx


class MaxoutDense(nnx.Module):
    """`y[..., i] = max_j (x @ W[:, i*k + j] + b[i*k + j])`, j < k.

    Grouping: the dense projection has features * k outputs; unit i owns the
    k CONTIGUOUS columns i*k .. i*k + k - 1. (The reshape below,
    (..., features * k) -> (..., features, k), is exactly that grouping.)

    Args:
      in_features: size of x's last axis.
      features: m, the number of maxout units (output size).
      pieces: k, the linear pieces per unit.
      rngs: random streams for the kernel initialisation.

    Shapes: x (..., in_features) -> y (..., features).
    Parameters: linear.kernel (in_features, features * pieces),
      linear.bias (features * pieces,).
    """

    def __init__(self, in_features: int, features: int, pieces: int, *, rngs: nnx.Rngs):
        assert pieces >= 1, f"maxout needs at least 1 piece, got {pieces}"
        self.features = features
        self.pieces = pieces
        self.linear = nnx.Linear(in_features, features * pieces, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        z = self.linear(x)
        z = z.reshape(*z.shape[:-1], self.features, self.pieces)
        return jnp.max(z, axis=-1)


class MaxoutMLP(nnx.Module):
    """A maxout network: MaxoutDense layers, then a linear output layer.

    Goodfellow et al.'s permutation-invariant MNIST model has two maxout
    layers of 240 units x 5 pieces (and dropout, left out here).

    Args:
      in_features: size of the (flattened) input.
      hidden_sizes: units of each maxout layer.
      pieces: k, the linear pieces per unit (every layer).
      out_features: logits.
      rngs: random streams for initialisation.

    Shapes: x (batch, ...) -> logits (batch, out_features); inputs are
    flattened past the batch axis.
    """

    def __init__(self, in_features, hidden_sizes, pieces, out_features, *, rngs: nnx.Rngs):
        sizes = [in_features, *hidden_sizes]
        self.in_features = in_features
        self.layers = nnx.List(
            [
                MaxoutDense(a, b, pieces, rngs=rngs)
                for a, b in zip(sizes[:-1], sizes[1:], strict=True)
            ]
        )
        self.output = nnx.Linear(sizes[-1], out_features, rngs=rngs)

    def features(self, x: jax.Array) -> jax.Array:
        """The last maxout layer's output: (batch, hidden_sizes[-1])."""
        x = x.reshape(x.shape[0], -1)
        assert x.shape[-1] == self.in_features, (
            f"MaxoutMLP expects {self.in_features} input values, got {x.shape[-1]}"
        )
        for i, layer in enumerate(self.layers):
            with jax.named_scope(f"maxout_{i}"):
                x = layer(x)
        return x

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.output(self.features(x))
