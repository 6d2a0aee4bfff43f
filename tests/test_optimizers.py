"""Every optimizer minimises a parabola; schedules have the right shape."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base
from plumbing.failures import UserError
from training.optimizers import OPTIMIZERS, SCHEDULES, make_optimizer, with_hyperparameters


def optimizer_config(**changes):
    config = base.get_config().optimizer
    config.update(changes)
    return config


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimizer_minimises_a_parabola(name):
    learning_rate = 0.5 if name == "adagrad" else 0.05  # adagrad's steps shrink fast
    optimizer, _ = make_optimizer(optimizer_config(name=name, learning_rate=learning_rate), 500)
    params = jnp.array([3.0, -2.0])
    state = optimizer.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.grad(lambda p: jnp.sum((p - 1.0) ** 2))(params)
        updates, state = optimizer.update(grads, state, params)
        return params + updates, state

    for _ in range(500):
        params, state = step(params, state)
    assert jnp.allclose(params, 1.0, atol=0.05), params


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_start_at_peak_after_warmup(name):
    optimizer, learning_rate = make_optimizer(optimizer_config(schedule=name, warmup_steps=10), 110)
    opt_state = optimizer.init(jnp.zeros(2))
    schedule = lambda step: learning_rate(opt_state, step)  # noqa: E731
    assert float(schedule(0)) == 0.0
    assert float(schedule(10)) == pytest.approx(0.1)
    end = float(schedule(110))
    assert end == pytest.approx(0.1 if name == "constant" else 0.0, abs=1e-6)


def test_gradient_clipping_bounds_the_update():
    optimizer, _ = make_optimizer(optimizer_config(learning_rate=1.0, grad_clip_norm=1.0), 1)
    updates, _ = optimizer.update(jnp.array([30.0, 40.0]), optimizer.init(jnp.zeros(2)))
    assert float(jnp.linalg.norm(updates)) == pytest.approx(1.0)


def test_unknown_optimizer():
    with pytest.raises(UserError, match="unknown optimizer 'adamm'.*'adam'"):
        make_optimizer(optimizer_config(name="adamm"), 10)


def test_injected_learning_rate_changes_the_update_and_the_logged_rate():
    optimizer, learning_rate = make_optimizer(optimizer_config(schedule="linear"), 100)
    state = optimizer.init(jnp.zeros(2))
    faster = with_hyperparameters(state, {"learning_rate": 0.3})
    assert float(learning_rate(faster, 50)) == pytest.approx(0.15)  # 0.3 x halfway down
    slow, _ = optimizer.update(jnp.ones(2), state)
    fast, _ = optimizer.update(jnp.ones(2), faster)
    np.testing.assert_allclose(fast, 3 * slow, rtol=1e-6)
    with pytest.raises(UserError, match="not an optimizer hyperparameter: lr"):
        with_hyperparameters(state, {"lr": 0.1})
