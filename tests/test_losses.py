"""Losses against hand-computed values; classification error is a metric."""

import math

import jax
import jax.numpy as jnp
import pytest

from plumbing.failures import UserError
from training import losses

# Two examples, binary task: logits 0 and ln 3 (probabilities 1/2 and 3/4).
LOGITS = jnp.array([[0.0], [math.log(3.0)]])
LABELS = jnp.array([1, 0])
# Gaps between probability and target: -1/2 and 3/4.

GOLDEN = {
    "mse": ((0.5**2) + (0.75**2)) / 2,
    "sse": (0.5**2) + (0.75**2),  # summed, not averaged
    "mae": (0.5 + 0.75) / 2,
    "lp": ((0.5**3) + (0.75**3)) / 2,  # power 3
    "bce": (-math.log(0.5) - math.log(0.25)) / 2,
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_binary_losses(name):
    loss = losses.get_loss(name, power=3.0)
    assert float(loss(LOGITS, LABELS)) == pytest.approx(GOLDEN[name], rel=1e-6)


def test_cross_entropy_integer_labels():
    logits = jnp.array([[0.0, math.log(3.0)], [2.0, 2.0]])
    expected = (-math.log(3 / 4) - math.log(1 / 2)) / 2
    assert float(losses.cross_entropy(logits, jnp.array([1, 0]))) == pytest.approx(expected)


def test_sse_sums_over_the_batch():
    outputs, targets = jnp.array([[1.0], [3.0]]), jnp.array([[0.0], [1.0]])
    assert float(losses.sse(outputs, targets)) == pytest.approx(1.0 + 4.0)


def test_every_loss_is_tested():
    assert set(losses.LOSSES) == set(GOLDEN) | {"cross_entropy"}


def test_bce_is_stable_for_huge_logits():
    logits = jnp.array([[1000.0], [-1000.0]])
    assert float(losses.bce(logits, jnp.array([0, 1]))) == pytest.approx(1000.0)
    grad = jax.grad(lambda z: losses.bce(z, jnp.array([0, 1])))(logits)
    assert jnp.all(jnp.isfinite(grad))


def test_regression_targets_compare_raw_outputs():
    outputs, targets = jnp.array([[1.0], [3.0]]), jnp.array([[0.0], [1.0]])
    assert float(losses.mse(outputs, targets)) == pytest.approx((1 + 4) / 2)
    assert float(losses.mae(outputs, targets)) == pytest.approx((1 + 2) / 2)


def test_accuracy_and_predictions():
    assert list(losses.predictions(LOGITS)) == [1, 1]
    assert float(losses.accuracy(LOGITS, LABELS)) == 0.5
    multi = jnp.array([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0]])
    assert list(losses.predictions(multi)) == [1, 0]


def test_num_outputs():
    assert losses.num_outputs("bce", 2) == 1
    assert losses.num_outputs("mse", 2) == 1
    assert losses.num_outputs("cross_entropy", 2) == 2
    assert losses.num_outputs("bce", 10) == 10


def test_training_on_classification_error_is_refused_with_the_reason():
    with pytest.raises(UserError, match="gradient is zero almost everywhere"):
        losses.get_loss("classification_error")


def test_unknown_loss_lists_valid_names():
    with pytest.raises(UserError, match="unknown loss 'mse2'.*Valid loss names: mse, sse, mae"):
        losses.get_loss("mse2")
