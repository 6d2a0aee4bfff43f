"""Networks, chosen by name from the config (`config.model.name`)."""

from collections.abc import Callable

import ml_collections
from flax import nnx

from nets.activations import ACTIVATIONS, ActivationOptions, make_activation
from nets.maxout import MaxoutDense
from nets.mlp import MLP
from registry import lookup

__all__ = ["ACTIVATIONS", "MODELS", "MLP", "MaxoutDense", "build_model", "make_activation"]


def activation_options(model: ml_collections.ConfigDict) -> ActivationOptions:
    """The activation settings of a `config.model` section."""
    fields = ActivationOptions.__dataclass_fields__
    return ActivationOptions(**{k: model[k] for k in fields if k in model})


def _mlp(model, in_features, out_features, rngs):
    activation = make_activation(model.activation, activation_options(model))
    return MLP(in_features, model.hidden_sizes, out_features, activation, rngs=rngs)


# name -> (config.model, in_features, out_features, rngs) -> module
MODELS: dict[str, Callable[..., nnx.Module]] = {"mlp": _mlp}


def build_model(
    model: ml_collections.ConfigDict, in_features: int, out_features: int, rngs: nnx.Rngs
) -> nnx.Module:
    """Builds `config.model` for inputs of `in_features` and `out_features` outputs."""
    return lookup(MODELS, model.name, "model")(model, in_features, out_features, rngs)
