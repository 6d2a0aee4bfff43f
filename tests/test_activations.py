"""Activations: golden values, gradients, and the registry walked whole."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nets.activations import ACTIVATIONS, ActivationOptions, Maxout, Step, make_activation
from plumbing.failures import UserError

X = jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0])

# name -> expected values at X (default options). Every registry entry must
# appear here: test_every_activation_has_golden_values enforces it.
GOLDEN = {
    "step": [0, 0, 1, 1, 1],
    "sigmoid": [0.1192029, 0.3775407, 0.5, 0.6224593, 0.8807971],
    "tanh": [-0.9640276, -0.4621172, 0.0, 0.4621172, 0.9640276],
    "relu": [0, 0, 0, 0.5, 2],
    "leaky_relu": [-0.02, -0.005, 0, 0.5, 2],
    "identity": [-2, -0.5, 0, 0.5, 2],
    "maxout": [-0.02, -0.005, 0, 0.5, 2],  # k = 2 starts as leaky ReLU
}


def test_every_activation_has_golden_values():
    assert set(GOLDEN) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_values_and_shape(name):
    activation = make_activation(name)(X.shape[-1])
    y = activation(X[None, :].repeat(3, axis=0))
    assert y.shape == (3, 5)
    np.testing.assert_allclose(y[0], GOLDEN[name], rtol=1e-5, atol=1e-6)


def test_step_parameters_and_reversed_inequality():
    # theta = 0.7, outputs 5 / -1: a shifted, rescaled threshold.
    y = Step(theta=0.7, gamma1=5.0, gamma2=-1.0)(jnp.array([0.69, 0.7, 3.0]))
    np.testing.assert_array_equal(y, [-1, 5, 5])


def test_step_gradient_is_zero_unless_straight_through():
    grad = jax.grad(lambda x: Step()(x).sum())(X)
    np.testing.assert_array_equal(grad, 0)
    grad = jax.grad(lambda x: Step(straight_through=True)(x).sum())(X)
    # The ramp from 0 to 1 over [-1, 1] has slope 1/2; zero outside.
    np.testing.assert_allclose(grad, [0, 0.5, 0.5, 0.5, 0])
    # ... while the forward value stays the exact step.
    np.testing.assert_array_equal(Step(straight_through=True)(X), GOLDEN["step"])


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu", "identity"])
def test_gradients_match_derivatives(name):
    grad = jax.vmap(jax.grad(lambda x: make_activation(name)(1)(x)))(X)
    expected = {
        "sigmoid": jax.nn.sigmoid(X) * (1 - jax.nn.sigmoid(X)),
        "tanh": 1 - jnp.tanh(X) ** 2,
        "relu": (X > 0).astype(float),
        "leaky_relu": jnp.where(X >= 0, 1.0, 0.01),
        "identity": jnp.ones_like(X),
    }[name]
    np.testing.assert_allclose(grad, expected, rtol=1e-5)


def test_sigmoid_derivative_is_at_most_a_quarter():
    x = jnp.linspace(-10, 10, 2001)
    grad = jax.vmap(jax.grad(make_activation("sigmoid")(1)))(x)
    assert grad.max() == pytest.approx(0.25)


def test_leaky_slope_option():
    y = make_activation("leaky_relu", ActivationOptions(leaky_slope=0.2))(1)(X)
    np.testing.assert_allclose(y, [-0.4, -0.1, 0, 0.5, 2])


@pytest.mark.parametrize("pieces", [1, 2, 3, 5])
def test_maxout_parameters_one_row_per_unit(pieces):
    maxout = Maxout(num_features=4, pieces=pieces)
    assert maxout.slopes[...].shape == (4, pieces)
    assert maxout.intercepts[...].shape == (4, pieces)


def test_maxout_every_piece_wins_somewhere_at_init():
    maxout = Maxout(num_features=1, pieces=4)
    x = jnp.linspace(-3, 3, 601)[:, None]
    lines = x[..., None] * maxout.slopes[...][None] + maxout.intercepts[...][None]
    winners = set(np.asarray(jnp.argmax(lines, axis=-1)).ravel())
    assert winners == {0, 1, 2, 3}


def test_maxout_gradients_reach_every_parameter():
    from flax import nnx

    maxout = Maxout(num_features=3, pieces=3)
    graphdef, params = nnx.split(maxout, nnx.Param)
    x = jax.random.normal(jax.random.key(0), (64, 3)) * 2

    def loss(params):
        return (nnx.merge(graphdef, params)(x) ** 2).sum()

    grads = jax.grad(loss)(params)
    for grad in (grads["slopes"][...], grads["intercepts"][...]):
        assert grad.shape == (3, 3)
        assert np.all(np.asarray(grad) != 0), grad


def test_maxout_learns_absolute_value():
    """max(w1*x + b1, w2*x + b2) can become |x|: the pieces are learned."""
    import optax
    from flax import nnx

    graphdef, params = nnx.split(Maxout(1, 2), nnx.Param)
    x = jnp.linspace(-2, 2, 41)[:, None]
    optimizer = optax.adam(0.05)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(
            lambda p: ((nnx.merge(graphdef, p)(x) - jnp.abs(x)) ** 2).mean()
        )(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    for _ in range(500):
        params, opt_state, loss = step(params, opt_state)
    assert loss < 1e-3


def test_unknown_activation_lists_valid_names():
    with pytest.raises(UserError, match="unknown activation 'relux'.*relu.*Valid"):
        make_activation("relux")
