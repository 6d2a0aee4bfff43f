"""The jitted pieces: minibatches on the device, fused and stepwise loops, evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import nets
from configs import playground
from training import losses, steps


def test_every_epoch_is_a_new_permutation_of_the_examples():
    batches = steps.Batches(num_examples=10, batch_size=3, key=jax.random.key(0))
    assert batches.steps_per_epoch == 3  # the 10th example sits each epoch out
    data = (jnp.arange(10), jnp.arange(10))
    orders = [batches.order(jnp.int32(s)) for s in (0, 3, 6)]
    for order in orders:
        seen = np.concatenate([np.asarray(batches.take(data, order, s)[0]) for s in range(3)])
        assert len(set(seen.tolist())) == 9
    assert not np.array_equal(orders[0], orders[1])
    np.testing.assert_array_equal(batches.order(jnp.int32(2)), orders[0])  # same epoch


def setup(batch_size):
    config = playground.get_config("circles")
    model = nets.build_model(config.model, (2,), 1, nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)
    optimizer = optax.adam(0.01)
    state = steps.TrainState(step=jnp.array(0), params=params, opt_state=optimizer.init(params))
    train_step = steps.make_train_step(
        graphdef, losses.bce, optimizer, lambda opt_state, step: 0.01
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    data = (jnp.asarray(x), jnp.asarray((x[:, 0] > 0).astype(np.int32)))
    return graphdef, state, train_step, steps.Batches(40, batch_size, jax.random.key(1)), data


@pytest.mark.parametrize("batch_size", [0, 8])
def test_stepwise_loop_equals_fused_loop(batch_size):
    _, state, train_step, batches, data = setup(batch_size)
    results = []
    for fused in (True, False):
        loop = steps.compile_train_loop(train_step, batches, state, data, fused)
        s, metrics = loop(state, data, 7)  # crosses an epoch boundary (5 steps each)
        s, metrics = loop(s, data, 6)
        results.append((int(s.step), jax.tree.leaves(s.params), metrics))
    assert results[0][0] == results[1][0] == 13
    for a, b in zip(results[0][1], results[1][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Every metric of the chunk's last step, not only its loss.
    assert results[0][2].keys() == results[1][2].keys()
    for name, value in results[0][2].items():
        assert float(value) != 0 or name == "accuracy", name
        np.testing.assert_allclose(value, results[1][2][name], rtol=1e-5, err_msg=name)


def test_an_unknown_xla_option_falls_back_to_the_defaults(monkeypatch):
    """A jaxlib without the option still trains, with XLA's defaults."""
    monkeypatch.setattr(steps, "_CPU_COMPILER_OPTIONS", {"xla_cpu_no_such_option": ""})
    steps.compiler_options.cache_clear()
    try:
        assert steps.compiler_options() is None
        _, state, train_step, batches, data = setup(8)
        loop = steps.compile_train_loop(train_step, batches, state, data, fused=True)
        assert int(loop(state, data, 3)[0].step) == 3
    finally:
        steps.compiler_options.cache_clear()


def test_training_programs_are_compiled_without_ynnpack_on_cpu():
    """XLA:CPU's YNNPACK ran the CNN's convolutions on one core (steps.py)."""
    _, state, train_step, batches, data = setup(8)
    fused = steps.compile_train_loop(train_step, batches, state, data, fused=True)
    assert " dot(" in fused.as_text() and "__ynn_fusion" not in fused.as_text()

    config = playground.get_config("circles")
    config.model.name = "cnn"
    cnn = nets.build_model(config.model, (8, 8, 1), 10, nnx.Rngs(0))
    graphdef, params = nnx.split(cnn, nnx.Param)
    optimizer = optax.sgd(0.1)
    state = steps.TrainState(step=jnp.array(0), params=params, opt_state=optimizer.init(params))
    step = steps.make_train_step(graphdef, losses.cross_entropy, optimizer, lambda o, s: 0.1)
    data = (jnp.zeros((16, 8, 8, 1)), jnp.zeros(16, jnp.int32))
    batches = steps.Batches(16, 4, jax.random.key(0))
    loop = steps.compile_train_loop(step, batches, state, data, fused=False)
    program = loop.compiled.as_text()
    assert "convolution(" in program
    assert "__ynn_fusion" not in program
    state, metrics = loop(state, data, 3)
    assert int(state.step) == 3 and set(metrics) > {"loss", "accuracy", "grad_norm"}


def test_uses_convolutions_tells_a_cnn_from_an_mlp():
    _, state, train_step, _, data = setup(0)
    assert not steps.uses_convolutions(train_step, state, data)
    config = playground.get_config("circles")
    config.model.name = "cnn"
    cnn = nets.build_model(config.model, (8, 8, 1), 10, nnx.Rngs(0))
    graphdef, params = nnx.split(cnn, nnx.Param)
    step = steps.make_train_step(
        graphdef, losses.cross_entropy, optax.sgd(0.1), lambda opt_state, step: 0.1
    )
    state = steps.TrainState(
        step=jnp.array(0), params=params, opt_state=optax.sgd(0.1).init(params)
    )
    assert steps.uses_convolutions(step, state, (jnp.zeros((2, 8, 8, 1)), jnp.zeros(2, jnp.int32)))


@pytest.mark.parametrize("batch_size", [7, 40, 1000])
def test_evaluation_in_batches_equals_one_batch(batch_size):
    graphdef, state, _, _, data = setup(0)
    whole = steps.make_evaluate(graphdef, losses.bce, 40, 2, 40, summed_loss=False)
    parts = steps.make_evaluate(graphdef, losses.bce, 40, 2, batch_size, summed_loss=False)
    (m1, c1), (m2, c2) = whole(state.params, data), jax.jit(parts)(state.params, data)
    for key in m1:
        np.testing.assert_allclose(m1[key], m2[key], rtol=1e-5)
    np.testing.assert_array_equal(c1, c2)
    assert int(c1.sum()) == 40


def test_a_summed_loss_adds_up_over_batches():
    graphdef, state, _, _, data = setup(0)
    whole = steps.make_evaluate(graphdef, losses.sse, 40, 2, 40, summed_loss=True)
    parts = steps.make_evaluate(graphdef, losses.sse, 40, 2, 7, summed_loss=True)
    np.testing.assert_allclose(
        whole(state.params, data)[0]["loss"], parts(state.params, data)[0]["loss"], rtol=1e-5
    )
