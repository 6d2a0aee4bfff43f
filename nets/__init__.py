"""Networks, chosen by name from the config (`config.model.name`)."""

import math
from collections.abc import Callable

import ml_collections
from flax import nnx

from nets.activations import ACTIVATIONS, ActivationOptions, make_activation
from nets.cnn import CNN
from nets.maxout import MaxoutDense, MaxoutMLP
from nets.mlp import MLP
from plumbing.failures import UserError
from training.registry import lookup

__all__ = [
    "ACTIVATIONS",
    "CNN",
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


def _mlp(model, input_shape, out_features, rngs):
    activation = make_activation(model.activation, activation_options(model))
    in_features = math.prod(input_shape)  # images are flattened
    return MLP(in_features, model.hidden_sizes, out_features, activation, rngs=rngs)


def _cnn(model, input_shape, out_features, rngs):
    if len(input_shape) != 3:
        raise UserError(f"model 'cnn' needs images (height, width, channels), got {input_shape}")
    activation = make_activation(model.activation, activation_options(model))
    return CNN(input_shape, out_features, activation, rngs=rngs)


def _maxout_mlp(model, input_shape, out_features, rngs):
    in_features = math.prod(input_shape)
    return MaxoutMLP(in_features, model.hidden_sizes, model.maxout_pieces, out_features, rngs=rngs)


# name -> (config.model, input_shape, out_features, rngs) -> module
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
) -> nnx.Module:
    """Builds `config.model` for one example's `input_shape` and `out_features` outputs."""
    return lookup(MODELS, model.name, "model")(model, tuple(input_shape), out_features, rngs)
