"""Optimizers and learning-rate schedules, chosen by name (`config.optimizer`).

The optimizer is an optax chain (optional gradient clipping, then the
update rule) and the learning rate is a schedule, a function of the step,
so it can be logged as `train/learning_rate` and swept like any number.
"""

from collections.abc import Callable

import ml_collections
import optax

from registry import lookup

# name -> (learning-rate schedule, config.optimizer) -> optax transformation
OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": lambda lr, c: optax.sgd(lr),
    "momentum": lambda lr, c: optax.sgd(lr, momentum=c.momentum),
    "nesterov": lambda lr, c: optax.sgd(lr, momentum=c.momentum, nesterov=True),
    "adam": lambda lr, c: optax.adam(lr, b1=c.b1, b2=c.b2),
    "adamw": lambda lr, c: optax.adamw(lr, b1=c.b1, b2=c.b2, weight_decay=c.weight_decay),
    "rmsprop": lambda lr, c: optax.rmsprop(lr, momentum=c.momentum),
    "adagrad": lambda lr, c: optax.adagrad(lr),
}


def _constant(lr, steps):
    return optax.constant_schedule(lr)


def _cosine(lr, steps):
    return optax.cosine_decay_schedule(lr, max(steps, 1))


def _linear(lr, steps):
    return optax.linear_schedule(lr, 0.0, max(steps, 1))


# name -> (peak learning rate, decay steps) -> schedule
SCHEDULES: dict[str, Callable[[float, int], optax.Schedule]] = {
    "constant": _constant,
    "cosine": _cosine,  # from the peak to 0 at the last step
    "linear": _linear,  # from the peak to 0 at the last step
}


def learning_rate_schedule(config: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """`config.optimizer.schedule` after `warmup_steps` of linear warm-up."""
    decay = lookup(SCHEDULES, config.schedule, "schedule")
    peak, warmup = config.learning_rate, config.warmup_steps
    if warmup <= 0:
        return decay(peak, num_steps)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, peak, warmup), decay(peak, num_steps - warmup)],
        [warmup],
    )


def make_optimizer(
    config: ml_collections.ConfigDict, num_steps: int
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Returns the optax chain for `config.optimizer` and its schedule."""
    schedule = learning_rate_schedule(config, num_steps)
    rule = lookup(OPTIMIZERS, config.name, "optimizer")(schedule, config)
    if config.grad_clip_norm > 0:
        rule = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), rule)
    return rule, schedule
