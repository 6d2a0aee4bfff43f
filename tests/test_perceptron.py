"""The seminar's perceptron gates and XOR from gates: exact truth tables."""

import jax.numpy as jnp
import numpy as np
import pytest

from nets.perceptron import GATES, Perceptron, XorFromGates

INPUTS = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]], jnp.float32)
TRUTH = {"or": [0, 1, 1, 1], "and": [0, 0, 0, 1], "nand": [1, 1, 1, 0]}


@pytest.mark.parametrize("gate", sorted(GATES))
def test_seminar_weights_give_the_truth_table(gate):
    np.testing.assert_array_equal(Perceptron.gate(gate)(INPUTS), TRUTH[gate])


def test_seminar_weights_exactly():
    assert GATES == {
        "or": ((0.5, 0.5), 0.3, False),
        "and": ((0.5, 0.5), 0.7, False),
        "nand": ((0.5, 0.5), 0.7, True),
    }


def test_nand_is_and_with_weights_and_threshold_negated():
    negated = Perceptron((-0.5, -0.5), -0.7)
    np.testing.assert_array_equal(negated(INPUTS), Perceptron.gate("nand")(INPUTS))


def test_threshold_is_inclusive():
    # y = 1 if w.x >= theta: on the line counts as firing.
    assert float(Perceptron((1.0, 0.0), 1.0)(jnp.array([1.0, 0.0]))) == 1.0
    assert float(Perceptron((1.0, 0.0), 1.0, reverse=True)(jnp.array([1.0, 0.0]))) == 1.0


def test_xor_from_gates():
    model = XorFromGates()
    np.testing.assert_array_equal(model(INPUTS), [0, 1, 1, 0])
    np.testing.assert_array_equal(model.hidden(INPUTS), np.stack([TRUTH["or"], TRUTH["nand"]], 1))


def test_shape_check():
    with pytest.raises(AssertionError, match="expects 2 inputs"):
        Perceptron.gate("or")(jnp.ones((4, 3)))
