"""Sharpness: the top eigenvalue of the loss Hessian, from Hessian-vector products."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import exact_matmuls, read_image, read_scalars
from flax import nnx
from jax.flatten_util import ravel_pytree

import data
import nets
import train
from plumbing.failures import UserError
from training import curvature, losses, program, sweeps


def exact_top_eigenvalue(loss, params) -> float:
    flat, unravel = ravel_pytree(params)
    hessian = jax.hessian(lambda v: loss(unravel(v)))(flat)
    return float(np.linalg.eigvalsh(np.asarray(hessian, np.float64))[-1])


def test_lanczos_finds_the_largest_eigenvalue_not_the_largest_in_size():
    """Power iteration would find -10; the sharpness is the top one, 3."""
    diagonal = jnp.array([-10.0, 3.0, 1.0, 0.5, -2.0, 2.9])
    top = curvature.lanczos_top_eigenvalue(lambda v: diagonal * v, jnp.ones(6), 20)
    assert float(top) == pytest.approx(3.0, rel=1e-5)


def test_lanczos_explores_a_map_of_tiny_curvatures_as_fully_as_a_large_one():
    """A net fitted to a loss near 0 has curvatures of 1e-8: the breakdown
    test is relative to the map's size, so all six come out, scaled."""
    diagonal = jnp.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    for scale in (1.0, 1e-8):
        alphas, betas = curvature.lanczos(lambda v: scale * diagonal * v, jnp.ones(6), 6)  # noqa: B023
        assert np.all(np.asarray(betas) > 0), scale
        values = np.sort(np.asarray(curvature.ritz(alphas, betas)[0]))
        np.testing.assert_allclose(values / scale, np.arange(1.0, 7.0), rtol=1e-4)


def test_sharpness_equals_the_exact_hessians_top_eigenvalue(xor_config):
    """A 2-8-1 tanh net (33 weights) on 16 points, with L2: jax.hessian agrees."""
    xor_config.model.hidden_sizes, xor_config.model.activation = (8,), "tanh"
    model = nets.build_model(xor_config.model, (2,), 1, nnx.Rngs(0), None, nets.features.PLAIN)
    graphdef, params = nnx.split(model, nnx.Param)
    x = jax.random.normal(jax.random.key(1), (16, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(jnp.int32)
    bce = losses.get_loss("bce")
    penalty = train.program.steps.Penalty(l2=0.01)
    objective = train.program.steps.TrainStep(graphdef, bce, None, None, penalty=penalty).loss
    measure = jax.jit(curvature.make_sharpness(objective, iterations=20))

    def loss(p):
        return bce(nnx.merge(graphdef, p)(x), y) + penalty(p)

    with exact_matmuls():  # both at float32, on a GPU too (conftest.exact_matmuls)
        measured, exact = float(measure(params, (x, y))), exact_top_eigenvalue(loss, params)
    assert measured == pytest.approx(exact, 1e-4)


def test_a_sweep_logs_sharpness_and_its_limit_for_every_member(xor_config, tmp_path, capsys):
    xor_config.num_seeds = 2
    xor_config.optimizer.name, xor_config.optimizer.learning_rate = "sgd", 0.5
    xor_config.probes.sharpness = True
    # Step 0's value is the initial weights' sharpness on the training set, the
    # run's and the reference's products at float32 (a GPU's TF32: 1.48083 for 1.48040).
    with exact_matmuls():
        final = train.train_and_evaluate(xor_config, str(tmp_path))
        group = sweeps.groups(xor_config)[0]
        built = program.build(group, data.load_dataset(xor_config.data))
        x, y = built.dataset.x_train, built.dataset.y_train

        def loss(p):
            return built.train_step.loss(p, (x, y))[0]

        exact = [
            exact_top_eigenvalue(loss, built.member_state(built.state, m).params) for m in (0, 1)
        ]
    for m in range(2):
        logged = read_scalars(tmp_path / f"seed={m}", "train/sharpness")
        assert logged[0] == pytest.approx(exact[m], rel=1e-4)
        # auto cadence: a measurement is 2 x 20 gradients on the 4 points, 40 steps' work,
        # so every 400 steps (a multiple of log_every, 200) keeps it to 10%; and the last step
        assert sorted(logged) == [0, 400, 600]
        assert set(read_scalars(tmp_path / f"seed={m}", "train/sharpness_limit").values()) == {4.0}
    assert final["aggregate/train/sharpness/max"] >= final["aggregate/train/sharpness/min"]
    picture = read_image(tmp_path / "aggregate", "views/sharpness_vs_limit")
    assert (np.abs(picture.astype(int) - [255, 255, 255]).sum(-1) > 0).mean() > 0.05  # drawn
    printed = capsys.readouterr().out
    assert "sharpness 0.0" in printed  # its cost, s per measurement
    # the console: at each measurement, the median over seeds beside 2/eta
    at_400 = [read_scalars(tmp_path / f"seed={m}", "train/sharpness")[400] for m in (0, 1)]
    median = np.median(at_400)
    assert f"step 400  sharpness {median:.3g} (2/eta 4)\n" in printed


def test_sharpness_every_sets_the_cadence(xor_config, tmp_path):
    xor_config.probes.sharpness, xor_config.probes.sharpness_every = True, 150
    train.train_and_evaluate(xor_config, str(tmp_path))
    assert sorted(read_scalars(tmp_path, "train/sharpness")) == [0, 150, 300, 450, 600]


def test_bad_sharpness_iterations_are_one_line(xor_config, tmp_path):
    xor_config.probes.sharpness_iterations = 0
    with pytest.raises(UserError, match=r"^probes.sharpness_iterations must be >= 1, got 0$"):
        train.train_and_evaluate(xor_config, str(tmp_path))
