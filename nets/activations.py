"""Activation functions as Flax NNX modules, chosen by name.

A perceptron is a weighted sum followed by an activation. Every activation
here is an `nnx.Module` with one call signature,

    y = activation(x)        # x: (..., features) -> y: (..., features)

so they are interchangeable wherever a network takes one. All but `maxout`
are fixed functions with no trainable parameters; `maxout` learns its
shape, one set of parameters per unit.

The registry `ACTIVATIONS` maps each config name to a builder
`(num_features, ActivationOptions) -> nnx.Module`; `make_activation` turns
a name into a factory `num_features -> nnx.Module` that a network calls once
per layer, so a learnable activation gets its own parameters in every layer.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from plumbing.failures import UserError
from plumbing.registry import lookup, name_list


class Step(nnx.Module):
    """The perceptron's threshold: `gamma1 if x >= theta else gamma2`.

    Its true gradient is zero almost everywhere, so a network of steps
    cannot learn by backpropagation. With `straight_through=True` the
    forward pass is still the exact step, but the backward pass uses the
    slope of a ramp that rises from gamma2 to gamma1 over
    [theta - 1, theta + 1]: gradient (gamma1 - gamma2) / 2 inside that
    window and 0 outside (the "hard-tanh" straight-through estimator of
    Bengio et al. 2013 and Hubara et al. 2016).

    Args:
      theta: the threshold.
      gamma1: the output where x >= theta.
      gamma2: the output where x < theta.
      straight_through: use the ramp's gradient in the backward pass.
    """

    def __init__(
        self,
        theta: float = 0.0,
        gamma1: float = 1.0,
        gamma2: float = 0.0,
        straight_through: bool = False,
    ):
        self.theta = theta
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.straight_through = straight_through

    def __call__(self, x: jax.Array) -> jax.Array:
        step = jnp.where(x >= self.theta, self.gamma1, self.gamma2).astype(x.dtype)
        if not self.straight_through:
            return step
        ramp = jnp.clip((x - self.theta + 1) / 2, 0, 1)
        ramp = self.gamma2 + (self.gamma1 - self.gamma2) * ramp
        # Forward value: the step. Gradient: the ramp's.
        return ramp + jax.lax.stop_gradient(step - ramp)


class Sigmoid(nnx.Module):
    """`1 / (1 + exp(-x))`: output in (0, 1), usable as a probability.

    Saturates at both ends and its derivative is at most 0.25, so gradients
    shrink layer after layer in deep stacks (vanishing gradients); its
    outputs are always positive, which biases the sign of the next layer's
    weight gradients.
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(x)


class Tanh(nnx.Module):
    """`tanh(x)`: the sigmoid's shape, zero-centred, output in (-1, 1).

    Fixes the sigmoid's sign bias but still saturates (derivative at most 1,
    tiny away from 0).
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.tanh(x)


class ReLU(nnx.Module):
    """`max(0, x)`: gradient 1 for positive inputs, cheap to compute.

    A unit whose input stays negative gets zero gradient forever ("dying
    ReLU").
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(x)


class LeakyReLU(nnx.Module):
    """`x if x >= 0 else slope * x`: a small slope keeps units from dying.

    Args:
      slope: the slope for negative inputs (0.01 by default).
    """

    def __init__(self, slope: float = 0.01):
        self.slope = slope

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.where(x >= 0, x, self.slope * x)


class Identity(nnx.Module):
    """`x`: no non-linearity. A stack of linear layers stays linear."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return x


class Maxout(nnx.Module):
    """A learnable activation: the maximum of k lines, per unit.

        y[..., i] = max_j (slopes[i, j] * x[..., i] + intercepts[i, j])

    This is the seminar's maxout, `max(w1*x + b1, w2*x + b2)` with w and b
    LEARNED, applied to each unit on its own, so the output has the input's
    shape and it drops in wherever ReLU does. (For the Goodfellow et al.
    2013 layer, a dense projection followed by a max over groups, see
    `nets.maxout.MaxoutDense`.) A maximum of lines is convex and piecewise
    linear: ReLU (lines 0 and x), leaky ReLU and |x| are special cases.

    Initialisation: the k lines form a convex piecewise-linear curve with
    slopes evenly spaced from `leaky_slope` to 1 and breakpoints evenly
    spaced in (-1, 1), so every piece is the maximum somewhere and gets
    gradient. With k = 2 this is exactly leaky ReLU, a start that trains
    well; k = 1 starts as the identity.

    Args:
      num_features: number of units (the size of x's last axis).
      pieces: k, the number of lines per unit.
      leaky_slope: slope of the flattest line at initialisation.

    Parameters:
      slopes, intercepts: (num_features, pieces) each, one row per unit.
    """

    def __init__(self, num_features: int, pieces: int = 2, leaky_slope: float = 0.01):
        assert num_features >= 1, f"num_features must be >= 1, got {num_features}"
        assert pieces >= 1, f"maxout needs at least 1 piece, got {pieces}"
        slopes = jnp.linspace(leaky_slope, 1.0, pieces) if pieces > 1 else jnp.ones(1)
        breaks = jnp.linspace(-1.0, 1.0, pieces + 1)[1:-1]
        # Lines j-1 and j meet at breaks[j-1]; the first line passes through 0.
        steps = (slopes[:-1] - slopes[1:]) * breaks
        intercepts = jnp.concatenate([jnp.zeros(1), jnp.cumsum(steps)])
        self.num_features = num_features
        self.slopes = nnx.Param(jnp.tile(slopes, (num_features, 1)))
        self.intercepts = nnx.Param(jnp.tile(intercepts, (num_features, 1)))

    def __call__(self, x: jax.Array) -> jax.Array:
        assert x.shape[-1] == self.num_features, (
            f"Maxout expects {self.num_features} features on the last axis, got shape {x.shape}"
        )
        return jnp.max(self.lines(x), axis=-1)

    def lines(self, x: jax.Array) -> jax.Array:
        """Every line's value: (..., features) -> (..., features, pieces)."""
        # (features, k) -> (1, ..., 1, features, k): explicit batch axes.
        lead = (1,) * (x.ndim - 1)
        slopes = self.slopes[...].reshape(lead + self.slopes.shape)
        intercepts = self.intercepts[...].reshape(lead + self.intercepts.shape)
        return x[..., None] * slopes + intercepts

    def winners(self, x: jax.Array) -> jax.Array:
        """Which line is the maximum: int (..., features) in [0, pieces)."""
        return jnp.argmax(self.lines(x), axis=-1)


@dataclasses.dataclass(frozen=True)
class ActivationOptions:
    """Settings of the configurable activations (config `model.*` fields)."""

    leaky_slope: float = 0.01  # leaky_relu's negative slope; maxout's init
    maxout_pieces: int = 2  # k lines per maxout unit
    step_theta: float = 0.0  # step threshold
    step_gamma1: float = 1.0  # step output where x >= theta
    step_gamma2: float = 0.0  # step output where x < theta
    straight_through: bool = False  # step: backprop through a ramp


# name -> (num_features, options) -> module
ACTIVATIONS: dict[str, Callable[[int, ActivationOptions], nnx.Module]] = {
    "step": lambda n, o: Step(o.step_theta, o.step_gamma1, o.step_gamma2, o.straight_through),
    "sigmoid": lambda n, o: Sigmoid(),
    "tanh": lambda n, o: Tanh(),
    "relu": lambda n, o: ReLU(),
    "leaky_relu": lambda n, o: LeakyReLU(o.leaky_slope),
    "identity": lambda n, o: Identity(),
    "maxout": lambda n, o: Maxout(n, o.maxout_pieces, o.leaky_slope),
}


def make_activation(
    name: str, options: ActivationOptions = ActivationOptions()
) -> Callable[[int], nnx.Module]:
    """Returns a factory `num_features -> activation module` for `name`.

    Raises:
      UserError: `name` is not in ACTIVATIONS (the message lists them).
    """
    build = lookup(ACTIVATIONS, name, "activation")
    return lambda num_features: build(num_features, options)


def per_layer(activation, num_layers: int) -> list[Callable[[int], nnx.Module]]:
    """A network's `activation` argument as one factory per layer: the same
    factory for every layer, or the sequence given (which must fit)."""
    if callable(activation):
        return [activation] * num_layers
    assert len(activation) == num_layers, f"{len(activation)} activations for {num_layers} layers"
    return list(activation)


def layer_names(spec, num_layers: int) -> list[str]:
    """The activation of each of `num_layers` layers, from `config.model.activation`.

    One name is every layer's: `'relu'`. A tuple names each layer's, input
    side first: `'(relu, tanh)'`. Raises UserError for a tuple of the wrong
    length or an unknown name.
    """
    names = name_list(spec)
    for name in names:  # a typo fails even with no hidden layer
        lookup(ACTIVATIONS, name, "activation")
    single = isinstance(spec, str) and not spec.strip().startswith("(")
    if single:
        return names * num_layers
    if len(names) != num_layers:
        raise UserError(
            f"model.activation {spec!r} names {len(names)} activations, but the model has "
            f"{num_layers} hidden layers: give one name, or one per layer"
        )
    return names
