"""Optimizers and learning-rate schedules, chosen by name (`config.optimizer`).

The optimizer is an optax chain (optional gradient clipping, then the
update rule), wrapped in `optax.inject_hyperparams`: its numbers (learning
rate, momentum, b1, b2, weight decay) live in the optimizer STATE, not in
the compiled program. So one compiled program can train many members, each
with its own learning rate (`config.sweep`, sweeps.py), and the learning
rate of every step can be logged as `train/learning_rate`.

The learning rate of step s is `peak * shape(s)`: the schedule's shape has
peak 1 (warm-up, then constant, cosine or linear decay), the peak is the
injected `learning_rate`.
"""

from collections.abc import Callable

import jax
import ml_collections
import optax

from plumbing.failures import UserError
from plumbing.registry import lookup

# The numbers an optimizer reads from its state; a sweep can vary them
# inside one compiled program.
HYPERPARAMETERS = ("learning_rate", "momentum", "b1", "b2", "weight_decay")

# name -> (learning-rate schedule, {hyperparameter: value}) -> optax transformation
OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": lambda lr, h: optax.sgd(lr),
    "momentum": lambda lr, h: optax.sgd(lr, momentum=h["momentum"]),
    "nesterov": lambda lr, h: optax.sgd(lr, momentum=h["momentum"], nesterov=True),
    "adam": lambda lr, h: optax.adam(lr, b1=h["b1"], b2=h["b2"]),
    "adamw": lambda lr, h: optax.adamw(lr, b1=h["b1"], b2=h["b2"], weight_decay=h["weight_decay"]),
    "rmsprop": lambda lr, h: optax.rmsprop(lr, momentum=h["momentum"]),
    "adagrad": lambda lr, h: optax.adagrad(lr),
}

# The hyperparameters each optimizer reads (the others are ignored).
USES: dict[str, tuple[str, ...]] = {
    "sgd": ("learning_rate",),
    "momentum": ("learning_rate", "momentum"),
    "nesterov": ("learning_rate", "momentum"),
    "adam": ("learning_rate", "b1", "b2"),
    "adamw": ("learning_rate", "b1", "b2", "weight_decay"),
    "rmsprop": ("learning_rate", "momentum"),
    "adagrad": ("learning_rate",),
}


def _constant(steps):
    return optax.constant_schedule(1.0)


def _cosine(steps):
    return optax.cosine_decay_schedule(1.0, max(steps, 1))


def _linear(steps):
    return optax.linear_schedule(1.0, 0.0, max(steps, 1))


# name -> decay steps -> schedule shape (peak 1)
SCHEDULES: dict[str, Callable[[int], optax.Schedule]] = {
    "constant": _constant,
    "cosine": _cosine,  # from the peak to 0 at the last step
    "linear": _linear,  # from the peak to 0 at the last step
}


def schedule_shape(config: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """`config.schedule` after `warmup_steps` of linear warm-up, with peak 1."""
    decay = lookup(SCHEDULES, config.schedule, "schedule")
    warmup = config.warmup_steps
    if warmup <= 0:
        return decay(num_steps)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, 1.0, warmup), decay(num_steps - warmup)], [warmup]
    )


def make_optimizer(
    config: ml_collections.ConfigDict, num_steps: int
) -> tuple[optax.GradientTransformation, Callable[[optax.OptState, jax.Array], jax.Array]]:
    """Returns the optax optimizer for `config.optimizer` and `learning_rate`.

    `learning_rate(opt_state, step)` is the rate update `step` uses: the
    peak held in that state times the schedule's shape.
    """
    factory = lookup(OPTIMIZERS, config.name, "optimizer")
    shape = schedule_shape(config, num_steps)

    def rule(learning_rate, momentum, b1, b2, weight_decay):
        numbers = dict(momentum=momentum, b1=b1, b2=b2, weight_decay=weight_decay)
        update = factory(lambda step: learning_rate * shape(step), numbers)
        if config.grad_clip_norm > 0:
            update = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), update)
        return update

    optimizer = optax.inject_hyperparams(rule)(**{k: float(config[k]) for k in HYPERPARAMETERS})

    def learning_rate(opt_state: optax.OptState, step: jax.Array) -> jax.Array:
        return opt_state.hyperparams["learning_rate"] * shape(step)

    return optimizer, learning_rate


def with_hyperparameters(opt_state: optax.OptState, values: dict) -> optax.OptState:
    """`opt_state` with some injected numbers replaced, e.g. {'learning_rate': 0.3}."""
    unknown = set(values) - set(opt_state.hyperparams)
    if unknown:
        raise UserError(f"not an optimizer hyperparameter: {', '.join(sorted(unknown))}")
    hyperparams = dict(opt_state.hyperparams)
    for name, value in values.items():
        hyperparams[name] = jax.numpy.asarray(value, hyperparams[name].dtype)
    return opt_state._replace(hyperparams=hyperparams)
