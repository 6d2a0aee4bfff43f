"""The perceptron of the seminar, and XOR built from three of them.

A perceptron is a weighted sum followed by the step activation:

    y = 1 if w . x >= theta else 0
    y = 1 if w . x <= theta else 0      (reverse=True, as NAND is written)

`Perceptron.__call__` computes exactly that, with `nets.activations.Step`
applied to `w . x - theta` (or `theta - w . x` when reversed).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from nets.activations import Step

# The seminar's gates: (w1, w2), theta, reversed inequality.
GATES = {
    "or": ((0.5, 0.5), 0.3, False),
    "and": ((0.5, 0.5), 0.7, False),
    "nand": ((0.5, 0.5), 0.7, True),
}


class Perceptron(nnx.Module):
    """`y = step(w . x - theta)`: 1 on one side of a line, 0 on the other.

    Args:
      w: the weights, one per input.
      theta: the threshold.
      reverse: fire when `w . x <= theta` instead of `>= theta` (the same
        as negating w and theta).

    Parameters: w (in_features,) and theta () as nnx.Param, so the delta
    rule (gates.py) can learn them.

    Shapes: x (..., in_features) -> y (...,) float32 in {0, 1}.
    """

    def __init__(self, w: Sequence[float], theta: float, reverse: bool = False):
        self.w = nnx.Param(jnp.asarray(w, jnp.float32))
        self.theta = nnx.Param(jnp.asarray(theta, jnp.float32))
        self.reverse = reverse
        self.step = Step()  # 1 where its input >= 0, else 0

    @classmethod
    def gate(cls, name: str) -> "Perceptron":
        """The seminar's fixed-weight gate: 'or', 'and' or 'nand'."""
        w, theta, reverse = GATES[name]
        return cls(w, theta, reverse)

    def margin(self, x: jax.Array) -> jax.Array:
        """`w . x - theta` (negated when reversed): >= 0 means the unit fires."""
        assert x.shape[-1] == self.w.shape[0], (
            f"Perceptron expects {self.w.shape[0]} inputs, got shape {x.shape}"
        )
        s = x @ self.w[...] - self.theta[...]
        return -s if self.reverse else s

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.step(self.margin(x))


class XorFromGates(nnx.Module):
    """XOR = AND(OR(x1, x2), NAND(x1, x2)): two layers of fixed perceptrons.

    OR fires unless both inputs are 0; NAND fires unless both are 1; both
    fire exactly when the inputs differ, and AND detects that.

    Shapes: x (..., 2) -> y (...,) in {0, 1}; `hidden(x)` -> (..., 2), the
    outputs of OR and NAND.
    """

    def __init__(self):
        self.or_ = Perceptron.gate("or")
        self.nand = Perceptron.gate("nand")
        self.and_ = Perceptron.gate("and")

    def hidden(self, x: jax.Array) -> jax.Array:
        return jnp.stack([self.or_(x), self.nand(x)], axis=-1)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.and_(self.hidden(x))
