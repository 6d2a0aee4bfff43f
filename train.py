"""Trains a network from a config and logs the run to TensorBoard.

    python train.py --config=configs/xor.py [--config.KEY=VALUE ...] [--workdir=runs]
    tensorboard --logdir runs

`train_and_evaluate(config, run_dir)` is the whole job and what tests and
notebooks call; `main()` only parses flags and picks the run directory.

Speed on tiny models is Python dispatch, so the loop is built to avoid it:
the model is split into a graph definition (static) and its state (arrays)
once; a pure `jax.jit` function runs all the steps between two log points
in one compiled call (a `lax.while_loop`); values reach the host only at
log, eval and checkpoint points.
"""

import contextlib
import glob
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

if __name__ == "__main__":
    from plumbing import host_memory

    host_memory.keep_freed_memory()  # before XLA's threads allocate (host_memory.py)
    # Start the process that writes the event files now: it imports TensorFlow
    # (seconds) on another core while this one imports JAX and compiles.
    from dashboards import event_writer

    event_writer.start_early()

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags, logging
from flax import nnx
from ml_collections import config_flags

import data
import nets
from dashboards import graphs, probes, summaries
from plumbing import command_line, failures
from plumbing.failures import UserError
from training import checkpoints, gates, losses, optimizers, parallel, steps, sweeps
from training.registry import lookup


def console(message: str) -> None:
    """Prints a progress line; a closed stdout (`| head`) never stops training.

    In a multi-host run only process 0 prints.
    """
    if jax.process_count() > 1 and not parallel.is_writer():
        return
    try:
        print(message, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# Config fields that say every how many steps the loop returns to the host.
CADENCES = ("log_every", "eval_every", "picture_every", "checkpoint_every")


class Diverged(UserError):
    """A loss, gradient or parameter became NaN or Inf."""


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises UserError for a value that cannot work, before any work is done.

    A sweep's every point is checked, so a bad value fails before any runs.
    """
    sweeps.check_config(config)
    for point in sweeps.point_configs(config):
        _check_point(point)


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
        all(isinstance(h, int) and h > 0 for h in model.hidden_sizes),
        f"model.hidden_sizes must be positive integers, got {model.hidden_sizes}",
    )
    require(model.maxout_pieces >= 1, "model.maxout_pieces must be >= 1")
    # |gap| ** p has an infinite slope at gap 0 when p < 1, and a saturated
    # sigmoid gives gap exactly 0: NaN gradients.
    require(
        np.isfinite(config.loss_power) and config.loss_power >= 1,
        f"loss_power must be a number >= 1, got {config.loss_power}",
    )
    require(np.isfinite(model.leaky_slope), "model.leaky_slope must be a finite number")
    # Resolve every name now, so a typo fails before a directory is made.
    nets.make_activation(model.activation, nets.activation_options(model))
    lookup(nets.MODELS, model.name, "model")
    data.check_data_config(config.data)
    losses.get_loss(config.loss)
    if config.data.name in data.REGRESSIONS and config.loss not in losses.REGRESSION_LOSSES:
        raise UserError(
            f"loss {config.loss!r} needs class labels; dataset {config.data.name!r} is a "
            f"regression: use one of {', '.join(losses.REGRESSION_LOSSES)}"
        )
    optimizers.make_optimizer(opt, config.num_steps)


def is_time(step: int, every: int, total: int) -> bool:
    """True at every `every`-th step and at the last one: log/eval cadence."""
    return step % every == 0 or step == total


class Interrupted(UserError):
    """SIGINT or SIGTERM arrived; a checkpoint was saved first."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


@contextlib.contextmanager
def stop_signals():
    """Turns SIGINT/SIGTERM into a request the loop honours between chunks.

    Yields a list that receives the signal numbers. A second signal gets the
    usual behaviour (Ctrl-C twice stops at once). Outside the main thread
    (where Python allows no handlers) nothing changes.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def request_stop(signum, _):
        received.append(signum)
        signal.signal(signum, previous[signum])  # a second one is not polite

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def train_and_evaluate(config: ml_collections.ConfigDict, run_dir: str) -> dict[str, float]:
    """Trains `config` in `run_dir`, resuming from its latest checkpoint.

    Writes summaries and checkpoints into `run_dir`. Returns the final
    metrics as floats: `train/loss`, `train/accuracy`, `eval/loss`,
    `eval/accuracy`, ... Raises UserError for a bad config, Diverged when a
    value becomes NaN/Inf (naming the step) and Interrupted on SIGINT/SIGTERM
    (after saving a checkpoint of the steps done).
    """
    with stop_signals() as stop:
        return _train_and_evaluate(config, run_dir, stop)


def _train_and_evaluate(config, run_dir, stop: list[int]) -> dict[str, float]:
    check_config(config)
    if config.num_seeds > 1 or sweeps.sweep_spec(config):  # members in one program
        return sweeps.run(config, run_dir, console)
    summaries.preload()  # the event writer imports TensorFlow while we build and compile
    checkpoints.preload()
    start = time.perf_counter()
    os.makedirs(run_dir, exist_ok=True)
    checkpointer = checkpoints.Checkpointer(run_dir, config.keep_checkpoints)
    start_step = checkpoints.resume_step(checkpointer, config, run_dir)
    dataset = data.load_dataset(config.data)
    if config.batch_size > len(dataset.x_train):
        raise UserError(
            f"batch_size {config.batch_size} is larger than the {len(dataset.x_train)} "
            f"training examples of {config.data.name!r}: use at most that, or 0 for all"
        )
    num_outputs = (
        dataset.y_train.shape[-1]
        if dataset.is_regression
        else losses.num_outputs(config.loss, dataset.num_classes)
    )
    key = jax.random.key(config.seed)
    rngs = nnx.Rngs(params=jax.random.fold_in(key, 0))
    model = nets.build_model(config.model, dataset.x_train.shape[1:], num_outputs, rngs)
    graphdef, params = nnx.split(model, nnx.Param)
    optimizer, learning_rate = optimizers.make_optimizer(config.optimizer, config.num_steps)
    loss_fn = losses.get_loss(config.loss, config.loss_power)
    state = steps.TrainState(step=jnp.array(0), params=params, opt_state=optimizer.init(params))
    final = {}
    if start_step:
        state, _, final = checkpointer.restore(jax.eval_shape(lambda: state))
    if start_step >= config.num_steps:
        console(f"{run_dir} finished at step {start_step}; --new_run starts another run")
        checkpointer.close()
        return final
    batches = steps.Batches(len(dataset.x_train), config.batch_size, jax.random.fold_in(key, 1))
    # The whole dataset lives on every device, as do the weights; steps
    # gather their batches there, and split them over the devices (if several).
    mesh = parallel.mesh()
    everywhere = parallel.replicated(mesh)
    split = None
    if mesh.size > 1:
        parallel.check_divides(batches.size, "the batch", "set --config.batch_size", mesh)
        split = parallel.split(mesh)
    state = parallel.put(jax.device_get(state), everywhere)
    train_data = parallel.put((dataset.x_train, dataset.y_train), everywhere)
    eval_data = parallel.put((dataset.x_eval, dataset.y_eval), everywhere)

    train_step = steps.make_train_step(graphdef, loss_fn, optimizer, learning_rate, split)
    evaluate = steps.make_evaluate(
        graphdef, loss_fn, len(dataset.y_eval), dataset.num_classes,
        config.eval_batch_size, summed_loss=config.loss == "sse", batch_sharding=split,
    )  # fmt: skip
    # Compiled once, ahead of the loop: nothing in the loop can recompile.
    first_batch = jax.tree.map(lambda a: a[: batches.size], train_data)
    fused = jax.default_backend() != "cpu" or not steps.uses_convolutions(
        train_step, state, first_batch
    )
    train_loop = steps.compile_train_loop(train_step, batches, state, train_data, fused, everywhere)
    evaluate = jax.jit(evaluate).lower(state.params, eval_data)
    evaluate = evaluate.compile(steps.compiler_options())
    # Other processes compute the probes too (every process runs every
    # program), but keep their files apart.
    files = run_dir if parallel.is_writer() else tempfile.mkdtemp(prefix="probes-")
    probe = probes.Probes(config, graphdef, dataset, files)
    compile_seconds = time.perf_counter() - start

    if stop:
        name = signal.Signals(stop[0]).name
        raise Interrupted(f"{name} before the first step: nothing to save", stop[0])
    if parallel.is_writer():  # process 0 of a multi-host run writes the files
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            f.write(config.to_json(indent=2) + "\n")
        if start_step:
            summaries.cut_events_after(run_dir, start_step)
    writer = parallel.writer(run_dir)
    num_params = sum(v.size for v in jax.tree.leaves(params))
    resumed = f", resumed at step {start_step}" if start_step else ""
    console(f"{run_dir}: {num_params:,} parameters, compiled in {compile_seconds:.2f} s{resumed}")

    def log_eval(step, params):
        metrics, confusion = jax.device_get(evaluate(params, eval_data))
        writer.scalars(step, {f"eval/{k}": v for k, v in metrics.items()})
        probe.at_eval(writer, step, params, confusion)
        return {f"eval/{k}": float(v) for k, v in metrics.items()}

    last_saved = start_step

    def save_checkpoint(step):
        nonlocal last_saved
        if step > last_saved:  # never twice for one step, never at step 0
            writer.flush(wait=True)  # events up to `step` are on disk before its checkpoint
            checkpointer.save(step, state, config.to_dict(), final)
            last_saved = step

    if not start_step:
        writer.hparams(sweeps.plain(config))
        writer.text("config", summaries.config_markdown(sweeps.plain(config)))
        writer.text("run", summaries.run_markdown())
        writer.graph(graphs.graph_def(train_step, {"state": state, "batch": first_batch}))
        final.update(log_eval(0, state.params))
        writer.histograms(0, probes.param_arrays(state.params))
        probe.at_start(writer)
        probe.at_log(writer, 0, state.params)
        probe.at_picture(writer, 0, state.params)
    # steps/s counts time in the compiled loop, not the writing of summaries.
    step, last_log_step, compute_seconds = start_step, start_step, 0.0
    train_start = time.perf_counter()
    try:
        while step < config.num_steps:
            if stop:
                save_checkpoint(step)
                saved = (
                    f"checkpoint of step {last_saved} in {checkpointer.directory}; "
                    "run the same command to resume"
                    if last_saved
                    else "no step done, nothing saved"
                )
                name = signal.Signals(stop[0]).name
                raise Interrupted(f"{name} at step {step}: {saved}", stop[0])
            # Run up to the next log, eval or checkpoint point in one call.
            target = min(
                config.num_steps,
                *((step // every + 1) * every for every in cadences(config)),
            )
            chunk_start = time.perf_counter()
            state, metrics = train_loop(state, train_data, target - step)
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            compute_seconds += time.perf_counter() - chunk_start
            step = int(state.step)
            if not all(np.isfinite(v) for v in metrics.values()):
                writer.scalars(step, {f"train/{k}": v for k, v in metrics.items()})
                bad = ", ".join(k for k, v in metrics.items() if not np.isfinite(v))
                raise Diverged(
                    f"training diverged at step {step}: {bad} became NaN/Inf. "
                    f"The learning rate ({config.optimizer.learning_rate}) is the "
                    "usual cause: try a smaller --config.optimizer.learning_rate. "
                    "The last good checkpoint is kept."
                )
            if is_time(step, config.log_every, config.num_steps):
                rate = (step - last_log_step) / compute_seconds
                last_log_step, compute_seconds = step, 0.0
                progress = speed(step, rate, config.num_steps, batches)
                writer.scalars(step, {f"train/{k}": v for k, v in metrics.items()})
                writer.histograms(step, probes.param_arrays(state.params))
                probe.at_log(writer, step, state.params)
                writer.flush()
                console(
                    f"step {step:>{len(str(config.num_steps))}}  {headline(metrics)}  {progress}"
                )
                final.update({f"train/{k}": v for k, v in metrics.items()})
            if is_time(step, config.picture_every, config.num_steps):
                probe.at_picture(writer, step, state.params)
            if is_time(step, config.eval_every, config.num_steps):
                evaluated = log_eval(step, state.params)
                final.update(evaluated)
                if not is_time(step, config.log_every, config.num_steps):  # its own line
                    evaluation = {k[5:]: v for k, v in evaluated.items()}
                    console(
                        f"step {step:>{len(str(config.num_steps))}}  eval {headline(evaluation)}"
                    )
            if is_time(step, config.checkpoint_every, config.num_steps):
                save_checkpoint(step)
        report = probe.at_end(writer, step, state.params)
        if report:
            writer.text("learned_vs_true", report, step)
            console(report)
    finally:
        try:
            writer.close()
        finally:
            checkpointer.close()
    seconds = time.perf_counter() - train_start
    train = {k[6:]: v for k, v in final.items() if k.startswith("train/")}
    evaluation = {k[5:]: v for k, v in final.items() if k.startswith("eval/")}
    console(
        f"done: {step} steps in {seconds:.2f} s (pictures and probes {probe.seconds:.2f} s); "
        f"train {headline(train)}; eval {headline(evaluation)}. Run written to {run_dir}"
    )
    return final


def speed(step: int, steps_per_second: float, num_steps: int, batches: steps.Batches) -> str:
    """'1,234 steps/s' for full-batch runs; epoch, examples/s and ETA for minibatches."""
    if batches.full:
        return f"{steps_per_second:,.0f} steps/s"
    left = round((num_steps - step) / steps_per_second)
    return (
        f"epoch {step / batches.steps_per_epoch:.2f}  "
        f"{steps_per_second * batches.size:,.0f} examples/s  ETA {left // 60}m{left % 60:02d}s"
    )


def headline(metrics: dict[str, float]) -> str:
    """'loss 0.0123  accuracy 1.000' (mse instead of accuracy for a regression)."""
    if "accuracy" in metrics:
        return f"loss {metrics['loss']:.4f}  accuracy {metrics['accuracy']:.3f}"
    return f"loss {metrics['loss']:.4f}  mse {metrics['mse']:.4f}"


def cadences(config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """Every how many steps the loop must come back to the host."""
    return tuple(config[key] for key in CADENCES)


# --------------------------------------------------------------------------
# Command line.

# config.experiment -> (check the config, run it into a directory). Configs
# without the field train by gradient descent.
EXPERIMENTS = {
    "train": (check_config, train_and_evaluate),
    "gates": (gates.check_config, lambda config, run_dir: gates.run(config, run_dir, console)),
}

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/xor.py.", lock_config=True
)
_WORKDIR = flags.DEFINE_string(
    "workdir", "runs", "Root of all runs; each run gets its own sub-directory."
)
_NEW_RUN = flags.DEFINE_bool(
    "new_run",
    False,
    "Start a new run beside an existing one of the same name (name,run=2) instead of resuming it.",
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address",
    "",
    "Multi-host runs: host:port of process 0, the same for every process "
    "(or JAX_COORDINATOR_ADDRESS). Empty: this process trains alone.",
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", 0, "Multi-host runs: how many processes (or JAX_NUM_PROCESSES)."
)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", -1, "Multi-host runs: this process's number, 0 first (or JAX_PROCESS_ID)."
)
_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache",
    os.path.join(os.path.expanduser("~"), ".cache", "how-networks-learn", "xla"),
    "Directory where XLA keeps compiled programs between runs ('' turns it off). "
    "A run whose program was compiled before (another seed, a resume) starts faster.",
)


def parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing that reports a bad flag or config in one line."""
    try:
        rest = flags.FLAGS(argv)
        if _CONFIG.value is None:
            raise UserError("--config is required, e.g. --config=configs/xor.py")
        _CONFIG.value.get("seed")  # a config file that failed to load raises here
        if len(rest) > 1:
            raise UserError(f"unexpected arguments: {' '.join(rest[1:])}")
        return rest
    except (UserError, flags.Error) as e:
        message = str(e)
        if "Error whilst parsing config file" in message:  # get_config raised
            last_line = message.strip().splitlines()[-1]
            message = f"cannot load config {command_line.config_file(argv)}: {last_line}"
    except Exception as e:  # a config file can raise anything: report it
        message = command_line.config_error(argv, e)
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(2)


def _setup_jax_and_logs() -> None:
    if _COMPILATION_CACHE.value:
        jax.config.update("jax_compilation_cache_dir", _COMPILATION_CACHE.value)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if not flags.FLAGS["verbosity"].present:  # --verbosity=0 shows them all:
        logging.set_verbosity(logging.WARNING)  # JAX's "Unable to initialize backend 'tpu'"
        logging.get_absl_handler().addFilter(_not_from_a_failed_write)


def _not_from_a_failed_write(record) -> bool:
    """False for the log records of a failed checkpoint or event write.

    orbax, and asyncio under it, log a failed write as pages of ERROR, and
    asyncio's futures, completing after their event loop closed, as
    "exception calling callback" tracebacks (logger `concurrent.futures`).
    Our one-line error says why the run stopped.
    """
    quiet = ("asyncio", "concurrent.futures")
    return "orbax" not in record.pathname and record.name not in quiet


def _user_error(e: BaseException) -> tuple[str, int] | None:
    """(message, exit code) for a mistake or event the user caused; None for a bug."""
    if isinstance(e, Interrupted):
        return str(e), 128 + e.signum
    if isinstance(e, UserError):
        return str(e), 1
    if isinstance(e, KeyboardInterrupt):
        return "interrupted", 130
    if "RESOURCE_EXHAUSTED" in str(e) or isinstance(e, MemoryError):
        return "out of memory: try a smaller model or batch", 1
    return None


def parents(path: str) -> list[str]:
    """'a/b/c' -> ['a/b', 'a'], deepest first."""
    out, path = [], os.path.dirname(os.path.normpath(path))
    while path and path not in (os.sep, "."):
        out.append(path)
        path = os.path.dirname(path)
    return out


def main(argv: list[str]) -> None:
    del argv  # parse_flags has refused extra arguments
    failures.mute_after_failure = True  # this process exits after the error line
    _setup_jax_and_logs()
    config = _CONFIG.value
    name = command_line.run_name(
        config_flags.get_config_filename(flags.FLAGS["config"]),
        config_flags.get_override_values(flags.FLAGS["config"]),
    )
    run_dir, created = None, False
    # Folders above the run that this command would create: removed again if
    # the run fails before writing anything.
    new_parents = [p for p in parents(os.path.join(_WORKDIR.value, name)) if not os.path.exists(p)]
    try:
        parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
        check, run = lookup(EXPERIMENTS, config.get("experiment", "train"), "experiment")
        check(config)  # before the run directory exists
        run_dir, created = command_line.make_run_dir(_WORKDIR.value, name, _NEW_RUN.value)
        run(config, run_dir)
    except BaseException as e:
        if created and not glob.glob(
            os.path.join(glob.escape(run_dir), "**", "*tfevents*"), recursive=True
        ):
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing written: leave nothing
            for folder in new_parents:  # deepest first
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # only if empty
        if (failure := _user_error(e)) is None:
            failures.unmute()
            raise  # a bug, not a user mistake: the traceback helps
        print(f"error: {failure[0]}", file=failures.console(), flush=True)
        # Ours is all closed and flushed. Skip the interpreter's teardown, where
        # a failed orbax write's leftover coroutines still print warnings.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(failure[1])
    console(f"see it with: tensorboard --logdir {_WORKDIR.value}")
    if not jax.distributed.is_initialized():  # (a multi-host run shuts down in step)
        # All is written, flushed and closed. Skip the interpreter's teardown:
        # freeing JAX, Flax and orbax took 0.6 s of configs/xor.py's 4.5 s.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
