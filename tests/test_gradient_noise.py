"""The gradient noise (training/gradient_noise.py): the trace of the
per-example gradients' covariance, the mean gradient's squared norm and the
simple noise scale, checked against a Python loop of `jax.grad` and NumPy;
then probes.gradient_noise in runs (training/actions.py's GradientNoise)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
    assert_same_numbers,
    read_events,
    read_scalars,
    refused,
    same_numbers_precision,
)
from flax import nnx
from jax.flatten_util import ravel_pytree
from tensorboard.util import tensor_util

import data
import train
from configs import critical_batch
from plumbing.failures import UserError
from training import actions, checkpoints, gradient_noise, program, sweeps
from training.checks import check_config


def init(key) -> dict:
    """A 3-5-1 tanh net's weights, named as a model's ('layers/0/kernel', ...)."""
    k = jax.random.split(key, 3)
    return {
        "layers": [
            {"kernel": jax.random.normal(k[0], (3, 5)), "bias": 0.1 * jnp.ones((1, 5))},
            {"kernel": jax.random.normal(k[2], (5, 1)), "bias": jnp.zeros((1, 1))},
        ]
    }


def objective(params, batch):
    """The mean squared error, as `(loss, aux)` like steps.TrainStep.loss."""
    x, y = batch
    first, second = params["layers"]
    out = jnp.tanh(x @ first["kernel"] + first["bias"]) @ second["kernel"] + second["bias"]
    return jnp.mean((out - y) ** 2), None


N = 16
X = jax.random.normal(jax.random.key(9), (N, 3))
BATCH = (X, jnp.sin(X.sum(1, keepdims=True)))
PARAMS = init(jax.random.key(0))


def per_example_gradients(params) -> dict[str, np.ndarray]:
    """{'all': (N, P), 'layers/0': (N, 15), 'layers/1': (N, 5)} in float64,
    one `jax.grad` per example."""
    rows = {"all": [], "layers/0": [], "layers/1": []}
    for i in range(N):
        g = jax.grad(objective, has_aux=True)(params, (X[i : i + 1], BATCH[1][i : i + 1]))[0]
        rows["all"].append(ravel_pytree(g)[0])
        for layer in (0, 1):
            rows[f"layers/{layer}"].append(g["layers"][layer]["kernel"].ravel())
    return {name: np.array(r, np.float64) for name, r in rows.items()}


def trace_and_signal(g: np.ndarray, population: float) -> tuple[float, float]:
    """tr(Sigma) (unbiased variances, summed) and |g|^2 - (1 - N/pop) tr(Sigma) / N."""
    trace = g.var(0, ddof=1).sum()
    return trace, (g.mean(0) ** 2).sum() - (1 - N / population) * trace / N


@pytest.mark.parametrize("population", [np.inf, 40, N])
def test_the_noise_scale_is_numpys_on_a_loop_of_per_example_gradients(population):
    """The 16 examples from an infinite set, from 40, or the whole set
    (then |G|^2 is their mean's, uncorrected)."""
    exact = per_example_gradients(PARAMS)
    trace, signal = trace_and_signal(exact["all"], population)
    assert signal > 0 and trace > signal, "a noisy gradient: B_simple above 1"
    measure = gradient_noise.make_gradient_noise(objective, population)
    noise = jax.jit(measure)(PARAMS, BATCH)
    assert float(noise.trace) == pytest.approx(trace, rel=1e-5)
    assert float(noise.signal) == pytest.approx(signal, rel=1e-4)
    assert float(noise.b_simple) == pytest.approx(trace / signal, rel=1e-4)
    assert sorted(noise.snr) == ["layers/0", "layers/1"], "kernels only, steps' names"
    for layer in ("layers/0", "layers/1"):
        t, s = trace_and_signal(exact[layer], population)
        assert float(noise.snr[layer]) == pytest.approx(max(s, 1e-30) / t, rel=1e-4), layer


def test_identical_examples_have_no_noise_and_a_clipped_signal_at_a_minimum():
    """Every example the same: tr(Sigma) = 0, so B_simple = 0; and at a
    point where the mean gradient is zero (the net fits y = its output) the
    signal is clipped at TINY, not negative, and B_simple is NaN."""
    same = (jnp.repeat(X[:1], 4, 0), jnp.repeat(BATCH[1][:1], 4, 0))
    noise = gradient_noise.make_gradient_noise(objective)(PARAMS, same)
    assert float(noise.trace) == pytest.approx(0.0, abs=1e-10) and float(noise.b_simple) < 1e-6
    zero = {"layers": [{"kernel": jnp.zeros((3, 5)), "bias": jnp.zeros((1, 5))},
                       {"kernel": jnp.zeros((5, 1)), "bias": jnp.zeros((1, 1))}]}  # fmt: skip
    fitted = (X[:4], jnp.zeros((4, 1)))  # out = 0 = y: every gradient zero
    noise = gradient_noise.make_gradient_noise(objective)(zero, fitted)
    assert noise.signal == np.float32(gradient_noise.TINY)
    assert np.isnan(noise.b_simple), "no signal: the noise scale is not measured"


NOISE_TAGS = [f"train/gradient_noise/{name}" for name in ("b_simple", "trace", "signal")]
NOISE_TAGS += ["train/gradient_noise/snr/layers/0", "train/gradient_noise/snr/layers/1"]


def test_a_sweep_logs_every_members_noise_and_each_points_median(xor_config, tmp_path, capsys):
    """3 seeds of XOR (its 4 points): each member's scalars at 0, 300 and
    600 in its own run, their statistics in the aggregate, the medians in
    the console and the seconds per measurement in the done line."""
    xor_config.num_seeds = 3
    xor_config.probes.gradient_noise, xor_config.probes.gradient_noise_every = True, 300
    final = train.train_and_evaluate(xor_config, str(tmp_path))
    for tag in NOISE_TAGS:
        logged = [read_scalars(tmp_path / f"seed={m}", tag) for m in range(3)]
        assert all(sorted(values) == [0, 300, 600] for values in logged), tag
        assert len({values[0] for values in logged}) == 3, "each seed its own weights"
        assert final[f"aggregate/{tag}/max"] == max(values[600] for values in logged)
    b_simple = [read_scalars(tmp_path / f"seed={m}", NOISE_TAGS[0]) for m in range(3)]
    assert all(b[0] > 0 for b in b_simple)
    printed = capsys.readouterr().out
    assert f"step 300  noise scale {np.median([b[300] for b in b_simple]):.3g} (trace " in printed
    assert "; gradient_noise 0." in printed


def test_a_run_logs_the_noise_of_its_checkpoints_weights(xor_config, tmp_path):
    """A single run: the auto cadence is every log_every (a measurement is
    about one gradient on XOR's 4 points: a step's work, x 10, below 200),
    and the last values are `make_gradient_noise` on the final weights,
    all 4 points of 4 (|G|^2 uncorrected)."""
    xor_config.probes.gradient_noise = True
    final = train.train_and_evaluate(xor_config, str(tmp_path))
    model, config = checkpoints.load_run(str(tmp_path))
    dataset = data.load_dataset(config.data)
    _, train_step = program.make_train_step(config, dataset)
    measure = gradient_noise.make_gradient_noise(train_step.loss, 4)
    params = nnx.split(model, nnx.Param)[1]
    direct = jax.jit(measure)(params, (dataset.x_train, dataset.y_train))
    expected = [direct.b_simple, direct.trace, direct.signal, *direct.snr.values()]
    for tag, value in zip(NOISE_TAGS, expected, strict=True):
        logged = read_scalars(tmp_path, tag)
        assert sorted(logged) == [0, 200, 400, 600], tag
        assert logged[600] == pytest.approx(float(value), rel=1e-4), tag
        assert final[tag] == logged[600]


def test_a_resumed_run_measures_the_noise_of_the_uninterrupted_one(xor_config, tmp_path):
    xor_config.checkpoint_every = xor_config.probes.gradient_noise_every = 200
    xor_config.probes.gradient_noise = True
    whole = train.train_and_evaluate(xor_config, str(tmp_path / "whole"))
    xor_config.num_steps = 400
    train.train_and_evaluate(xor_config, str(tmp_path / "parts"))
    xor_config.num_steps = 600
    assert train.train_and_evaluate(xor_config, str(tmp_path / "parts")) == whole

    def summaries(run_dir):  # {tag: [(step, its value)]} of train/gradient_noise/*
        events = read_events(run_dir)
        return {
            tag: [(e.step, tensor_util.make_ndarray(e.tensor_proto).tolist())
                  for e in events.Tensors(tag)]
            for tag in NOISE_TAGS
        }  # fmt: skip

    measured = summaries(tmp_path / "whole")
    assert [step for step, _ in measured[NOISE_TAGS[0]]] == [0, 200, 400, 600]
    assert summaries(tmp_path / "parts") == measured


def test_one_example_has_no_variance_and_is_one_line(tmp_path):
    line = refused("--config=configs/xor.py", "--config.probes.gradient_noise=true",
                   "--config.probes.examples=1", workdir=tmp_path / "runs")  # fmt: skip
    assert line == (
        "error: probes.gradient_noise needs two examples or more for a variance, but "
        "probes.examples=1: raise it (0 = all)"
    )


def test_a_negative_cadence_is_refused_before_any_work(xor_config):
    xor_config.probes.gradient_noise_every = -1
    with pytest.raises(UserError, match=r"^probes.gradient_noise_every must be >= 0 \(0 = auto\), "
                                        r"got -1$"):  # fmt: skip
        check_config(xor_config)


def test_members_measured_in_parts_are_measured_as_all_at_once(xor_config):
    """3 seeds in parts of 2 (0-1, 1-2): each member's noise is the one all
    three measured at once give."""
    xor_config.num_seeds, xor_config.probes.gradient_noise = 3, True
    measured = []
    for cap in (0, 2):
        xor_config.members_per_program = cap
        with same_numbers_precision():
            built = program.build(sweeps.groups(xor_config)[0], data.load_dataset(xor_config.data))
            measured.append(jax.device_get(built.gradient_noise(built.state)))
        assert built.part == (cap or 3)
    assert_same_numbers(measured[1], measured[0])
    assert measured[0].b_simple.shape == (3,)


def test_the_critical_batch_is_fitted_from_steps_to_target():
    """McCandlish et al.'s S = S_min (1 + B_crit / B), recovered from exact
    points; steps that do not fall with the batch (or one batch size) fit none."""
    sizes = np.array([8, 32, 128, 512, 2048])
    s_min, b_crit = gradient_noise.critical_batch(sizes, 100 * (1 + 50 / sizes))
    assert s_min == pytest.approx(100) and b_crit == pytest.approx(50)
    assert gradient_noise.critical_batch(sizes, 100 - 1000 / sizes) is None
    assert gradient_noise.critical_batch([64, 64], [10, 12]) is None


def first_at_or_below(losses: dict[int, float], target: float) -> int:
    """The first step whose loss is at or below `target` (-1: none)."""
    return next((step for step in sorted(losses) if losses[step] <= target), -1)


def test_steps_to_target_are_each_members_first_eval_there_with_its_noise(
    xor_config, tmp_path, capsys
):
    """A sweep over batch_size (2 and 4 of XOR's points: one program each)
    with a target eval loss: each point's steps to target are its seeds'
    first eval steps at or below it (read from their runs), the noise scale
    there their b_simple at that step; a resumed sweep ends the same; the
    results end with the batch sizes' best steps and the fit."""
    xor_config.num_seeds, xor_config.eval_every = 3, 20
    xor_config.probes.gradient_noise, xor_config.probes.gradient_noise_every = True, 20
    xor_config.target_eval_loss = 0.3
    xor_config.sweep.batch_size = (2, 4)
    xor_config.checkpoint_every = 300
    whole = train.train_and_evaluate(xor_config, str(tmp_path / "whole"))
    printed = capsys.readouterr().out
    best = {}
    for batch in (2, 4):
        point = f"batch_size={batch}"
        runs = [tmp_path / "whole" / point / f"seed={seed}" for seed in range(3)]
        at = [first_at_or_below(read_scalars(run, "eval/loss"), 0.3) for run in runs]
        assert all(step > 0 for step in at), f"every seed of {point} reaches the target: {at}"
        noise = [read_scalars(run, NOISE_TAGS[0])[step] for run, step in zip(runs, at, strict=True)]
        assert whole[f"{point}/aggregate/eval/steps_to_target/median"] == np.median(at)
        assert whole[f"{point}/aggregate/eval/steps_to_target/max"] == max(at)
        assert whole[f"{point}/aggregate/eval/noise_scale_at_target/median"] == pytest.approx(
            np.median(noise), rel=1e-6)  # fmt: skip
        assert whole[f"{point}/aggregate/eval/reached_target"] == 1.0
        best[batch] = np.median(at)
    assert f"Steps to target at each batch size (the best point's median): 2: {best[2]:,.0f}, " \
           f"4: {best[4]:,.0f}." in printed  # fmt: skip
    assert "The noise scale B_simple at the target, there: 2: " in printed

    xor_config.num_steps = 300  # stopped at the checkpoint of step 300, then resumed
    train.train_and_evaluate(xor_config, str(tmp_path / "parts"))
    xor_config.num_steps = 600
    assert train.train_and_evaluate(xor_config, str(tmp_path / "parts")) == whole


def test_a_single_run_says_when_it_reaches_the_target(xor_config, tmp_path, capsys):
    xor_config.eval_every, xor_config.target_eval_loss = 20, 0.3
    train.train_and_evaluate(xor_config, str(tmp_path))
    step = first_at_or_below(read_scalars(tmp_path, "eval/loss"), 0.3)
    assert f"<= target_eval_loss 0.3: steps to target {step}\n" in capsys.readouterr().out


def test_a_negative_target_is_refused_before_any_work(xor_config):
    xor_config.target_eval_loss = -0.1
    with pytest.raises(UserError, match=r"^target_eval_loss must be a number >= 0 \(0 = none\), "
                                        r"got -0.1$"):  # fmt: skip
        check_config(xor_config)


def test_the_sweeps_end_fits_the_best_points_and_names_what_it_left_out():
    """Of each batch size, the point with the fewest median steps among those
    where half the seeds or more reached the target; a batch size where
    none did is named; the fit is through the best points' steps."""
    groups = sweeps.groups(critical_batch.get_config())  # 5 batch sizes x 4 rates
    final = {}
    for group in groups:
        for m in group.members:
            b, rate = m.point_config.batch_size, m.point_config.optimizer.learning_rate
            at = f"{m.point}/aggregate/eval/"
            final[at + "reached_target"] = 0.25 if rate == 3.0 else (0.0 if b == 1024 else 1.0)
            steps = 10.0 if rate == 3.0 else 100 * (1 + 40 / b) + rate  # (3.0: a lucky seed)
            final[at + "steps_to_target/median"] = steps
            final[at + "noise_scale_at_target/median"] = 7.0
    text = actions.critical_batch_text(groups, final)
    s = {b: 100 * (1 + 40 / b) + 0.3 for b in (4, 16, 64, 256)}  # rate 0.3 is the best reached
    assert text.splitlines()[:2] == [
        "Steps to target at each batch size (the best point's median): "
        + ", ".join(f"{b}: {v:,.0f}" for b, v in s.items())
        + ".",
        "Not reached by half the seeds of any point: batch size 1024.",
    ]
    s_min, b_crit = gradient_noise.critical_batch(list(s), list(s.values()))
    assert f"B_crit = {b_crit:.3g} (S_min = {s_min:,.0f})." in text
    assert "The noise scale B_simple at the target, there: 4: 7, " in text
