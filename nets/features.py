"""The TensorFlow Playground's input features: fixed functions of a 2-D point.

A network on the plane sees (x1, x2). Give it x1^2 and x2^2 as well and a
model with no hidden layer can draw a circle: the boundary
w1 x1^2 + w2 x2^2 + b = 0 is one. `config.data.features` picks them by name:

    python train.py --config=configs/playground.py:circles \
        --config.model.hidden_sizes='()' --config.data.features='(x1^2, x2^2)'

They are computed from the points inside the model (`MLP(inputs=...)`), on
the device, so every picture is still drawn over (x1, x2).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from plumbing.failures import UserError
from plumbing.registry import lookup, name_list

# name -> (points (..., 2) -> (...,) feature)
FEATURES = {
    "x1": lambda x: x[..., 0],
    "x2": lambda x: x[..., 1],
    "x1^2": lambda x: x[..., 0] ** 2,
    "x2^2": lambda x: x[..., 1] ** 2,
    "x1*x2": lambda x: x[..., 0] * x[..., 1],
    "sin(x1)": lambda x: jnp.sin(x[..., 0]),
    "sin(x2)": lambda x: jnp.sin(x[..., 1]),
}
PLAIN = ("x1", "x2")  # the points as they are: no features layer at all


class Features(nnx.Module):
    """Points (..., 2) -> their features (..., len(names)), in the order named.

    No parameters: the Playground's first column of neurons, fixed.
    """

    def __init__(self, names: tuple[str, ...]):
        self.names = tuple(names)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.stack([FEATURES[name](x) for name in self.names], axis=-1)


def feature_names(value) -> tuple[str, ...]:
    """`config.data.features` as a tuple of known names (UserError otherwise)."""
    names = tuple(name_list(value))
    if not names:
        raise UserError("data.features is empty: name at least one, e.g. '(x1, x2)'")
    for name in names:
        lookup(FEATURES, name, "input feature")
    if len(set(names)) < len(names):
        raise UserError(f"data.features names one twice: {', '.join(names)}")
    return names
