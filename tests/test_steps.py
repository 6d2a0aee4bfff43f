"""The jitted pieces: minibatches on the device, fused and stepwise loops, evaluation."""

import re
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from conftest import assert_same_numbers, exact_matmuls, same_numbers_precision

import data
from configs import playground
from training import losses, program, steps, sweeps

CPU_ONLY = pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's options")


def test_every_epoch_is_a_new_permutation_of_the_examples():
    batches = steps.Batches(num_examples=10, batch_size=3)
    key = jax.random.key(0)
    assert batches.steps_per_epoch == 3  # the 10th example sits each epoch out
    arrays = (jnp.arange(10), jnp.arange(10))
    orders = [batches.order(key, jnp.int32(s)) for s in (0, 3, 6)]
    for order in orders:
        seen = np.concatenate([np.asarray(batches.take(arrays, order, s)[0]) for s in range(3)])
        assert len(set(seen.tolist())) == 9
    assert not np.array_equal(orders[0], orders[1])
    np.testing.assert_array_equal(batches.order(key, jnp.int32(2)), orders[0])  # same epoch


def build(batch_size=0, model="mlp", stepwise=None, num_seeds=1, parts_of=0, hidden=None,
          split_step=-1):  # fmt: skip
    """train.py's program for a small 2-D task (or 8x8 images for the CNN)."""
    config = playground.get_config("circles")
    config.split_step = split_step
    if hidden:
        config.model.hidden_sizes = hidden
    config.batch_size, config.num_seeds = batch_size, num_seeds
    config.members_per_program = parts_of
    config.model.name = model
    rng = np.random.default_rng(0)
    shape = (40, 8, 8, 1) if model == "cnn" else (40, 2)
    x = rng.normal(size=shape).astype(np.float32)
    y = (x.reshape(40, -1)[:, 0] > 0).astype(np.int32)
    dataset = data.Dataset(x, y, x, y, num_classes=2)
    return program.build(sweeps.groups(config)[0], dataset, stepwise)


@pytest.mark.parametrize("batch_size", [0, 8])
def test_stepwise_loop_equals_fused_loop(batch_size):
    results = []
    for stepwise in (False, True):
        built = build(batch_size, stepwise=stepwise)
        s, d, _ = built.train(built.state, built.diverged_at, 7)  # crosses an epoch (5 steps)
        s, d, metrics = built.train(s, d, 6)
        results.append((int(s.step[0]), jax.tree.leaves(s.params), metrics))
    assert results[0][0] == results[1][0] == 13
    for a, b in zip(results[0][1], results[1][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Every metric of the chunk's last step, not only its loss.
    assert results[0][2].keys() == results[1][2].keys()
    for name, value in results[0][2].items():
        assert float(value[0]) != 0 or name == "accuracy", name
        np.testing.assert_allclose(value, results[1][2][name], rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("first", [3, 2])
def test_split_pairs_take_the_same_steps_fused_and_stepwise(first):
    """Seeds 0 and 1 split at step 3, mid-epoch (5 steps an epoch), at the
    start of a call (`first` = 3) or inside one (2): the fused loop and the
    stepwise one draw the new orders at the same step, and the pair is one
    network until then."""
    results = []
    for stepwise in (False, True):
        built = build(8, stepwise=stepwise, num_seeds=2, split_step=3)
        s, d, _ = built.train(built.state, built.diverged_at, first)
        together = [np.array_equal(a[0], a[1]) for a in jax.tree.leaves(s.params)]
        s, d, _ = built.train(s, d, 13 - first)
        results.append((together, jax.tree.leaves(s.params)))
    assert all(results[0][0]) and all(results[1][0])  # one network for 3 steps
    assert not np.array_equal(results[0][1][0][0], results[0][1][0][1])  # two after
    for a, b in zip(results[0][1], results[1][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch_size", [0, 8])
def test_a_member_of_many_trains_as_it_would_alone(batch_size):
    """Member k of a vmapped program is the single run of seed k."""
    many = build(batch_size, num_seeds=3)
    s, _, metrics = many.train(many.state, many.diverged_at, 12)
    alone = build(batch_size)  # seed 0
    a, _, alone_metrics = alone.train(alone.state, alone.diverged_at, 12)
    for x, y in zip(jax.tree.leaves(s.params), jax.tree.leaves(a.params), strict=True):
        np.testing.assert_allclose(x[0], y[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(metrics["loss"][0], metrics["loss"][1])  # other seeds
    np.testing.assert_allclose(metrics["loss"][0], alone_metrics["loss"][0], rtol=1e-5)


@pytest.mark.parametrize("model, batch_size", [("mlp", 8), ("cnn", 8)])
def test_members_trained_in_parts_end_as_all_at_once(model, batch_size):
    """5 members in parts of 2 (0-1, 2-3, 3-4) end as all 5 at once (fused;
    the CNN stepwise on CPU), minibatches crossing an epoch: bitwise on CPU,
    to float32 rounding on a GPU, whose kernels follow the members' number
    (conftest.assert_same_numbers, docs/design.md)."""
    results = []
    with same_numbers_precision():
        for parts_of in (0, 2):
            built = build(batch_size, model, num_seeds=5, parts_of=parts_of)
            s, d, _ = built.train(built.state, built.diverged_at, 7)  # crosses an epoch (5 steps)
            s, d, metrics = built.train(s, d, 6)
            results.append((built.part, jax.device_get((s, metrics, built.evaluate(s.params)))))
    assert results[0][0] == 5 and results[1][0] == 2
    (_, whole), (_, parts) = results
    assert_same_numbers(parts, whole)


@pytest.mark.parametrize("model, batch_size, hidden", [("mlp", 0, (16,) * 6), ("mlp", 8, (8,)),
                                                        ("cnn", 8, None)])  # fmt: skip
def test_where_the_reports_fall_changes_no_bit(model, batch_size, hidden):
    """13 steps in one call, or in calls of 1, 5 and 7, each ending in the
    step that computes its metrics beside its update (the fused loop's, and
    the CNN's stepwise one on CPU): the same weights and metrics, bitwise on
    CPU (docs/design.md; to float32 rounding on a GPU)."""
    ends = []
    with same_numbers_precision():
        for chunks in ([13], [1, 5, 7]):
            built = build(batch_size, model, num_seeds=2, hidden=hidden)
            state, diverged_at = built.state, built.diverged_at
            for n in chunks:
                state, diverged_at, metrics = built.train(state, diverged_at, n)
            ends.append(jax.device_get((state, metrics)))
    assert_same_numbers(ends[1], ends[0])


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_exact_matmuls_reach_every_product_build_compiles(model, monkeypatch):
    """What tests compare with an exact reference they compute under
    conftest.exact_matmuls: HIGHEST (float32, not a GPU's TF32) in every
    product and convolution of every program build() compiles (as lowered,
    before any backend's rewrites); XLA's default without it."""
    lowered, compile_ = [], jax.stages.Lowered.compile
    spy = lambda self, *a, **k: lowered.append(self.as_text()) or compile_(self, *a, **k)  # noqa: E731
    monkeypatch.setattr(jax.stages.Lowered, "compile", spy)

    def precisions():
        ops = re.findall(r"stablehlo\.(?:dot_general|convolution).*", "\n".join(lowered))
        lowered.clear()
        assert len(ops) >= 3, ops  # the forward pass and its gradient, at least
        found = (
            re.search(r"precision(?:_config)? = \[(?:#stablehlo<precision )?(\w+)", o) for o in ops
        )
        return {f[1] if f else "unstated" for f in found}

    with exact_matmuls():
        build(0, model, num_seeds=2)
    assert precisions() == {"HIGHEST"}
    build(0, model, num_seeds=2)
    assert precisions() == {"DEFAULT"}


@CPU_ONLY
def test_an_unknown_xla_option_falls_back_to_the_defaults(monkeypatch):
    """A jaxlib without the option still trains, with XLA's defaults."""
    monkeypatch.setattr(steps, "_CPU_COMPILER_OPTIONS", {"xla_cpu_no_such_option": ""})
    steps.compiler_options.cache_clear()
    try:
        assert steps.compiler_options() is None
        built = build(8)
        assert int(built.train(built.state, built.diverged_at, 3)[0].step[0]) == 3
    finally:
        steps.compiler_options.cache_clear()


@CPU_ONLY
def test_training_programs_are_compiled_without_ynnpack_on_cpu():
    """XLA:CPU's YNNPACK ran the CNN's convolutions on one core (steps.py)."""
    fused = build(8).compiled.as_text()
    assert "while" in fused and "__ynn_fusion" not in fused
    cnn = build(4, model="cnn")
    assert cnn.stepwise  # convolutions on CPU: one compiled step per call
    text = cnn.compiled.as_text()
    assert "convolution(" in text and "__ynn_fusion" not in text
    state, _, metrics = cnn.train(cnn.state, cnn.diverged_at, 3)
    assert int(state.step[0]) == 3 and set(metrics) > {"loss", "accuracy", "grad_norm"}


def test_uses_convolutions_tells_a_cnn_from_an_mlp():
    for model, convolves in (("mlp", False), ("cnn", True)):
        built = build(4, model=model, stepwise=False)
        one = built.member_state(built.state)
        assert steps.uses_convolutions(built.train_step, one, built.first_batch) == convolves


@pytest.mark.parametrize("batch_size", [7, 40, 1000])
def test_evaluation_in_batches_equals_one_batch(batch_size):
    built = build()
    params = built.member_state(built.state).params
    split = (built.dataset.x_eval, built.dataset.y_eval)
    whole = steps.make_evaluate(built.graphdef, losses.bce, 40, 2, 40, summed_loss=False)
    parts = steps.make_evaluate(built.graphdef, losses.bce, 40, 2, batch_size, summed_loss=False)
    (m1, c1), (m2, c2) = whole(params, split), jax.jit(parts)(params, split)
    for key in m1:
        np.testing.assert_allclose(m1[key], m2[key], rtol=1e-5)
    np.testing.assert_array_equal(c1, c2)
    assert int(c1.sum()) == 40
    # the program's own evaluation is the same, per member
    np.testing.assert_allclose(built.evaluate(built.state.params)[0]["loss"][0], m1["loss"])


def test_a_summed_loss_adds_up_over_batches():
    """At float32 precision: with a GPU's default TF32 products the two batch shapes
    differed beyond rtol 1e-5 (an H200)."""
    with exact_matmuls():
        built = build()
        params = built.member_state(built.state).params
        split = (built.dataset.x_eval, built.dataset.y_eval)
        whole = steps.make_evaluate(built.graphdef, losses.sse, 40, 2, 40, summed_loss=True)
        parts = steps.make_evaluate(built.graphdef, losses.sse, 40, 2, 7, summed_loss=True)
        whole_loss, parts_loss = whole(params, split)[0]["loss"], parts(params, split)[0]["loss"]
    np.testing.assert_allclose(whole_loss, parts_loss, rtol=1e-5)


def test_regularization_penalises_the_weights_not_the_biases():
    from flax import nnx

    import nets

    model = ml_collections.ConfigDict({"name": "mlp", "hidden_sizes": (3,), "activation": "relu"})
    params = nnx.split(nets.build_model(model, (2,), 1, nnx.Rngs(0)), nnx.Param)[1]
    w0, w1 = (np.asarray(params["layers"][i]["kernel"][...]) for i in (0, 1))
    expected = 0.1 * (np.abs(w0).sum() + np.abs(w1).sum()) + 0.01 * 0.5 * (
        (w0**2).sum() + (w1**2).sum()
    )
    np.testing.assert_allclose(steps.Penalty(l1=0.1, l2=0.01)(params), expected, rtol=1e-6)
    # Its gradient is the data loss's plus l2 * w on each kernel; a bias's is unchanged.
    graphdef = nnx.split(nets.build_model(model, (2,), 1, nnx.Rngs(0)), nnx.Param)[0]
    batch = (np.array([[0.0, 1.0], [1.0, 0.0]], np.float32), np.array([1, 0], np.int32))
    state = steps.TrainState(step=jnp.array(0), params=params, opt_state=None)
    grads = {}
    for l2 in (0.0, 0.5):
        identity = optax.GradientTransformation(lambda p: None, lambda g, s, p=None: (g, s))
        step = steps.TrainStep(
            graphdef, losses.get_loss("bce"), identity, lambda s, n: 0.0,
            penalty=steps.Penalty(l2=l2),
        )  # fmt: skip
        _, update = step.update(state, batch)
        grads[l2] = update.grads
        assert (update.penalty is None) == (l2 == 0)
    np.testing.assert_allclose(
        grads[0.5]["layers"][0]["kernel"][...], grads[0.0]["layers"][0]["kernel"][...] + 0.5 * w0,
        rtol=1e-5, atol=1e-7,
    )  # fmt: skip
    np.testing.assert_array_equal(
        grads[0.5]["layers"][0]["bias"][...], grads[0.0]["layers"][0]["bias"][...]
    )


@pytest.mark.parametrize("stepwise", [False, True])
def test_a_single_runs_diverging_step_is_not_taken(stepwise):
    """The step whose numbers overflow sets diverged_at and leaves the weights
    it started from, so its metrics say what went NaN/Inf; later steps of the
    chunk change nothing."""
    config = playground.get_config("circles")
    config.optimizer.name, config.optimizer.learning_rate = "sgd", 1e30
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    dataset = data.Dataset(x, (x[:, 0] > 0).astype(np.int32), x, (x[:, 0] > 0).astype(np.int32),
                           num_classes=2)  # fmt: skip
    built = program.build(sweeps.groups(config)[0], dataset, stepwise)
    state, diverged_at, metrics = built.train(built.state, built.diverged_at, 10)
    at = int(diverged_at[0])
    assert 1 <= at < 10
    assert int(state.step[0]) == at - 1  # the weights of the last good step
    assert all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(state.params))
    assert not np.all(np.isfinite([np.asarray(v) for v in metrics.values()]))
    with pytest.raises(ValueError, match="at least one step"):
        built.train(state, diverged_at, 0)


@pytest.mark.parametrize("block", [96, 125])
def test_members_trained_in_blocks_end_as_all_at_once(block, monkeypatch):
    """250 members trained a block at a time inside each call (on CPU:
    program._block), 96 (two blocks and a last one of 58) or 125, end as
    all at once, minibatches crossing an epoch: bitwise on CPU."""
    results = []
    with same_numbers_precision():
        for size in (None, block):
            if size:
                monkeypatch.setattr(program, "_block", lambda n, *_: min(n, size))  # noqa: B023
            built = build(8, num_seeds=250)
            s, d, _ = built.train(built.state, built.diverged_at, 7)  # crosses an epoch (5 steps)
            s, d, metrics = built.train(s, d, 6)
            results.append(jax.device_get((s, d, metrics)))
    assert_same_numbers(results[1], results[0])


@CPU_ONLY
def test_a_sweeps_block_holds_what_the_caches_do():
    """On one CPU device a call's members train in blocks of at most
    BLOCK_BYTES of state (README's nets: 816 bytes each), of a size that
    divides the members where one does; a state within four blocks, or
    nets too big for 1,024 in a block, train all at once."""
    where = types.SimpleNamespace(mesh=types.SimpleNamespace(size=1))

    def block(members, member_bytes=816):
        state = {"w": jax.ShapeDtypeStruct((members, member_bytes // 4), jnp.float32)}
        return program._block(members, state, where)

    assert block(100_000) == 10_000  # 8.2 MB of state each
    assert block(1_000_000) == 10_000
    assert block(100_001) == 10_272  # the most that fit (a multiple of 16), and a last block
    assert block(30_000) == 30_000  # 24 MB: within four blocks
    assert block(1_000_000, 100) == 50_000  # the PyTorch peer's 2-4-1 nets
    assert block(100_000, 100) == 100_000
    assert block(100_000, 204 * 1024) == 100_000  # 2-128-128-1 nets: 40 in a block
    where.mesh.size = 2  # members split over devices
    assert block(100_000) == 100_000
