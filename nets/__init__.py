"""Networks, chosen by name from the config (`config.model.name`)."""

import math
from collections.abc import Callable

import jax
import ml_collections
from flax import nnx

from nets.activations import ACTIVATIONS, ActivationOptions, make_activation
from nets.cnn import CNN
from nets.kernels import Kernels, for_backend
from nets.maxout import MaxoutDense, MaxoutMLP
from nets.mlp import MLP
from plumbing.failures import UserError
from training.registry import lookup

__all__ = [
    "ACTIVATIONS",
    "CNN",
    "Kernels",
    "MLP",
    "MODELS",
    "MaxoutDense",
    "build_model",
    "make_activation",
]


def activation_options(model: ml_collections.ConfigDict) -> ActivationOptions:
    """The activation settings of a `config.model` section."""
    fields = ActivationOptions.__dataclass_fields__
    return ActivationOptions(**{k: model[k] for k in fields if k in model})


def _mlp(model, input_shape, out_features, rngs, kernels):
    activation = make_activation(model.activation, activation_options(model))
    in_features = math.prod(input_shape)  # images are flattened
    return MLP(
        in_features,
        model.hidden_sizes,
        out_features,
        activation,
        dot_general=kernels.dot_general,
        rngs=rngs,
    )


def _cnn(model, input_shape, out_features, rngs, kernels):
    if len(input_shape) != 3:
        raise UserError(f"model 'cnn' needs images (height, width, channels), got {input_shape}")
    activation = make_activation(model.activation, activation_options(model))
    return CNN(
        input_shape, out_features, activation, conv=kernels.conv, pool=kernels.pool, rngs=rngs
    )


def _maxout_mlp(model, input_shape, out_features, rngs, kernels):
    del kernels  # its layers are wide: plain nnx.Linear
    in_features = math.prod(input_shape)
    return MaxoutMLP(in_features, model.hidden_sizes, model.maxout_pieces, out_features, rngs=rngs)


# name -> (config.model, input_shape, out_features, rngs, kernels) -> module
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
) -> nnx.Module:
    """Builds `config.model` for one example's `input_shape` and `out_features` outputs.

    kernels: the parts the model computes with (nets/kernels.py):
      `kernels.PLAIN` (the Flax ops), `kernels.CPU`, or None: the fastest
      measured for this backend, `kernels.for_backend(jax.default_backend())`.
    """
    if kernels is None:
        kernels = for_backend(jax.default_backend())
    build = lookup(MODELS, model.name, "model")
    return build(model, tuple(input_shape), out_features, rngs, kernels)
