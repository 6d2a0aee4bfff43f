"""Checks of a config, before any work is done: one clear line per mistake."""

import contextlib
import resource

import ml_collections
import numpy as np

import data
import nets
from plumbing.failures import UserError
from plumbing.registry import lookup
from training import landscape, losses, optimizers, sweeps

# Config fields that say every how many steps the loop returns to the host.
CADENCES = ("log_every", "eval_every", "picture_every", "checkpoint_every")


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises UserError for a value that cannot work, before any work is done.

    A sweep's every point is checked, so a bad value fails before any runs.
    """
    sweeps.check_config(config)
    for point in sweeps.point_configs(config):
        _check_point(point)
    _check_open_files(config)


def _check_point(config: ml_collections.ConfigDict) -> None:
    """The checks of one run's config (a sweep's point is one)."""

    def require(ok, message):
        if not ok:
            raise UserError(message)

    opt, model = config.optimizer, config.model
    require(config.batch_size >= 0, f"batch_size must be >= 0 (0 = all), got {config.batch_size}")
    require(
        config.eval_batch_size > 0, f"eval_batch_size must be > 0, got {config.eval_batch_size}"
    )
    for key in ("num_steps", *CADENCES, "keep_checkpoints"):
        require(config[key] > 0, f"{key} must be > 0, got {config[key]}")
    require(
        np.isfinite(opt.learning_rate) and opt.learning_rate > 0,
        f"optimizer.learning_rate must be a number > 0, got {opt.learning_rate}",
    )
    require(opt.warmup_steps >= 0, "optimizer.warmup_steps must be >= 0")
    require(
        np.isfinite(config.target_eval_loss) and config.target_eval_loss >= 0,
        f"target_eval_loss must be a number >= 0 (0 = none), got {config.target_eval_loss}",
    )
    for key in ("l1", "l2"):
        value = config.regularization[key]
        require(
            np.isfinite(value) and value >= 0,
            f"regularization.{key} must be a number >= 0, got {value}",
        )
    require(
        all(isinstance(h, int) and h > 0 for h in model.hidden_sizes),
        f"model.hidden_sizes must be positive integers, got {model.hidden_sizes}",
    )
    require(model.maxout_pieces >= 1, "model.maxout_pieces must be >= 1")
    probes = config.probes
    require(
        probes.sharpness_iterations >= 1,
        f"probes.sharpness_iterations must be >= 1, got {probes.sharpness_iterations}",
    )
    require(
        probes.sharpness_every >= 0,
        f"probes.sharpness_every must be >= 0 (0 = auto), got {probes.sharpness_every}",
    )
    _check_spectrum(probes, require)
    _check_gradient_noise(probes, require)
    if config.split_step != -1:
        _check_split(config, require)
    require(
        not probes.connectivity or config.num_seeds >= 2,
        "probes.connectivity draws the line between two seeds of a point: it needs "
        f"--config.num_seeds=2 or more, got {config.num_seeds}",
    )
    require(
        probes.connectivity_points >= 2,
        f"probes.connectivity_points must be >= 2 (the two ends), got {probes.connectivity_points}",
    )
    require(
        probes.landscape_resolution >= 3,
        f"probes.landscape_resolution must be >= 3, got {probes.landscape_resolution}",
    )
    require(
        np.isfinite(probes.landscape_span) and probes.landscape_span > 0,
        f"probes.landscape_span must be a number > 0, got {probes.landscape_span}",
    )
    require(
        probes.landscape_directions in landscape.DIRECTIONS,
        f"probes.landscape_directions must be one of {', '.join(landscape.DIRECTIONS)}, "
        f"got {probes.landscape_directions!r}",
    )
    require(
        probes.examples >= 0,
        f"probes.examples must be >= 0 (0 = all), got {probes.examples}",
    )
    require(0 <= model.dropout < 1, f"model.dropout must be a rate in [0, 1), got {model.dropout}")
    require(
        not model.dropout or model.name in ("mlp", "cnn"),
        f"model.dropout is for the mlp and the cnn, not {model.name!r}",
    )
    # |gap| ** p has an infinite slope at gap 0 when p < 1, and a saturated
    # sigmoid gives gap exactly 0: NaN gradients.
    require(
        np.isfinite(config.loss_power) and config.loss_power >= 1,
        f"loss_power must be a number >= 1, got {config.loss_power}",
    )
    require(np.isfinite(model.leaky_slope), "model.leaky_slope must be a finite number")
    # Resolve every name now, so a typo fails before a directory is made.
    if nets.feature_names(config.data.features) != nets.features.PLAIN:
        require(
            model.name == "mlp",
            f"data.features feed an mlp; model {model.name!r} takes its inputs as they are",
        )
    layers = nets.CNN.NUM_ACTIVATIONS if model.name == "cnn" else len(model.hidden_sizes)
    nets.layer_names(model.activation, layers)
    lookup(nets.MODELS, model.name, "model")
    data.check_data_config(config.data)
    losses.get_loss(config.loss)
    if data.is_regression(config.data) and config.loss not in losses.REGRESSION_LOSSES:
        raise UserError(
            f"loss {config.loss!r} needs class labels; dataset {config.data.name!r} is a "
            f"regression: use one of {', '.join(losses.REGRESSION_LOSSES)}"
        )
    optimizers.make_optimizer(opt, config.num_steps)


def _check_spectrum(probes, require) -> None:
    """probes.spectrum's numbers (its top_k against the parameters: program.build)."""
    lowest = {"spectrum_iterations": (1, ""), "spectrum_top_k": (1, ""),
              "trace_samples": (2, " (a standard error needs two)"), "density_starts": (1, ""),
              "spectrum_every": (0, " (0 = auto)")}  # fmt: skip
    for key, (least, why) in lowest.items():
        require(probes[key] >= least, f"probes.{key} must be >= {least}{why}, got {probes[key]}")
    require(
        probes.spectrum_top_k <= probes.spectrum_iterations,
        f"probes.spectrum_top_k={probes.spectrum_top_k} needs as many Lanczos steps, but "
        f"probes.spectrum_iterations={probes.spectrum_iterations}: raise it, or lower top_k",
    )


def _check_split(config, require) -> None:
    """split_step: a step of the run, pairs of seeds, minibatches to differ by."""
    require(
        0 <= config.split_step < config.num_steps,
        f"split_step must be -1 (no split) or a step from 0 to num_steps - 1 = "
        f"{config.num_steps - 1}, got {config.split_step}",
    )
    require(
        config.num_seeds >= 2 and config.num_seeds % 2 == 0,
        f"split_step pairs the seeds (0 with 1, 2 with 3, ...): num_seeds must be even, "
        f"got {config.num_seeds}",
    )
    require(
        config.batch_size > 0,
        "split_step gives the two halves of a pair different minibatch orders, but "
        "batch_size=0 (the whole set every step) has none: set a --config.batch_size",
    )


def _check_gradient_noise(probes, require) -> None:
    """probes.gradient_noise's numbers: a variance needs two examples."""
    require(
        probes.gradient_noise_every >= 0,
        f"probes.gradient_noise_every must be >= 0 (0 = auto), got {probes.gradient_noise_every}",
    )
    require(
        not probes.gradient_noise or probes.examples != 1,
        "probes.gradient_noise needs two examples or more for a variance, but "
        "probes.examples=1: raise it (0 = all)",
    )


def _check_open_files(config: ml_collections.ConfigDict) -> None:
    """Every member's event file stays open while it trains, and each point's
    aggregate's: refuse a sweep the open-file limit cannot hold, instead of
    failing half-way (raising the soft limit first)."""
    members = sweeps.num_members(config)
    written = members if sweeps.writes_member_runs(config) else 0  # member runs' files
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    points = len(sweeps.point_configs(config))
    need = written + points + 200  # (200: JAX's, Python's and the checkpoints' own)
    if need > soft:
        most = (soft - 200 - points) // max(points, 1)
        raise UserError(
            f"{members:,} members need about {need:,} open files (an event file each), "
            f"more than this system's limit of {soft:,} (ulimit -n): use at most "
            f"{max(most, 1):,} seeds per point, raise the limit, or a max_member_runs "
            "below the member count (only the aggregates are written)"
        )
