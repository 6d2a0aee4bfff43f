"""The Goodfellow et al. maxout layer: shapes, grouping, parameter count."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nets.maxout import MaxoutDense


def test_shapes_and_parameter_count():
    layer = MaxoutDense(in_features=6, features=4, pieces=3, rngs=nnx.Rngs(0))
    y = layer(jnp.ones((2, 5, 6)))
    assert y.shape == (2, 5, 4)
    params = nnx.state(layer, nnx.Param)
    assert sum(p.size for p in jax.tree.leaves(params)) == 6 * 12 + 12


def test_unit_i_takes_the_max_of_columns_i_k_to_i_k_plus_k():
    layer = MaxoutDense(in_features=1, features=2, pieces=3, rngs=nnx.Rngs(0))
    layer.linear.kernel[...] = jnp.array([[1.0, 5.0, 2.0, -1.0, -3.0, -2.0]])
    layer.linear.bias[...] = jnp.zeros(6)
    np.testing.assert_array_equal(layer(jnp.array([[1.0]])), [[5.0, -1.0]])
