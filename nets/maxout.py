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
