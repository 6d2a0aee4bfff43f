"""Networks, chosen by name from the config (`config.model.name`)."""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from nets.activations import ACTIVATIONS, ActivationOptions, layer_names, make_activation
from nets.cnn import CNN
from nets.features import PLAIN, Features, feature_names
from nets.kernels import Kernels, for_backend
from nets.maxout import MaxoutDense, MaxoutMLP
from nets.mlp import MLP
from plumbing.failures import UserError
from plumbing.registry import lookup

__all__ = [
    "ACTIVATIONS",
    "CNN",
    "Kernels",
    "MLP",
    "MODELS",
    "MaxoutDense",
    "build_model",
    "feature_names",
    "layer_activations",
    "layer_names",
    "apply",
    "make_activation",
    "param_name",
    "predictions",
    "to_inputs",
    "probabilities",
]


def activation_options(model: ml_collections.ConfigDict) -> ActivationOptions:
    """The activation settings of a `config.model` section."""
    fields = ActivationOptions.__dataclass_fields__
    return ActivationOptions(**{k: model[k] for k in fields if k in model})


def layer_activations(model: ml_collections.ConfigDict, num_layers: int) -> list:
    """A factory `num_features -> module` per layer, from `model.activation`."""
    options = activation_options(model)
    return [make_activation(n, options) for n in layer_names(model.activation, num_layers)]


def _mlp(model, input_shape, out_features, rngs, kernels, features):
    activation = layer_activations(model, len(model.hidden_sizes))
    in_features = math.prod(input_shape)  # images are flattened
    names = feature_names(features)
    inputs = None if names == PLAIN else Features(names)
    return MLP(
        len(names) if inputs else in_features,
        model.hidden_sizes,
        out_features,
        activation,
        dot_general=kernels.dot_general,
        inputs=inputs,
        dropout=model.get("dropout", 0.0),
        rngs=rngs,
    )


def _cnn(model, input_shape, out_features, rngs, kernels, features):
    del features  # images: (checks.py refuses input features for them)
    if len(input_shape) != 3:
        raise UserError(f"model 'cnn' needs images (height, width, channels), got {input_shape}")
    activation = layer_activations(model, CNN.NUM_ACTIVATIONS)
    return CNN(
        input_shape, out_features, activation, conv=kernels.conv, pool=kernels.pool,
        dropout=model.get("dropout", 0.0), rngs=rngs,
    )  # fmt: skip


def _maxout_mlp(model, input_shape, out_features, rngs, kernels, features):
    del kernels, features  # its layers are wide: plain nnx.Linear; images
    in_features = math.prod(input_shape)
    return MaxoutMLP(in_features, model.hidden_sizes, model.maxout_pieces, out_features, rngs=rngs)


# name -> (config.model, input_shape, out_features, rngs, kernels, features) -> module
MODELS: dict[str, Callable[..., nnx.Module]] = {
    "mlp": _mlp,
    "cnn": _cnn,
    "maxout_mlp": _maxout_mlp,
}


def build_model(
    model: ml_collections.ConfigDict,
    input_shape: tuple[int, ...],
    out_features: int,
    rngs: nnx.Rngs,
    kernels: Kernels | None = None,
    features=PLAIN,
) -> nnx.Module:
    """Builds `config.model` for one example's `input_shape` and `out_features` outputs.

    kernels: the parts the model computes with (nets/kernels.py):
      `kernels.PLAIN` (the Flax ops), `kernels.CPU`, or None: the fastest
      measured for this backend, `kernels.for_backend(jax.default_backend())`.
    features: `config.data.features`, the names of the functions of 2-D
      points the model sees (nets/features.py); the MLP's only.
    """
    if kernels is None:
        kernels = for_backend(jax.default_backend())
    build = lookup(MODELS, model.name, "model")
    return build(model, tuple(input_shape), out_features, rngs, kernels, features)


def to_inputs(x: jax.Array) -> jax.Array:
    """What a model sees of a dataset's inputs: uint8 pixels (images are kept
    so on the device, a quarter of float32's memory) scaled to [0, 1]; other
    data as it is."""
    return x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x


def apply(graphdef, params, x: jax.Array, **kwargs) -> jax.Array:
    """The model of `graphdef` (its static half, `nnx.split`) with `params`, on
    the inputs `x`: its outputs. Every step, evaluation and probe calls it."""
    return nnx.merge(graphdef, params)(to_inputs(x), **kwargs)


# What a classifier's outputs say. A classifier outputs LOGITS, (batch, K):
# K = 1 for a binary task (class 1 where the score is >= 0), else one per class.


def probabilities(logits: jax.Array) -> jax.Array:
    """Class probabilities: sigmoid of a single logit, softmax of several."""
    return jax.nn.sigmoid(logits) if logits.shape[-1] == 1 else jax.nn.softmax(logits)


def predictions(logits: jax.Array) -> jax.Array:
    """Predicted class ids, (batch, K) -> (batch,)."""
    if logits.shape[-1] == 1:
        return (logits[..., 0] >= 0).astype(jnp.int32)
    return jnp.argmax(logits, axis=-1)


def param_name(path) -> str:
    """'layers/0/kernel': the name of a parameter from its path in a model's
    state (`jax.tree_util.tree_leaves_with_path`), as TensorBoard shows it."""
    return jax.tree_util.keystr(path, simple=True, separator="/").removesuffix("/value")
