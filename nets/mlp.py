"""A multi-layer perceptron: weighted sums and activations, stacked."""

from collections.abc import Callable, Sequence

import jax
from flax import nnx

from nets.activations import per_layer


class MLP(nnx.Module):
    """Dense -> activation -> ... -> Dense, with a linear output layer.

    With no hidden layer this is a single-layer perceptron (a linear model),
    which cannot solve XOR; one hidden layer of 2 units can.

    Args:
      in_features: size of the input's last axis.
      hidden_sizes: width of each hidden layer, input side first.
      out_features: size of the output (logits for a classifier).
      activation: factory `num_features -> module`, called once per hidden
        layer so that a learnable activation (maxout) gets its own
        parameters in every layer (see `nets.activations.make_activation`);
        or a sequence of factories, one per hidden layer ('(relu, tanh)').
      dot_general: `jax.lax.dot_general` or a function of its signature,
        given to every `nnx.Linear` (`nets.build_model` swaps in the one
        XLA:CPU runs faster, with the same numbers: nets/kernels.py).
      inputs: a fixed map applied to x first, whose output has
        `in_features` (the Playground's input features: nets/features.py);
        None: x as it is.
      dropout: the rate at which each hidden unit's output is zeroed in
        training (the rest scaled by 1 / (1 - rate)); only where a call is
        given a `dropout_key`, so evaluation and pictures see every unit.
      rngs: random streams for weight initialisation.

    Shapes: x (..., in_features) -> logits (..., out_features); images
      (batch, h, w, c) are flattened to (batch, h * w * c) first.
    Parameters: layers[i].kernel (fan_in, fan_out) and layers[i].bias
      (fan_out,) for each of the len(hidden_sizes) + 1 layers; plus
      whatever each activations[i] owns.
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int,
        activation: Callable[[int], nnx.Module] | Sequence[Callable[[int], nnx.Module]],
        *,
        dot_general: Callable[..., jax.Array] = jax.lax.dot_general,
        inputs: nnx.Module | None = None,
        dropout: float = 0.0,
        rngs: nnx.Rngs,
    ):
        sizes = [in_features, *hidden_sizes, out_features]
        assert all(s >= 1 for s in sizes), f"layer sizes must be >= 1, got {sizes}"
        self.in_features = in_features
        self.inputs = inputs
        self.dropout = nnx.Dropout(dropout) if dropout else None
        self.layers = nnx.List(
            [
                nnx.Linear(a, b, dot_general=dot_general, rngs=rngs)
                for a, b in zip(sizes[:-1], sizes[1:], strict=True)
            ]
        )
        factories = per_layer(activation, len(hidden_sizes))
        self.activations = nnx.List([f(h) for f, h in zip(factories, hidden_sizes, strict=True)])

    def input_features(self, x: jax.Array) -> jax.Array:
        """What the first layer sees: images flattened, points mapped by `inputs`."""
        if x.ndim > 2:  # images: (batch, h, w, c) -> (batch, h * w * c)
            x = x.reshape(x.shape[0], -1)
        if self.inputs is not None:
            with jax.named_scope("inputs"):
                x = self.inputs(x)
        assert x.shape[-1] == self.in_features, (
            f"MLP expects {self.in_features} input features, got shape {x.shape}"
        )
        return x

    def hidden(
        self, x: jax.Array, dropout_key: jax.Array | None = None
    ) -> list[tuple[jax.Array, jax.Array]]:
        """(pre-activation, activation) of each hidden layer, input side first.

        Shapes: x (..., in_features) -> [((..., h_i), (..., h_i)) for each i].
        With a `dropout_key` (training), each activation after dropout.
        """
        x = self.input_features(x)
        out = []
        # Named scopes label the layers in TensorBoard's GRAPHS and in profiles.
        for i, (layer, activation) in enumerate(
            zip(self.layers[:-1], self.activations, strict=True)
        ):
            with jax.named_scope(f"layers_{i}"):
                z = layer(x)
            with jax.named_scope(f"activations_{i}"):
                x = activation(z)
            if self.dropout is not None and dropout_key is not None:
                x = self.dropout(x, rngs=jax.random.fold_in(dropout_key, i))
            out.append((z, x))
        return out

    def features(self, x: jax.Array, dropout_key: jax.Array | None = None) -> jax.Array:
        """The last hidden layer's output (the input, with no hidden layer)."""
        hidden = self.hidden(x, dropout_key)
        return hidden[-1][1] if hidden else self.input_features(x)

    def __call__(self, x: jax.Array, dropout_key: jax.Array | None = None) -> jax.Array:
        x = self.features(x, dropout_key)
        with jax.named_scope(f"layers_{len(self.layers) - 1}"):
            return self.layers[-1](x)
