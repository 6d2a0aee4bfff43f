"""Loss functions and classification metrics, chosen by name (`config.loss`).

A network learns by minimising a loss: a function of the gap between what
it outputs and what it should output. Every loss here has one signature,

    loss(outputs, labels) -> scalar (mean over the batch; `sse` sums)

(`lp` also takes its power; `get_loss` binds it from `config.loss_power`.)

Classifiers output LOGITS, shape (batch, K): K = 1 for a binary task (one
score; class 1 when it is >= 0) or K = number of classes (the largest score
wins). Labels are integer class ids, shape (batch,).

- `bce` and `cross_entropy` read logits directly, in a numerically stable
  form (never log(sigmoid(z))).
- `mse`, `mae` and `lp` compare PROBABILITIES (sigmoid for K = 1, softmax
  otherwise) with the 0/1 target, as the seminar's sigmoid-output network
  does. Given float targets of the outputs' shape (a regression task), they
  compare the raw outputs instead.
- The classification error (fraction wrong) is a metric, not a loss: its
  gradient is zero almost everywhere, so gradient descent cannot follow it.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from nets import predictions, probabilities  # noqa: F401  (losses.predictions for callers)
from plumbing.failures import UserError
from plumbing.registry import lookup


def targets(labels: jax.Array, num_outputs: int) -> jax.Array:
    """0/1 targets shaped like the logits: (batch,) -> (batch, num_outputs)."""
    if num_outputs == 1:
        return labels[..., None].astype(jnp.float32)
    return jax.nn.one_hot(labels, num_outputs)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of the batch classified correctly."""
    return jnp.mean(predictions(logits) == labels)


def classification_metrics(logits: jax.Array, labels: jax.Array) -> dict[str, jax.Array]:
    """`accuracy` and `classification_error` (fraction wrong) of a batch."""
    correct = accuracy(logits, labels)
    return {"accuracy": correct, "classification_error": 1 - correct}


def task_metrics(outputs: jax.Array, labels: jax.Array) -> dict[str, jax.Array]:
    """Metrics besides the loss: classification metrics, or a regression's MSE."""
    if jnp.issubdtype(labels.dtype, jnp.floating):
        return {"mse": mse(outputs, labels)}
    return classification_metrics(outputs, labels)


def _gap(outputs: jax.Array, labels: jax.Array) -> jax.Array:
    if jnp.issubdtype(labels.dtype, jnp.floating):  # regression: raw outputs
        assert labels.shape == outputs.shape, (labels.shape, outputs.shape)
        return outputs - labels
    return probabilities(outputs) - targets(labels, outputs.shape[-1])


def mse(outputs, labels):
    """Mean squared error."""
    return jnp.mean(_gap(outputs, labels) ** 2)


def sse(outputs, labels):
    """Sum (not mean) of squared errors: the seminar's linear-regression loss.

    Its gradient grows with the batch, so the learning rate that suits it
    shrinks as the data grows (0.01 suits tens of points of scale 1).
    """
    return jnp.sum(_gap(outputs, labels) ** 2)


def mae(outputs, labels):
    """Mean absolute error: less pull from outliers than MSE."""
    return jnp.mean(jnp.abs(_gap(outputs, labels)))


def lp(outputs, labels, power: float = 2.0):
    """Mean |error| ** power (`config.loss_power`); 2 is MSE, 1 is MAE."""
    return jnp.mean(jnp.abs(_gap(outputs, labels)) ** power)


def bce(logits, labels):
    """Binary cross-entropy from logits, one sigmoid per output."""
    t = targets(labels, logits.shape[-1])
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, t))


def cross_entropy(logits, labels):
    """Softmax cross-entropy with integer labels; needs K >= 2 outputs."""
    assert logits.shape[-1] >= 2, "cross_entropy needs one logit per class"
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


LOSSES: dict[str, Callable[..., jax.Array]] = {
    "mse": mse,
    "sse": sse,
    "mae": mae,
    "lp": lp,
    "bce": bce,
    "cross_entropy": cross_entropy,
}


# Losses that compare raw outputs with float targets.
REGRESSION_LOSSES = ("mse", "sse", "mae", "lp")


def get_loss(name: str, power: float = 2.0) -> Callable[..., jax.Array]:
    """The loss called `name` as `(outputs, labels) -> scalar`.

    Args:
      name: a key of LOSSES.
      power: the exponent of `lp` (ignored by the others).

    Raises:
      UserError: for the classification error (not trainable, says why) and
        for unknown names (lists the valid ones).
    """
    if name == "classification_error":
        raise UserError(
            "classification_error cannot be trained on: it is a step function "
            "of the weights, so its gradient is zero almost everywhere and "
            "gradient descent never moves. It is logged as "
            "train/classification_error; train on bce, cross_entropy or mse."
        )
    loss = lookup(LOSSES, name, "loss")
    return functools.partial(lp, power=power) if loss is lp else loss


def num_outputs(loss: str, num_classes: int) -> int:
    """Logits a classifier needs: one for a binary task, except for softmax."""
    if num_classes == 0:
        raise ValueError("a regression's outputs are its targets' width")
    return 1 if num_classes == 2 and loss != "cross_entropy" else num_classes
