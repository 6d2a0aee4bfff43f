"""Trains networks from a config and logs every run to TensorBoard.

    python train.py --config=configs/xor.py [--config.KEY=VALUE ...] [--workdir=runs]
    tensorboard --logdir runs/xor

`train_and_evaluate(config, run_dir)` is the whole job and what tests and
notebooks call; `main()` only parses flags and picks the run directory.

One loop trains everything. A run is one or more programs
(`sweeps.groups`), each training its MEMBERS at once: a single run is one
member; `--config.num_seeds=N` and `--config.sweep.*` make more, each the
single run of its seed and values (the step is written for one network and
`jax.vmap`ped over the members: training/program.py). The loop runs the
compiled program up to the next step where an action is due (a log line,
an evaluation, a picture, a checkpoint: training/actions.py), then runs
those actions; values reach the host only there.
"""

import contextlib
import os
import time
from typing import NamedTuple

import jax
import ml_collections
from absl import app, flags
from ml_collections import config_flags

import data
from dashboards import console
from dashboards.writers import Writers
from plumbing import command_line, failures, run_lock, signals, startup
from plumbing.failures import Diverged, UserError  # noqa: F401  (train.Diverged for callers)
from plumbing.registry import lookup
from training import actions, checkpoints, gates, parallel, program, sweeps
from training.actions import is_time  # noqa: F401  (train.is_time for callers)
from training.checks import check_config


def train_and_evaluate(config: ml_collections.ConfigDict, run_dir: str) -> dict[str, float]:
    """Trains `config` in `run_dir`, resuming from its latest checkpoints.

    Returns the last value of every train/ and eval/ metric and aggregate
    written, keyed `RUN/TAG` as TensorBoard names them, RUN being the directory below `run_dir`: a
    single run's `train/loss`, `eval/accuracy`, ...; a sweep member's
    `seed=1/train/loss` or `learning_rate=0.1/seed=1/train/loss`; a point's
    `aggregate/train/loss/mean` (also `/std`, `/min`, `/max`, `/median`, `solved`,
    `diverged`, `steps_to_solve/median`). Raises UserError for a bad config
    or a run directory in use, Diverged when no member is left training (a
    value became NaN/Inf) and Interrupted on SIGINT/SIGTERM (after saving a
    checkpoint of the steps done).
    """
    with signals.stop_requests() as stop:  # first: a signal from now on is polite
        check_config(config)
        checkpoints.preload()  # orbax's slow import, on a thread while we compile
        # Process 0 owns the directory (in a multi-host run the others write nothing).
        with run_lock.owned(run_dir) if parallel.is_writer() else contextlib.nullcontext():
            return _train_and_evaluate(config, run_dir, stop)


def _train_and_evaluate(config, run_dir: str, stop: signals.StopRequests) -> dict[str, float]:
    groups = sweeps.groups(config)
    if not sweeps.writes_member_runs(config):
        console.say(
            f"{sweeps.num_members(config):,} members: each point's aggregate run is written, "
            f"not a run per member (more than max_member_runs={config.max_member_runs})"
        )
    final, trained, diverged, sharpness, gone = {}, False, [], {}, set()
    for group in groups:
        result = train_group(config, group, run_dir, stop)
        final.update(result.final)
        trained |= result.trained
        diverged += [result.diverged_by] if result.diverged_by else []
        sharpness.update(result.sharpness)
        gone |= result.diverged
    if len(diverged) == len(groups) and trained:  # (a single run raised already)
        members = sum(len(g.members) for g in groups)
        raise Diverged(
            f"every member ({members}) diverged by step {max(diverged)}: the losses or "
            "weights became NaN/Inf. The learning rate is the usual cause: try a smaller "
            "--config.optimizer.learning_rate."
        )
    if not trained:
        console.say(f"{run_dir} finished at step {config.num_steps}; --new_run starts another run")
    elif sweeps.sweep_spec(config):
        table = actions.finish_sweep(config, run_dir, groups, final, sharpness, gone)
        console.say(f"{table}\nRuns written to {run_dir}")
    return final


class Trained(NamedTuple):
    final: dict[str, float]  # its last scalars, as train_and_evaluate returns them
    trained: bool  # whether any step was trained here (or it had finished before)
    diverged_by: int  # the step by which every member had diverged (0: not all did)
    sharpness: dict  # its points' sharpness curves (actions.Sharpness.curves), if measured
    diverged: set[str]  # the names of its members that diverged


def train_group(config, group: sweeps.Group, run_dir: str, stop) -> Trained:
    """Builds one program, resumes it if it was checkpointed, and trains it."""
    start = time.perf_counter()
    checkpointer = actions.checkpointer(run_dir, group)
    start_step = checkpoints.resume_step(checkpointer, config, run_dir)
    part = checkpointer.saved_part() if start_step else None  # (resumed: the same parts)
    built = program.build(group, data.load_dataset(group.config.data), part=part)
    writers = Writers(
        run_dir, group.members, sweeps.writes_member_runs(config), parallel.is_writer()
    )
    loop = actions.Loop(config, built, writers, checkpointer)
    try:
        if start_step:
            loop.restore()
        if loop.step >= group.config.num_steps or loop.all_diverged_at:
            return Trained(writers.final, False, loop.all_diverged_at, *actions.outcome(loop))
        compiled = time.perf_counter() - start
        stop.check_before_start()
        if parallel.is_writer():  # process 0 of a multi-host run writes the files
            with open(os.path.join(run_dir, "config.json"), "w") as f:
                f.write(config.to_json(indent=2) + "\n")
        writers.open(loop.step)
        params = sum(v.size for v in jax.tree.leaves(built.state.params)) // len(group.members)
        where = os.path.join(run_dir, group.name) if group.name else run_dir
        members, cap = len(group.members), config.members_per_program
        console.say(console.built(where, members, built.part, cap, params, compiled, loop.step,
                                  part))  # fmt: skip
        train(loop, stop)
    finally:
        try:
            writers.close()
        finally:
            checkpointer.close()
    return Trained(writers.final, True, loop.all_diverged_at, *actions.outcome(loop))


def train(loop: actions.Loop, stop: signals.StopRequests) -> None:
    """The loop: compiled chunks up to the next due action, then the actions."""
    config, started, first = loop.config, time.perf_counter(), loop.step
    due = [(action, action.cadence(loop)) for action in loop.actions]
    if not loop.step:  # a new run: what step 0 looks like
        loop.start()
        for action, _ in due:
            if action.at_start:
                action(loop, 0, None)
    while loop.step < config.num_steps:
        stop.check(loop.step, loop.save)
        target = min(config.num_steps, *((loop.step // every + 1) * every for _, every in due))
        last_good, since = loop.last_good_weights(), loop.step  # (a sweep's, for who diverges)
        chunk_start = time.perf_counter()
        # The compiled steps of every member (training/program.py -> steps.train_loop).
        loop.state, loop.device_diverged_at, metrics = loop.program.train(
            loop.state, loop.device_diverged_at, target - loop.step
        )
        metrics = jax.block_until_ready(metrics)  # (they stay on the device: actions fetch theirs)
        loop.seconds += time.perf_counter() - chunk_start
        loop.steps_timed += target - loop.step
        loop.step = target
        if loop.check_divergence(metrics, last_good, since):  # no member left: this program ends
            break
        del last_good  # (before the actions: a copy of every member's weights)
        for action, every in due:
            if is_time(loop.step, every, config.num_steps):
                action(loop, loop.step, metrics)
    actions.finish(loop)
    single = loop.program.group.single
    measured = {"sharpness": loop.actions.sharpness.measurement_seconds,
                "spectrum": loop.actions.spectrum.measurement_seconds,
                "gradient_noise": loop.actions.gradient_noise.measurement_seconds,
                "connectivity": loop.actions.connectivity.measurement_seconds}  # fmt: skip
    console.say(console.done(
        loop.step, first, time.perf_counter() - started, loop.views.seconds, measured,
        loop.writers.final if single else None,
        loop.writers.dirs[0] if single else loop.writers.run_dir,
    ))  # fmt: skip


# --------------------------------------------------------------------------
# Command line.

# config.experiment -> (check the config, run it into a directory). Configs
# without the field train by gradient descent.
EXPERIMENTS = {
    "train": (check_config, train_and_evaluate),
    "gates": (gates.check_config, lambda config, run_dir: gates.run(config, run_dir, console.say)),
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


def main(argv: list[str]) -> None:
    del argv  # parse_flags has refused extra arguments
    startup.prepare(_COMPILATION_CACHE.value)  # the allocator, compilation cache, quiet logs
    with failures.one_line_errors():
        parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
        run_dir = run_command(config := _CONFIG.value)
    sweep = "num_seeds" in config and sweeps.num_members(config) > 1  # (gates have no seeds)
    console.say(console.see_it(run_dir, sweep))
    startup.finish()  # everything is written, flushed and closed: exit at once


def run_command(config: ml_collections.ConfigDict) -> str:
    """Checks `config` (--config's value), then runs it in the directory the flags name.

    Returns that directory. (tests/test_docs.py calls it after parsing a
    documented command's flags, with the config shortened.)
    """
    name = command_line.run_name(
        config_flags.get_config_filename(flags.FLAGS["config"]),
        config_flags.get_override_values(flags.FLAGS["config"]),
    )
    check, run = lookup(EXPERIMENTS, config.get("experiment", "train"), "experiment")
    check(config)  # before the run directory exists
    with (
        signals.stop_requests(),  # a signal from before the directory exists is polite
        command_line.run_directory(_WORKDIR.value, name, _NEW_RUN.value) as run_dir,
    ):
        run(config, run_dir)
    return run_dir


if __name__ == "__main__":
    # --help shows this module's docstring: with the recipes to pass as --config.
    configs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
    __doc__ += "\nRecipes (--config=...):\n\n" + command_line.recipes(configs) + "\n"
    app.run(main, flags_parser=lambda argv: command_line.parse_flags(argv, _CONFIG))
