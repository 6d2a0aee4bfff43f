"""The Hessian's spectrum (training/curvature.py): its top eigenvalues, its
trace and its density, checked against `jax.hessian` on a 26-weight net;
then probes.spectrum in runs (training/actions.py's Spectrum)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
    assert_same_numbers,
    exact_matmuls,
    read_events,
    read_image,
    read_scalars,
    refused,
    same_numbers_precision,
)
from flax import nnx
from jax.flatten_util import ravel_pytree
from tensorboard.util import tensor_util

import data
import train
from dashboards import pictures
from plumbing.failures import UserError
from training import checkpoints, curvature, program, sweeps
from training.checks import check_config

# float32 Hessian-vector products against a float32 `jax.hessian`: both are
# rounded at about 1e-7 of the largest curvature, and Lanczos adds a few
# dozen such roundings; eigenvalues are compared to this fraction of it.
RTOL = 1e-4


def init(key) -> dict:
    """A 3-5-1 tanh net's weights: 26 of them."""
    k = jax.random.split(key, 3)
    return {
        "w1": jax.random.normal(k[0], (3, 5)),
        "b1": 0.1 * jax.random.normal(k[1], (1, 5)),
        "w2": jax.random.normal(k[2], (5, 1)),
        "b2": jnp.zeros((1, 1)),
    }


def objective(params, batch):
    """The mean squared error, as `(loss, aux)` like steps.TrainStep.loss."""
    x, y = batch
    out = jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]
    return jnp.mean((out - y) ** 2), None


X = jax.random.normal(jax.random.key(9), (16, 3))
BATCH = (X, jnp.sin(X.sum(1, keepdims=True)))
PARAMS = init(jax.random.key(0))
P = ravel_pytree(PARAMS)[0].size


def exact_hessian(params) -> np.ndarray:
    flat, unravel = ravel_pytree(params)
    with exact_matmuls():
        hessian = jax.hessian(lambda v: objective(unravel(v), BATCH)[0])(flat)
    return np.asarray(hessian, np.float64)


HESSIAN = exact_hessian(PARAMS)
EIGENVALUES = np.linalg.eigvalsh(HESSIAN)  # ascending
SCALE = np.abs(EIGENVALUES).max()


def test_the_net_is_small_and_its_hessian_indefinite():
    assert P == 26
    assert EIGENVALUES[0] < 0 < EIGENVALUES[-1], "not at a minimum: both signs to find"


def test_a_breakdown_ends_the_krylov_space_with_zero_rows_of_weight_zero():
    """A start in the span of two eigenvectors sees two eigenvalues: after
    two steps nothing is left, and the other Ritz values are 0, weighing 0."""
    diagonal = jnp.array([4.0, -1.0, 2.0, 0.5, 3.0])
    alphas, betas = curvature.lanczos(lambda v: diagonal * v, jnp.array([1.0, 0, 2, 0, 0]), 5)
    assert betas[1:].tolist() == [0, 0, 0]
    values, firsts = curvature.ritz(alphas, betas)
    found = np.abs(firsts) > 1e-6
    np.testing.assert_allclose(values[found], [2.0, 4.0], rtol=1e-6)
    np.testing.assert_allclose(firsts[found] ** 2, [0.8, 0.2], rtol=1e-5)  # (2/sqrt 5)^2, ...
    np.testing.assert_array_equal(values[~found], 0)


def test_the_top_k_eigenvalues_are_the_exact_hessians():
    """With iterations >= P (clamped to P) Lanczos's Ritz values are H's
    eigenvalues: the top 3 to float32 rounding, largest first; the first is
    the sharpness, and make_spectrum's top are the same run's."""
    with exact_matmuls():
        top = jax.jit(curvature.make_top_eigenvalues(objective, 3, iterations=100))(PARAMS, BATCH)
        sharpness = jax.jit(curvature.make_sharpness(objective, iterations=P))(PARAMS, BATCH)
        spectrum = curvature.make_spectrum(objective, P, top_k=3, density_starts=1)
        spectrum = jax.jit(spectrum)(PARAMS, BATCH)
    np.testing.assert_allclose(top, EIGENVALUES[::-1][:3], rtol=0, atol=RTOL * SCALE)
    assert float(sharpness) == pytest.approx(float(top[0]), abs=RTOL * SCALE)
    np.testing.assert_allclose(spectrum.top, top, rtol=0, atol=RTOL * SCALE)


def test_more_top_eigenvalues_than_ritz_values_is_an_error():
    with pytest.raises(ValueError, match=r"^top_k=4 needs 4 Ritz values, but .* = 3$"):
        curvature.make_top_eigenvalues(objective, 4, iterations=3)(PARAMS, BATCH)


def test_hutchinsons_trace_is_within_its_standard_errors_of_the_exact_trace():
    """z^T H z over Rademacher z: mean tr(H), so the estimate from 50 of them
    is within 4 standard errors (a 1-in-15,000 miss, for these fixed probes
    a fixed outcome); off-diagonal curvature makes the error > 0."""
    with exact_matmuls():
        trace, error = jax.jit(curvature.make_trace(objective, samples=50))(PARAMS, BATCH)
    exact = np.trace(HESSIAN)
    assert float(error) > 0.01 * abs(exact)
    assert abs(float(trace) - exact) < 4 * float(error)


def test_a_single_trace_sample_has_no_standard_error():
    with pytest.raises(ValueError, match=r"^a standard error needs at least 2 trace samples"):
        curvature.make_trace(objective, samples=1)


def slq_moments(nodes, weights, powers) -> np.ndarray:
    """(starts, len(powers)): each start's sum(weights * nodes^j)."""
    nodes, weights = np.asarray(nodes, np.float64), np.asarray(weights, np.float64)
    return np.stack([(weights * nodes**j).sum(-1) for j in powers], -1)


def test_each_starts_quadrature_is_exact_for_low_powers():
    """Gauss quadrature: m Lanczos steps from unit v give a measure with
    sum(w * nodes^j) = v^T H^j v for j < 2m, here m = 5 < P, j = 0 to 3."""
    starts, powers = 3, range(4)
    with exact_matmuls():
        nodes, weights = jax.jit(curvature.make_density(objective, starts, 5))(PARAMS, BATCH)
    assert nodes.shape == weights.shape == (starts, 5)
    for s, moments in enumerate(slq_moments(nodes, weights, powers)):
        v = np.asarray(curvature.start_vector(s, P, jnp.float32), np.float64)
        v /= np.linalg.norm(v)
        exact = np.array([v @ np.linalg.matrix_power(HESSIAN, j) @ v for j in powers])
        scales = SCALE ** np.array(powers)  # each power's to its own scale
        np.testing.assert_allclose(moments / scales, exact / scales, rtol=0, atol=RTOL)


def test_with_p_iterations_the_nodes_are_the_eigenvalues():
    with exact_matmuls():
        nodes, weights = jax.jit(curvature.make_density(objective, 2, P))(PARAMS, BATCH)
    np.testing.assert_allclose(nodes, np.stack([EIGENVALUES] * 2), rtol=0, atol=RTOL * SCALE)
    assert (weights > 0).all()


def test_the_density_averaged_over_starts_has_the_hessians_moments():
    """The mean over starts of sum(w * nodes^j) estimates tr(H^j)/P. Each
    start's is exactly v^T H^j v (the test above), so the only error is the
    starts': for v uniform on the unit sphere, v^T A v has variance
    2 Var(eigenvalues of A) / (P + 2). Within 4 of those standard errors."""
    starts, powers = 16, (1, 2)
    with exact_matmuls():
        nodes, weights = jax.jit(curvature.make_density(objective, starts, 4))(PARAMS, BATCH)
    estimates = slq_moments(nodes, weights, powers).mean(0)
    for estimate, j in zip(estimates, powers, strict=True):
        eigenvalues = EIGENVALUES**j
        error = np.sqrt(2 * eigenvalues.var() / (P + 2) / starts)
        assert abs(estimate - eigenvalues.mean()) < 4 * error, (j, estimate, eigenvalues.mean())


def test_the_smoothed_density_keeps_the_measures_mass_and_mean():
    """Gaussians of variance sigma^2 on the nodes: total mass 1, the same
    mean, the variance larger by sigma^2 (on a grid reaching past them)."""
    with exact_matmuls():
        nodes, weights = jax.jit(curvature.make_density(objective, 3, 8))(PARAMS, BATCH)
    sigma = 0.05
    grid, density = curvature.smoothed_density(nodes, weights, sigma=sigma)
    step = grid[1] - grid[0]
    mean, square = slq_moments(nodes, weights, (1, 2)).mean(0)
    assert density.sum() * step == pytest.approx(1, abs=1e-6)
    assert (grid * density).sum() * step == pytest.approx(mean, abs=1e-6)
    assert (grid**2 * density).sum() * step == pytest.approx(square + sigma**2, rel=1e-6)
    default_grid, _ = curvature.smoothed_density(nodes, weights)
    span = float(nodes.max() - nodes.min())
    assert default_grid[-1] - float(nodes.max()) == pytest.approx(5 * np.sqrt(1e-5 * span))


@pytest.mark.parametrize("width", [1.0, 3_000.0, 1e6])
def test_the_smoothed_density_resolves_every_node_however_wide_the_spectrum(width):
    """Two points per sigma or more, so each node's Gaussian keeps its mass
    (a grid too coarse for a wide spectrum would miss the narrow peaks);
    past 25,000 the Gaussians widen rather than the grid grow."""
    nodes = np.array([[0.0, width / 3, width]])
    weights = np.array([[0.5, 0.25, 0.25]])
    grid, density = curvature.smoothed_density(nodes, weights)
    step = grid[1] - grid[0]
    sigma = (grid[-1] - nodes.max()) / 5
    assert step <= sigma / 2 and len(grid) <= 100_001
    for node, weight in zip(nodes[0], weights[0], strict=True):
        near = np.abs(grid - node) < 5 * sigma
        assert density[near].sum() * step == pytest.approx(weight, rel=1e-3)


def test_the_spectrum_of_each_member_over_a_leading_axis():
    """vmapped over 2 members with their own weights: each its own numbers,
    those of measuring it alone."""
    members = jax.tree.map(lambda a, b: jnp.stack([a, b]), PARAMS, init(jax.random.key(1)))
    spectrum = curvature.make_spectrum(objective, 8, top_k=2, trace_samples=4, density_starts=3)
    with exact_matmuls():
        both = jax.jit(jax.vmap(spectrum, in_axes=(0, None)))(members, BATCH)
        alone = [
            jax.jit(spectrum)(jax.tree.map(lambda a, m=m: a[m], members), BATCH) for m in (0, 1)
        ]
    assert both.top.shape == (2, 2) and both.nodes.shape == both.weights.shape == (2, 3, 8)
    assert both.trace.shape == both.trace_error.shape == (2,)
    for m in (0, 1):
        for name in curvature.Spectrum._fields:
            together, apart = getattr(both, name)[m], getattr(alone[m], name)
            atol = RTOL * np.abs(apart).max()
            np.testing.assert_allclose(together, apart, rtol=0, atol=atol, err_msg=f"{m}: {name}")
    assert abs(float(both.top[0, 0] - both.top[1, 0])) > 0.1 * float(both.top[0, 0])


def colour(image, rgb) -> np.ndarray:
    return (image == np.asarray(rgb, np.uint8)).all(axis=-1)


def plot_box(image) -> tuple[int, int]:
    """The columns of the plot's left and right edges (its dark outline)."""
    columns = np.nonzero(colour(image, (90, 90, 90)).sum(0) > image.shape[0] / 2)[0]
    return columns.min(), columns.max()


def test_the_density_picture_draws_the_limit_where_it_is():
    grid = np.linspace(-1.0, 7.0, 801)
    density = 0.9 * np.exp(-0.5 * (grid / 0.1) ** 2) + 1e-3 * np.exp(-0.5 * (grid - 5) ** 2)
    red, blue = pictures.CLASS_COLORS[3], pictures.CLASS_COLORS[1]
    image = pictures.spectral_density_chart(grid, density, limit=4.0)
    assert image.shape == (224, 336, 3) and image.dtype == np.uint8
    left, right = plot_box(image)
    column = np.argmax(colour(image, red).sum(0))  # the vertical line, not the legend's sample
    assert abs(column - (left + 5 / 8 * (right - left))) <= 2  # 4 is 5/8 of -1 to 7
    assert colour(image, red)[:, column].sum() > 40, "dashed, most of the plot's height"
    highest = np.nonzero(colour(image, blue).any(1))[0].min()  # the peak, at 0
    assert (
        abs(np.nonzero(colour(image, blue)[highest])[0].mean() - (left + (right - left) / 8)) <= 3
    )
    # on a log axis the bump at 5, 1e-3 of the peak, sits well above the floor
    at_5 = np.nonzero(colour(image, blue)[:, left + 6 * (right - left) // 8])[0]
    assert at_5.size and at_5.min() < image.shape[0] * 0.6
    no_limit = pictures.spectral_density_chart(grid, density)
    assert not colour(no_limit, red).any()
    far = pictures.spectral_density_chart(grid, density, limit=400.0)  # named, not drawn
    assert plot_box(far) == plot_box(no_limit)
    assert colour(far, red).any() and colour(far, red).sum(0).max() < 10


# probes.spectrum in runs: train/hessian/*, views/hessian_density, the console.

HESSIAN_TAGS = [f"train/hessian/eigenvalue_{i}" for i in range(1, 6)]
HESSIAN_TAGS += ["train/hessian/trace", "train/hessian/trace_error"]


def test_a_run_logs_the_spectrum_of_its_weights(xor_config, tmp_path, capsys):
    """XOR (65 weights, its 4 points): at step 0 and the end (the auto
    cadence is 2,600 steps: 4 x 30 + 10 products, 2 gradients each, on the
    4 points, x 10), the top 5 eigenvalues and the trace of the checkpoint's
    weights, and their density; eigenvalue 1 is the sharpness, Lanczos from
    the same start (30 steps against 20: the same to 1e-5)."""
    xor_config.probes.spectrum = xor_config.probes.sharpness = True
    with exact_matmuls():
        final = train.train_and_evaluate(xor_config, str(tmp_path))
        model, config = checkpoints.load_run(str(tmp_path))
        dataset = data.load_dataset(config.data)
        _, train_step = program.make_train_step(config, dataset)
        spectrum = curvature.make_spectrum(train_step.loss)  # the defaults of configs/base.py
        params, examples = nnx.split(model, nnx.Param)[1], (dataset.x_train, dataset.y_train)
        direct = jax.jit(spectrum)(params, examples)
    logged = {tag: read_scalars(tmp_path, tag) for tag in HESSIAN_TAGS}
    assert all(sorted(values) == [0, 600] for values in logged.values())
    expected = [*direct.top, direct.trace, direct.trace_error]
    for tag, value in zip(HESSIAN_TAGS, expected, strict=True):
        assert logged[tag][600] == pytest.approx(float(value), rel=1e-5, abs=1e-9), tag
        assert final[tag] == logged[tag][600]
    tops = [logged[tag][600] for tag in HESSIAN_TAGS[:5]]
    assert tops == sorted(tops, reverse=True) and tops[0] > 0
    sharpness = read_scalars(tmp_path, "train/sharpness")
    for step in (0, 600):
        assert logged[HESSIAN_TAGS[0]][step] == pytest.approx(sharpness[step], rel=1e-5)
    for step in (0, 600):
        assert read_image(tmp_path, "views/hessian_density", step).shape == (224, 336, 3)
    printed = capsys.readouterr().out
    top = ", ".join(f"{v:.3g}" for v in tops)
    assert f"step 600  hessian top {top}  trace " in printed
    assert "; spectrum 0." in printed  # its cost, s per measurement, in the done line


def test_a_sweep_draws_each_points_density_beside_its_limit(xor_config, tmp_path, capsys):
    """3 seeds of sgd at eta = 1: each member's scalars in its own run, their
    statistics and one density per measurement (the seeds' starts pooled) in
    the point's aggregate, with 2/eta = 2 dashed."""
    xor_config.num_seeds = 3
    xor_config.optimizer.name, xor_config.optimizer.learning_rate = "sgd", 1.0
    xor_config.probes.spectrum, xor_config.probes.spectrum_every = True, 300
    final = train.train_and_evaluate(xor_config, str(tmp_path))
    tops = [read_scalars(tmp_path / f"seed={m}", HESSIAN_TAGS[0]) for m in range(3)]
    assert all(sorted(top) == [0, 300, 600] for top in tops)
    assert len({top[0] for top in tops}) == 3, "each seed its own weights"
    assert final[f"aggregate/{HESSIAN_TAGS[0]}/max"] == max(top[600] for top in tops)
    for m in range(3):
        assert "views/hessian_density" not in read_events(tmp_path / f"seed={m}").Tags()["tensors"]
    red = pictures.CLASS_COLORS[3]
    for step in (0, 300, 600):
        image = read_image(tmp_path / "aggregate", "views/hessian_density", step)
        if step == 0:  # the initial weights' spectrum reaches 2/eta's side of the chart
            assert colour(image, red).sum(0).max() > 40, "the limit, dashed"
    median = np.median([top[300] for top in tops])
    assert f"step 300  hessian top {median:.3g}, " in capsys.readouterr().out


def test_a_resumed_run_measures_the_spectrum_of_the_uninterrupted_one(xor_config, tmp_path):
    xor_config.checkpoint_every = xor_config.probes.spectrum_every = 200
    xor_config.probes.spectrum = True
    whole = train.train_and_evaluate(xor_config, str(tmp_path / "whole"))
    xor_config.num_steps = 400
    train.train_and_evaluate(xor_config, str(tmp_path / "parts"))
    xor_config.num_steps = 600
    assert train.train_and_evaluate(xor_config, str(tmp_path / "parts")) == whole

    def summaries(run_dir):  # {tag: [(step, its values)]} of train/hessian/* and the pictures
        events = read_events(run_dir)
        return {
            tag: [(e.step, tensor_util.make_ndarray(e.tensor_proto).tolist())
                  for e in events.Tensors(tag)]
            for tag in [*HESSIAN_TAGS, "views/hessian_density"]
        }  # fmt: skip

    measured = summaries(tmp_path / "whole")
    assert [step for step, _ in measured["views/hessian_density"]] == [0, 200, 400, 600]
    assert summaries(tmp_path / "parts") == measured


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("spectrum_top_k", 31, r"spectrum_top_k=31 needs as many Lanczos steps, but .*=30: "),
        ("trace_samples", 1, r"trace_samples must be >= 2 \(a standard error needs two\), got 1"),
        ("density_starts", 0, r"density_starts must be >= 1, got 0"),
    ],
)
def test_spectrum_numbers_that_cannot_work_are_refused_before_any_work(xor_config, key, value,
                                                                       message):  # fmt: skip
    xor_config.probes[key] = value
    with pytest.raises(UserError, match=f"^probes.{message}"):
        check_config(xor_config)


def test_more_top_eigenvalues_than_weights_is_one_line(tmp_path):
    """The network's size is known once it is built: XOR's 2-16-1 has 65."""
    line = refused("--config=configs/xor.py", "--config.probes.spectrum=true",
                   "--config.probes.spectrum_top_k=66", "--config.probes.spectrum_iterations=66",
                   workdir=tmp_path / "runs")  # fmt: skip
    assert line == (
        "error: probes.spectrum_top_k=66 asks for more eigenvalues than the network's 65 "
        "parameters have: use at most 65"
    )


def test_members_measured_in_parts_are_measured_as_all_at_once(xor_config):
    """3 seeds in parts of 2 (0-1, 1-2): one compiled size serves both parts,
    and each member's spectrum is the one all three measured at once give."""
    xor_config.num_seeds, xor_config.probes.spectrum = 3, True
    measured = []
    for cap in (0, 2):
        xor_config.members_per_program = cap
        with same_numbers_precision():
            built = program.build(sweeps.groups(xor_config)[0], data.load_dataset(xor_config.data))
            measured.append(jax.device_get(built.spectrum(built.state)))
        assert built.part == (cap or 3)
    assert_same_numbers(measured[1], measured[0])
    assert measured[0][0].nodes.shape == (3, 4, 30)
