"""What the training loop does between its compiled chunks, one object per job.

As CLU's `PeriodicAction`: each action fires every `config.<every>` steps
and at the last step, does one thing, and keeps its own state. The loop
(train.py) runs a chunk up to the next step where one is due, then calls
the due ones in order:

    LogTrain    log_every    train scalars (per member, aggregates), console; solved-at steps
    Histograms  log_every    parameter histograms, layer probes
    Sharpness   probes.sharpness_every  the loss Hessian's top eigenvalue (0: auto, ~10%)
    Spectrum    probes.spectrum_every   its top k eigenvalues, trace and density (0: auto, ~10%)
    GradientNoise  probes.gradient_noise_every  the simple noise scale, layer SNRs (0: auto, ~10%)
    Trajectory  log_every    where the weights are, for the landscape's path (probes.landscape)
    Pictures    picture_every decision boundaries of 2-D classifiers
    Evaluate    eval_every   the eval split: scalars, confusion matrix
    Connectivity  (the end)  the line between seeds two by two (probes.connectivity)
    Checkpoint  checkpoint_every  the whole state, to resume bit for bit

`Histograms`, `Sharpness`, `Spectrum`, `GradientNoise`, `Trajectory`, `Pictures`
and `Evaluate` also fire at step 0 of a new run, and every action's
`finish` once after the last step. An action whose state a resumed run
needs (the solved-at steps, the sharpness curves, the weights' path) hands
it to the checkpoint (`state_dict`) and takes it back (`load_state_dict`).
What they share is a `Loop`: the program, its state and step, divergence,
the writers and the checkpointer.
"""

import base64
import math
import os
import tempfile
import time
import warnings
from typing import NamedTuple

import jax
import numpy as np

from dashboards import console, graphs, pictures, summaries, sweep_charts, views
from dashboards.writers import Writers, wilson_interval
from plumbing.failures import Diverged, UserError
from training import (
    checkpoints,
    connectivity,
    curvature,
    gradient_noise,
    landscape,
    parallel,
    steps,
    sweeps,
)
from training.program import Program

# Pictures, layer probes and embeddings are drawn for at most this many
# members of a run (the first seed of each point first): each costs host
# time, and a 256-seed sweep's pictures would all look alike.
PROBED_MEMBERS = 8
# Members named in the console when they diverge, per chunk (then a count).
REPORTED_DIVERGED = 10


def is_time(step: int, every: int, total: int) -> bool:
    """True at every `every`-th step and at the last one."""
    return step % every == 0 or step == total


class Action:
    """One periodic job of the loop (see the module docstring)."""

    every = "log_every"  # the config field that says how often it fires
    at_start = False  # also at step 0 of a new run

    def cadence(self, loop: "Loop") -> int:
        """Steps between its runs."""
        return loop.config[self.every]

    def __call__(self, loop: "Loop", step: int, metrics: dict | None) -> None:
        raise NotImplementedError

    def finish(self, loop: "Loop") -> None:
        """What it writes after the last step."""

    def state_dict(self) -> dict:
        """What a checkpoint keeps of it (lists and numbers)."""
        return {}

    def load_state_dict(self, saved: dict) -> None:
        """Takes back what `state_dict` gave a checkpoint."""


class Actions(NamedTuple):
    """Every action of a loop, in the order they run at a step."""

    log_train: "LogTrain"
    histograms: "Histograms"
    sharpness: "Sharpness"
    spectrum: "Spectrum"
    gradient_noise: "GradientNoise"
    trajectory: "Trajectory"
    pictures: "Pictures"
    evaluate: "Evaluate"
    connectivity: "Connectivity"
    checkpoint: "Checkpoint"


class Loop:
    """What the loop and its actions share: a program, its state and step,
    which members diverged, where it writes, and the checkpointer."""

    def __init__(self, config, program: Program, writers: Writers, checkpointer):
        self.program, self.writers, self.checkpointer = program, writers, checkpointer
        self.run_config = config  # the whole run's, as checkpoints store it
        self.config = program.group.config  # its program's
        self.members = program.group.members
        # (a copy: training consumes the state it is given; program.state stays step 0's)
        self.state, self.step, self.last_saved = program.copy(program.state), 0, 0
        self.diverged_at = np.zeros(len(self.members), np.int32)  # 0: still training
        self.device_diverged_at = program.diverged_at  # each member's, marked on the device
        self.all_diverged_at = 0  # the step by which every member diverged (0: training)
        self.seconds, self.steps_timed = 0.0, 0  # in compiled chunks, since the last log line
        self.views = views.Views(self.config, program.graphdef, program.dataset)
        order = sorted(range(len(self.members)), key=lambda m: (m % self.config.num_seeds, m))
        self.probed = sorted(order[:PROBED_MEMBERS]) if writers.dirs else []  # (member runs)
        # Every process computes the views (each runs every program); only
        # process 0's files are kept.
        self.probe_dirs = (writers.dirs if parallel.is_writer()
                           else [tempfile.mkdtemp()] * len(writers.dirs))  # fmt: skip
        self._params = None  # (state, its members' host parameters: stacked, each)
        self.actions = Actions(LogTrain(self), Histograms(), Sharpness(), Spectrum(),
                               GradientNoise(), Trajectory(self), Pictures(), Evaluate(self),
                               Connectivity(), Checkpoint())  # fmt: skip

    def stacked_params(self):
        """The members' parameters on the host, stacked (copied once per
        state: the actions due at one step share them)."""
        if self._params is None or self._params[0] is not self.state:
            self._params = (self.state, jax.device_get(self.state.params), None)
        return self._params[1]

    def params(self) -> list:
        """Each member's parameters, on the host (split once per state)."""
        stacked = self.stacked_params()
        if self._params[2] is None:
            each = [jax.tree.map(lambda a: a[m], stacked) for m in range(len(self.members))]  # noqa: B023
            self._params = (self.state, stacked, each)
        return self._params[2]

    def restore(self) -> None:
        """The state, metrics and progress of the latest checkpoint."""
        abstract = jax.eval_shape(lambda: self.program.state)
        state, _, saved = self.checkpointer.restore(abstract)
        self.state = jax.tree.map(
            lambda a, like: parallel.put(np.asarray(a), like.sharding), state, self.program.state
        )
        self.step = self.last_saved = int(np.asarray(state.step)[0])
        self.writers.final.update(saved["final"])
        self.diverged_at = np.array(saved["diverged_at"], np.int32)
        self.all_diverged_at = saved.get("ended", 0)
        self.device_diverged_at = parallel.put(self.diverged_at, self.program.diverged_at.sharding)
        for action in self.actions:
            action.load_state_dict(saved)

    def save(self) -> str:
        """A checkpoint of this step (once); says what is saved."""
        if self.step > self.last_saved:  # never twice for one step, never at step 0
            self.writers.flush()  # events up to the step are on disk before it
            progress = {
                "final": self.writers.final,
                "diverged_at": self.diverged_at.tolist(),
                "ended": self.all_diverged_at,
                "part": self.program.part,  # (a resumed run trains in the same parts)
            }
            for action in self.actions:
                progress.update(action.state_dict())
            self.checkpointer.save(self.step, self.state, self.run_config.to_dict(), progress)
            self.last_saved = self.step
        if not self.last_saved:
            return "no step done, nothing saved"
        return (
            f"checkpoint of step {self.last_saved} in {self.checkpointer.directory}; "
            "run the same command to resume"
        )

    def last_good_weights(self):
        """What a sweep's member that diverges in the next chunk is reset
        to (`check_divergence`): every member's weights now, a copy where
        the chunk consumes the state (the fused loop over all members; in
        parts, or one step per call, it is left); None for a single run,
        which stops instead."""
        program = self.program
        if program.group.single:
            return None
        consumed = not program.stepwise and program.part == len(self.members)
        return program.copy(self.state.params) if consumed else self.state.params

    def check_divergence(self, metrics: dict, last_good, since: int) -> bool:
        """After a chunk that started at step `since` with the weights
        `last_good` (`last_good_weights`): a single run that diverged raises
        Diverged, naming the step. A sweep's member whose metrics are no
        longer finite (marked by the chunk: steps.MembersStep.reported) is
        reported and reset to its weights of step `since` (its last good
        ones), and is reset so after every chunk from then on, while the
        others go on. Returns True when no member is left training (then
        saved)."""
        if self.program.group.single:
            self._single_run_diverged(metrics)
            return False
        diverged_at = np.array(jax.device_get(self.device_diverged_at))
        newly = np.flatnonzero((diverged_at > 0) & (self.diverged_at == 0))
        self.diverged_at = diverged_at
        for m in newly[:REPORTED_DIVERGED]:
            console.say(
                f"{self.members[m].name} diverged between steps {since} and {self.step}: its "
                f"loss or a weight became NaN/Inf; it keeps its weights of step {since}, the "
                "others go on"
            )
        if len(newly) > REPORTED_DIVERGED:
            console.say(
                f"... and {len(newly) - REPORTED_DIVERGED:,} more members diverged between steps "
                f"{since} and {self.step} ({int(np.sum(self.diverged_at > 0)):,} of "
                f"{len(self.members):,} so far; each point's aggregate/diverged counts them)"
            )
        if not np.any(self.diverged_at):
            return False
        mask = parallel.put(self.diverged_at > 0, self.program.diverged_at.sharding)
        self.state = self.program.reset(self.state, last_good, mask)
        if not np.all(self.diverged_at):
            return False
        self.all_diverged_at = int(self.diverged_at.max())
        self.save()
        return True

    def _single_run_diverged(self, metrics: dict) -> None:
        diverged_at = int(np.asarray(jax.device_get(self.device_diverged_at))[0])
        if not diverged_at:
            return
        # The loop stopped at that step, with every metric.
        self.writers.scalars(diverged_at, {f"train/{k}": v for k, v in metrics.items()})
        bad = [k for k, v in metrics.items() if not np.all(np.isfinite(v))]
        kept = (
            f"The last good checkpoint (step {self.last_saved}) is kept."
            if self.last_saved
            else "No checkpoint was saved before."
        )
        raise Diverged(
            f"training diverged at step {diverged_at}: {', '.join(bad) or 'the weights'} "
            f"became NaN/Inf. The learning rate ({self.config.optimizer.learning_rate}) is "
            f"the usual cause: try a smaller --config.optimizer.learning_rate. {kept}"
        )

    def start(self) -> None:
        """What a new run writes before its first step."""
        program, writers = self.program, self.writers
        # HPARAMS: a row per run, its trial ID the run's path from the
        # experiment's folder (`SWEEP/learning_rate=0.1`: unique there); a
        # sweep's seeds are sessions of their point's row (without member
        # runs, the point's aggregate is the row). The columns are the same
        # for every program of the run: from all its points.
        experiment = os.path.basename(os.path.normpath(writers.run_dir))
        points = {p: sweeps.plain(self.members[members[0]].config)
                  for p, members in writers.points.items()}  # fmt: skip
        for point_config in points.values():
            point_config.pop("seed")
        if self.program.group.single:
            runs = [sweeps.plain(self.members[0].config)]
        else:
            runs = [sweeps.plain(c) for c in sweeps.point_configs(self.run_config)]
            for run in runs:
                run.pop("seed")
        columns = sweeps.hparam_columns(runs, writers.run_dir)
        metrics = headline_metrics(program, aggregates=not writers.members)
        for m, writer in enumerate(writers.members):
            member = sweeps.plain(self.members[m].config)
            point = self.members[m].point
            trial = os.path.join(experiment, point) if point else experiment
            writer.hparams(_only(member, columns), trial_id=trial)
            writer.hparams_columns(columns, metrics)
            writer.text("config", summaries.config_markdown(member), 0)
            writer.text("run", summaries.run_markdown(), 0)
        for point, writer in writers.aggregates.items():
            if not writers.members:
                trial = os.path.join(experiment, point, "aggregate")
                writer.hparams(_only(points[point], columns), trial_id=trial)
                writer.hparams_columns(columns, metrics)
            writer.text("config", summaries.config_markdown(points[point]), 0)
            writer.layout(summaries.seed_bands(band_tags(program)))
        if not self.probed:
            return
        one = {"state": program.member_state(program.state), "batch": program.first_batch}
        graph = graphs.graph_def(program.train_step, one)
        for m in self.probed:
            self.writers.members[m].graph(graph)
            self.views.at_start(self.writers.members[m])


def _only(config: dict, fields) -> dict:
    return {k: v for k, v in summaries.flatten(config).items() if k in fields}


def headline_metrics(program: Program, aggregates: bool) -> list[str]:
    """HPARAMS' metric columns: the loss and accuracy (or mse), train and eval,
    and the sharpness where measured; of a point's aggregate, their medians
    over its seeds, the fraction solved and the number diverged."""
    task = "mse" if program.dataset.is_regression else "accuracy"
    tags = [f"{split}/{m}" for split in ("train", "eval") for m in ("loss", task)]
    tags += ["train/sharpness"] if program.sharpness else []
    if not aggregates:
        return tags
    solved = ["solved"] if task == "accuracy" and program.group.config.batch_size == 0 else []
    return [f"{tag}/median" for tag in tags] + solved + ["diverged"]


def band_tags(program: Program) -> list[str]:
    """The scalars the seed bands chart (summaries.seed_bands)."""
    task = "mse" if program.dataset.is_regression else "accuracy"
    tags = [f"{split}/{m}" for m in ("loss", task) for split in ("train", "eval")]
    return tags + (["train/sharpness"] if program.sharpness else [])


class LogTrain(Action):
    """Train scalars of every member and their aggregates; the console line.
    Keeps each member's first log step at 100% train accuracy (its solved-at
    step), and each point's results table at the end. A member whose train
    loss is finite but more than twice its loss before training
    (`Evaluate.initial_loss`) is `unstable`, apart from `diverged` (NaN/Inf)."""

    def __init__(self, loop: Loop):
        # Solved means the whole training set, which only a full-batch step
        # measures; a minibatch's accuracy says nothing of the kind.
        self.solvable = loop.config.batch_size == 0 and not loop.program.dataset.is_regression
        self.solved_at = np.zeros(len(loop.members), np.int64)  # 0: not yet
        self.said: dict[str, tuple] = {}  # point -> its last line's (text, step or None)

    def __call__(self, loop: Loop, step: int, metrics: dict) -> None:
        writers = loop.writers
        training = loop.diverged_at == 0  # a diverged member's curves end where it did
        stats = writers.scalars(step, {f"train/{k}": v for k, v in metrics.items()}, training)
        # Of each member only its loss and accuracy come over: who is unstable, who solved.
        loss, accuracy = jax.device_get((metrics["loss"], metrics.get("accuracy", 0)))
        solved = training & (np.asarray(accuracy) == 1)
        if self.solvable:
            self.solved_at[(self.solved_at == 0) & solved] = step
        unstable = training & (np.asarray(loss) > 2 * loop.actions.evaluate.initial_loss)
        for point, indices in writers.points.items():
            counts = {"diverged": float(np.sum(~training[indices]))}
            counts["unstable"] = float(np.sum(unstable[indices]))
            if self.solvable:
                counts["solved"] = float(np.mean(solved[indices]))
                low, high = wilson_interval(int(np.sum(solved[indices])), len(indices))
                counts["solved/low95"], counts["solved/high95"] = low, high
            writers.aggregate_scalars(step, point, counts)
        writers.flush()
        rate = loop.steps_timed / max(loop.seconds, 1e-9)
        loop.seconds, loop.steps_timed = 0.0, 0
        if loop.program.group.single:
            values = {k: float(v[0]) for k, v in jax.device_get(metrics).items()}
            speed = console.speed(loop.program.batches, step, loop.config.num_steps, rate)
            self.say_thinned(loop, step, "", console.headline(values), f"  {speed}")
            return
        host = None  # every member's metrics, if a point has one seed
        for point, indices in writers.points.items():
            alive = indices[training[indices]]
            if len(indices) == 1 and len(alive):  # one seed: its values, not a spread
                host = jax.device_get(metrics) if host is None else host
                line = console.headline({k: float(v[alive[0]]) for k, v in host.items()})
                line += "  unstable" * bool(unstable[alive[0]])
                self.say_thinned(loop, step, point, line)
            elif len(alive):
                done = (int(np.sum(solved[alive])), len(alive)) if self.solvable else None
                count = int(np.sum(unstable[alive]))
                self.say_thinned(loop, step, point, console.spread(stats[point], done, count))

    def say_thinned(self, loop: Loop, step: int, point: str, text: str, speed: str = "") -> None:
        """A point's line, thinned on a plateau: the first repeat of the same
        values says so, the next are left out until they change (the last
        step's line is always printed)."""
        num_steps, where = loop.config.num_steps, f"{point}  " if point else ""
        last_text, since = self.said.get(point, ("", None))
        if text == last_text and step < num_steps:
            if since is not None:
                quiet = f"  (the same since step {since}: quiet until it changes)"
                console.say(console.step_line(step, num_steps, where + text + quiet))
                self.said[point] = (text, None)
            return
        console.say(console.step_line(step, num_steps, where + text + speed))
        self.said[point] = (text, step)

    def finish(self, loop: Loop) -> None:
        """Each point's results table (TEXT; the console, for one point)."""
        for point, writer in loop.writers.aggregates.items():
            summary = self.point_summary(loop, point)
            table = sweeps.summary_table(summary, len(loop.writers.points[point]))
            writer.text("results", table, loop.step)
            if len(loop.writers.points) == 1:
                console.say(table)

    def point_summary(self, loop: Loop, point: str) -> dict[str, float]:
        """A point's aggregate scalars (last values) and its median steps to solve."""
        indices = loop.writers.points[point]
        if self.solvable:
            at = self.solved_at[indices]
            if (at > 0).any():
                median = {"steps_to_solve/median": float(np.median(at[at > 0]))}
                loop.writers.aggregate_scalars(loop.step, point, median)
        prefix = os.path.join(point, "aggregate/") if point else "aggregate/"
        return {k[len(prefix) :]: v for k, v in loop.writers.final.items() if k.startswith(prefix)}

    def state_dict(self) -> dict:
        return {"solved_at": self.solved_at.tolist()}

    def load_state_dict(self, saved: dict) -> None:
        self.solved_at = np.array(saved["solved_at"], np.int64)


# Without member runs, a point's weight histograms are of its first this many
# seeds: the distribution is as clear, and bucketing 100,000 members' weights
# costs XLA:CPU about 0.1 s a log step (a scatter of every weight).
HISTOGRAM_SEEDS = 1024


class Histograms(Action):
    """Histograms of every member's weights (without member runs, of each
    point's seeds together, up to HISTOGRAM_SEEDS, in its aggregate run);
    small weights as scalars and layer statistics for the probed members;
    their end reports."""

    at_start = True

    def __call__(self, loop: Loop, step: int, metrics: dict | None) -> None:
        start = time.perf_counter()
        zeros = views.zero_fraction(loop.state.params)  # one number a member, on the device
        loop.writers.scalars(step, {"weights/zero_fraction": zeros}, loop.diverged_at == 0)
        if loop.writers.members:
            stacked = views.param_arrays(loop.stacked_params())  # (members, ...) each
            for m, writer in enumerate(loop.writers.members):
                writer.write_histograms(step, {name: a[m] for name, a in stacked.items()})
        else:  # a sweep above max_member_runs: only the buckets come over, not the weights
            points = np.stack(list(loop.writers.points.values()))  # (points, seeds) in a program
            points = points[:, :HISTOGRAM_SEEDS]
            alive = loop.diverged_at == 0
            counts = views.point_histograms(loop.state.params, points, alive)
            for name, each in jax.device_get(counts).items():
                for point, members, buckets in zip(loop.writers.points, points, each, strict=True):
                    if alive[members].any():  # (none left: nothing to count)
                        loop.writers.aggregates[point].histogram_buckets(name, buckets, step)
        loop.views.seconds += time.perf_counter() - start
        params = loop.params() if loop.probed else []
        for m in loop.probed:
            loop.views.at_log(loop.writers.members[m], step, params[m])

    def finish(self, loop: Loop) -> None:
        params = loop.params() if loop.probed else []
        for m in loop.probed:
            report = loop.views.at_end(loop.writers.members[m], loop.step, params[m],
                                        loop.probe_dirs[m])  # fmt: skip
            if report:
                loop.writers.members[m].text("learned_vs_true", report, loop.step)
                console.say(report)


class Sharpness(Action):
    """Every member's sharpness (probes.sharpness), beside the limit that
    gradient descent holds it to, 2/eta for sgd (training/curvature.py).
    Keeps every measurement: the end draws them all."""

    every = "probes.sharpness_every"
    at_start = True

    def __init__(self):
        # [step, each member's sharpness, each one's limit or None] per measurement.
        self.history: list = []
        self.measurement_seconds: list[float] = []

    def cadence(self, loop: Loop) -> int:
        """`probes.sharpness_every`; if 0, the multiple of log_every that keeps
        its `sharpness_iterations` Hessian-vector products to about 10% of
        the training's work (`probe_cadence`)."""
        config = loop.config
        if not config.probes.sharpness:  # nothing to measure: no steps of its own
            return config.log_every
        if config.probes.sharpness_every:
            return config.probes.sharpness_every
        return probe_cadence(loop, config.probes.sharpness_iterations)

    def __call__(self, loop: Loop, step: int, metrics: dict | None) -> None:
        if loop.program.sharpness is None:
            return
        start = time.perf_counter()
        top, rate, momentum = jax.device_get(loop.program.sharpness(loop.state))
        limit = curvature.stability_limit(loop.config.optimizer.name, rate, momentum)
        values = {"train/sharpness": top}
        if limit is not None:
            values["train/sharpness_limit"] = limit
        loop.writers.scalars(step, values, loop.diverged_at == 0)
        self.history.append([step, top.tolist(), None if limit is None else limit.tolist()])
        self.measurement_seconds.append(time.perf_counter() - start)
        name = "2/eta" if loop.config.optimizer.name == "sgd" else "stability limit"
        for point, indices in (loop.writers.points or {"": np.array([0])}).items():
            alive = indices[loop.diverged_at[indices] == 0]
            if len(alive):  # each point's median over its seeds, beside its limit
                bound = None if limit is None else float(np.median(limit[alive]))
                text = console.sharpness(point, float(np.median(top[alive])), bound, name)
                console.say(console.step_line(step, loop.config.num_steps, text))

    def finish(self, loop: Loop) -> None:
        """A single point's picture (a sweep's is drawn at its end: finish_sweep)."""
        if self.history and list(loop.writers.points) in ([], [""]):
            picture = pictures.sharpness_chart(self.curves(loop))
            writer = loop.writers.aggregates[""] if loop.writers.points else loop.writers.members[0]
            writer.image("views/sharpness_vs_limit", picture, loop.step)

    def curves(self, loop: Loop) -> dict[str, tuple]:
        """{point: (steps, mean, min, max, limit)} of the members' sharpness, over
        each point's members that were still training ('' for a single run);
        {} if it was not measured."""
        if not self.history:
            return {}
        steps_ = np.array([s for s, _, _ in self.history])
        values = np.array([v for _, v, _ in self.history], np.float64)  # (measurements, members)
        limits = np.array([np.nan * np.ones(len(v)) if lim is None else lim
                           for _, v, lim in self.history], np.float64)  # fmt: skip
        alive = steps_[:, None] < np.where(loop.diverged_at > 0, loop.diverged_at, np.inf)[None]
        values = np.where(alive, values, np.nan)
        points = loop.writers.points or {"": [0]}
        curves = {}
        with warnings.catch_warnings():  # a step where none was left (or no limit): NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            for point, indices in points.items():
                v = values[:, indices]
                curves[point] = (steps_, np.nanmean(v, 1), np.nanmin(v, 1), np.nanmax(v, 1),
                                 np.nanmean(limits[:, indices], 1))  # fmt: skip
        return curves

    def state_dict(self) -> dict:
        return {"sharpness": self.history}

    def load_state_dict(self, saved: dict) -> None:
        self.history = saved.get("sharpness", [])


def probe_cadence(loop: Loop, hessian_vector_products: float) -> int:
    """The multiple of log_every that keeps a curvature probe's measurements
    to about 10% of the training's work. A measurement is
    `hessian_vector_products` products, each about two gradients, on
    `probes.examples` examples; a training step is one gradient on a batch."""
    config = loop.config
    n = len(loop.program.dataset.y_train)
    examples, batch = min(config.probes.examples or n, n), min(config.batch_size or n, n)
    gradients = 2 * hessian_vector_products * examples / batch  # one measurement's, in steps
    return config.log_every * max(1, math.ceil(10 * gradients / config.log_every))


# A point's density picture pools the Lanczos starts of its first this many
# seeds still training: their 64 starts (by default) draw it as well as
# more would, and smoothing costs 4-30 ms of host time per start (the grid
# grows with the spectrum's width: 10,001 points to 100,001).
DENSITY_SEEDS = 16


class Spectrum(Action):
    """Every member's Hessian spectrum (probes.spectrum; training/curvature.py):
    its top k eigenvalues and its trace as scalars, and each point's
    eigenvalue density as a picture beside its stability limit. Each
    measurement's picture is written at its step (IMAGES' step slider shows
    the density over training), so nothing is kept for the end."""

    every = "probes.spectrum_every"
    at_start = True

    def __init__(self):
        self.measurement_seconds: list[float] = []

    def cadence(self, loop: Loop) -> int:
        """`probes.spectrum_every`; if 0, the multiple of log_every that keeps
        its density_starts x spectrum_iterations + trace_samples
        Hessian-vector products to about 10% of the training's work."""
        probes = loop.config.probes
        if not probes.spectrum:  # nothing to measure: no steps of its own
            return loop.config.log_every
        if probes.spectrum_every:
            return probes.spectrum_every
        products = probes.density_starts * probes.spectrum_iterations + probes.trace_samples
        return probe_cadence(loop, products)

    def __call__(self, loop: Loop, step: int, metrics: dict | None) -> None:
        if loop.program.spectrum is None:
            return
        start = time.perf_counter()
        spectrum, rate, momentum = jax.device_get(loop.program.spectrum(loop.state))
        limit = curvature.stability_limit(loop.config.optimizer.name, rate, momentum)
        values = {f"train/hessian/eigenvalue_{i + 1}": top for i, top in enumerate(spectrum.top.T)}
        values["train/hessian/trace"] = spectrum.trace
        values["train/hessian/trace_error"] = spectrum.trace_error
        loop.writers.scalars(step, values, loop.diverged_at == 0)
        lines = []
        for point, indices in (loop.writers.points or {"": np.array([0])}).items():
            alive = indices[loop.diverged_at[indices] == 0]
            if len(alive):  # each point's density, and its medians over its seeds
                bound = None if limit is None else float(np.median(limit[alive]))
                self.draw(loop, point, step, spectrum, alive[:DENSITY_SEEDS], bound)
                top, trace, error = (
                    np.median(a[alive], 0)
                    for a in (spectrum.top, spectrum.trace, spectrum.trace_error)
                )
                lines.append(console.spectrum(point, top, float(trace), float(error)))
        self.measurement_seconds.append(time.perf_counter() - start)
        for line in lines:
            console.say(console.step_line(step, loop.config.num_steps, line))

    @staticmethod
    def draw(loop: Loop, point: str, step: int, spectrum, members, limit) -> None:
        """views/hessian_density of `point` ('' for a single run) at `step`:
        the density of its `members`' starts pooled (each start weighs the
        same), in its aggregate run (a single run's own)."""
        nodes = spectrum.nodes[members].reshape(-1, spectrum.nodes.shape[-1])
        weights = spectrum.weights[members].reshape(nodes.shape)
        grid, density = curvature.smoothed_density(nodes, weights)
        writer = loop.writers.aggregates[point] if loop.writers.points else loop.writers.members[0]
        writer.image("views/hessian_density", pictures.spectral_density_chart(grid, density, limit),
                     step)  # fmt: skip


class GradientNoise(Action):
    """Every member's gradient noise (probes.gradient_noise;
    training/gradient_noise.py): the simple noise scale B_simple, its trace
    and signal, and each weight matrix's signal-to-noise ratio, as scalars;
    each point's medians in the console. The last B_simple is kept (in the
    checkpoint too) for `Evaluate`'s noise scale at the target."""

    every = "probes.gradient_noise_every"
    at_start = True

    def __init__(self):
        self.measurement_seconds: list[float] = []
        self.latest = None  # each member's b_simple, last measured (Evaluate's at the target)
        self.latest_step = -1  # ... at this step

    def cadence(self, loop: Loop) -> int:
        """`probes.gradient_noise_every`; if 0, the multiple of log_every that
        keeps its per-example gradients (about one gradient on the probe's
        examples: half a Hessian-vector product) to about 10% of the work."""
        probes = loop.config.probes
        if not probes.gradient_noise:  # nothing to measure: no steps of its own
            return loop.config.log_every
        return probes.gradient_noise_every or probe_cadence(loop, 0.5)

    def __call__(self, loop: Loop, step: int, metrics: dict | None) -> None:
        if loop.program.gradient_noise is None:
            return
        start = time.perf_counter()
        noise = jax.device_get(loop.program.gradient_noise(loop.state))
        values = {f"train/gradient_noise/{name}": getattr(noise, name)
                  for name in ("b_simple", "trace", "signal")}  # fmt: skip
        values |= {f"train/gradient_noise/snr/{layer}": v for layer, v in noise.snr.items()}
        b_simple = values.pop("train/gradient_noise/b_simple")
        training = loop.diverged_at == 0
        loop.writers.scalars(step, values, training)
        # (its statistics over the members where it was measured: NaN where it was not)
        loop.writers.scalars(step, {"train/gradient_noise/b_simple": b_simple},
                             training & np.isfinite(b_simple))  # fmt: skip
        self.latest, self.latest_step = np.asarray(b_simple, np.float64), step
        lines = []
        points, config = loop.writers.points or {"": np.array([0])}, loop.config
        if self.cadence(loop) < config.log_every and not is_time(step, config.log_every,
                                                                 config.num_steps):  # fmt: skip
            points = {}  # (measured more often than logged: the log steps' lines are enough)
        for point, indices in points.items():
            alive = indices[loop.diverged_at[indices] == 0]
            if len(alive):  # each point's medians over its seeds
                b_simple = noise.b_simple[alive]  # (NaN where not measured)
                b_simple = float(np.median(b_simple[np.isfinite(b_simple)])) if np.isfinite(
                    b_simple).any() else np.nan  # fmt: skip
                trace, signal = (float(np.median(a[alive])) for a in (noise.trace, noise.signal))
                lines.append(console.gradient_noise(point, b_simple, trace, signal))
        self.measurement_seconds.append(time.perf_counter() - start)
        for line in lines:
            console.say(console.step_line(step, loop.config.num_steps, line))

    def state_dict(self) -> dict:
        latest = None if self.latest is None else [_json_number(v) for v in self.latest]
        return {"gradient_noise_latest": latest, "gradient_noise_latest_step": self.latest_step}

    def load_state_dict(self, saved: dict) -> None:
        latest = saved.get("gradient_noise_latest")
        self.latest = None if latest is None else np.array(latest, np.float64)
        self.latest_step = saved.get("gradient_noise_latest_step", -1)


def _json_number(value: float) -> float | None:
    """`value` as JSON holds it: None for NaN (a diverged member's)."""
    return None if np.isnan(value) else float(value)


class Trajectory(Action):
    """Where each probed member's weights are, for the loss landscape's path
    (probes.landscape; training/landscape.py): with random directions the
    few numbers the path's projection needs, with the path's own
    (probes.landscape_directions="path") the whole weights, at most
    PATH_NUMBERS of them. At the end, the landscapes with that path drawn
    on them."""

    at_start = True

    def __init__(self, loop: Loop):
        self.history: list = []  # [step, each probed member's landscape.unit_dots] (random)
        self.snapshots: list = []  # [step, each probed member's flat float32 weights] (path)
        self._directions = None
        self.along_path = loop.config.probes.landscape_directions == "path"
        if loop.config.probes.landscape and loop.probed and self.along_path:
            check_path_size(loop)

    def directions(self, loop: Loop) -> list:
        """The landscape's two raw random directions (landscape.raw_directions)."""
        if self._directions is None:
            self._directions = landscape.raw_directions(loop.params()[loop.probed[0]])
        return self._directions

    def __call__(self, loop: Loop, step: int, metrics: dict | None) -> None:
        if not (loop.config.probes.landscape and loop.probed):
            return
        start, params = time.perf_counter(), loop.params()
        if self.along_path:
            self.snapshots.append([step, [landscape.flatten(params[m]) for m in loop.probed]])
        else:
            directions = self.directions(loop)
            where = [landscape.unit_dots(params[m], directions).tolist() for m in loop.probed]
            self.history.append([step, where])
        loop.views.seconds += time.perf_counter() - start

    def plane(self, loop: Loop, i: int, final) -> tuple:
        """`(d1, d2, path, variance)` of the `i`-th probed member, whose
        weights are `final`: the plane's directions (pytrees like `final`),
        the path's (a, b) on it, and the directions' shares of the path's
        variance (None for random directions)."""
        if not self.along_path:
            directions = self.directions(loop)
            d1, d2 = landscape.normalised(final, directions, landscape.scales(final, directions))
            path = landscape.project([where[i] for _, where in self.history], final, directions)
            return d1, d2, path, None
        snapshots = np.stack([weights[i] for _, weights in self.snapshots])
        directions, variance, coordinates = landscape.path_directions(
            snapshots, landscape.flatten(final)
        )
        unit = landscape.path_unit(coordinates, loop.config.probes.landscape_span)
        d1, d2 = (landscape.unflatten(unit * d, final) for d in directions)
        return d1, d2, coordinates / unit, variance

    def finish(self, loop: Loop) -> None:
        """views/landscape/line and views/landscape/plane of each probed member."""
        if not (loop.config.probes.landscape and loop.probed):
            return
        start = time.perf_counter()
        program, config = loop.program, loop.config.probes
        resolution, span = config.landscape_resolution, config.landscape_span
        losses = landscape.make_losses(
            program.train_step.loss, resolution, span, one_at_a_time=loop.config.model.name == "cnn"
        )
        n, ds = config.examples or None, program.dataset
        train, evaluation = (ds.x_train[:n], ds.y_train[:n]), (ds.x_eval[:n], ds.y_eval[:n])
        params, variances = loop.params(), []
        for i, m in enumerate(loop.probed):
            final = params[m]
            initial = jax.device_get(program.member_state(program.state, m).params)
            d1, d2, path, variance = self.plane(loop, i, final)
            line, plane = jax.device_get(losses(initial, final, d1, d2, train, evaluation))
            title = None
            if variance is not None:
                variances.append(variance)
                title = (f"train loss on the path's top 2 directions "
                         f"({_shares([variance])} of its variance); the path")  # fmt: skip
            line_picture, plane_picture = pictures.landscape_pictures(
                line, plane, span, path, title
            )
            loop.writers.members[m].image("views/landscape/line", line_picture, loop.step)
            loop.writers.members[m].image("views/landscape/plane", plane_picture, loop.step)
        seconds = time.perf_counter() - start
        loop.views.seconds += seconds
        members = len(loop.probed)
        on = ""
        if variances:
            whose = "its" if members == 1 else "their paths'"
            on = f" on the path's top 2 directions ({_shares(variances)} of {whose} variance)"
        console.say(
            f"landscape: the line and a {resolution}x{resolution} plane{on} for "
            f"{members} member{'s' * (members > 1)} in {seconds:.2f} s"
        )

    def state_dict(self) -> dict:
        snapshots = [[step, [_base64(w) for w in weights]] for step, weights in self.snapshots]
        return {"path": self.history, "path_weights": snapshots}

    def load_state_dict(self, saved: dict) -> None:
        self.history = saved.get("path", [])
        self.snapshots = [[step, [_from_base64(w) for w in weights]]
                          for step, weights in saved.get("path_weights", [])]  # fmt: skip


# probes.landscape_directions="path" keeps every log step's weights of every
# probed member, in the checkpoint too: at most this many numbers (40 MB of
# float32; a CNN's 824,458 weights fit 12 log steps).
PATH_NUMBERS = 10_000_000


def check_path_size(loop: Loop) -> None:
    """Refuses (one line, before any step) a run whose path would keep more
    than PATH_NUMBERS numbers, saying which log_every would fit."""
    config, members = loop.config, len(loop.probed)
    weights = sum(v.size for v in jax.tree.leaves(loop.program.state.params)) // len(loop.members)
    log_steps = math.ceil(config.num_steps / config.log_every) + 1  # step 0 ... the last
    numbers = members * weights * log_steps
    if numbers <= PATH_NUMBERS:
        return
    most = PATH_NUMBERS // (members * weights)  # log steps that would fit
    change = "use probes.landscape_directions=random"
    if most >= 2:  # step 0 and the last one at least
        every = math.ceil(config.num_steps / (most - 1))
        change = f"raise log_every to {every:,} or more, or {change}"
    raise UserError(
        f"probes.landscape_directions=path keeps the {weights:,} weights of {members} probed "
        f"member{'s' * (members > 1)} at {log_steps:,} log steps: {numbers:,} numbers, more "
        f"than the {PATH_NUMBERS:,} a run may keep: {change}"
    )


def _shares(variances: list) -> str:
    """'91.2%, 6.3%': each direction's share of the path's variance; over
    several members, each one's range ('88.0-91.2%, 6.3-9.1%')."""
    low, high = np.min(variances, axis=0) * 100, np.max(variances, axis=0) * 100
    return ", ".join(f"{hi:.1f}%" if f"{lo:.1f}" == f"{hi:.1f}" else f"{lo:.1f}-{hi:.1f}%"
                     for lo, hi in zip(low, high, strict=True))  # fmt: skip


def _base64(weights: np.ndarray) -> str:
    """Float32 weights as compact text for the checkpoint's JSON (their bytes, base64)."""
    return base64.b64encode(np.asarray(weights, "<f4").tobytes()).decode("ascii")


def _from_base64(text: str) -> np.ndarray:
    """`_base64`'s inverse: the same float32 weights, bit for bit."""
    return np.frombuffer(base64.b64decode(text), "<f4").astype(np.float32)


class Pictures(Action):
    """Decision boundaries of the probed members (2-D classifiers)."""

    every = "picture_every"
    at_start = True

    def __call__(self, loop: Loop, step: int, metrics: dict | None) -> None:
        params = loop.params() if loop.probed else []
        for m in loop.probed:
            loop.views.at_picture(loop.writers.members[m], step, params[m])


class Evaluate(Action):
    """Every member on the eval split; its confusion matrix for the probed.
    Keeps each member's loss before training (`initial_loss`, at step 0):
    where a loss that grows beyond it (`LogTrain`'s unstable) started.

    With `target_eval_loss`, also each member's steps to target: its first
    eval step at or below that loss (and the noise scale B_simple last
    measured by then, with probes.gradient_noise); at the end each point's
    aggregate gets `eval/steps_to_target/*` over the members that reached it,
    `eval/reached_target` (their fraction) and `eval/noise_scale_at_target/*`."""

    every = "eval_every"
    at_start = True

    def __init__(self, loop: Loop):
        self.initial_loss = np.full(len(loop.members), np.inf)  # until step 0 is evaluated
        self.reached_at = np.full(len(loop.members), -1, np.int64)  # -1: not (yet)
        self.noise_at_target = np.full(len(loop.members), np.nan)

    def __call__(self, loop: Loop, step: int, metrics: dict | None) -> None:
        values, confusion = jax.device_get(loop.program.evaluate(loop.state.params))
        if step == 0:  # as a train batch's loss would be: a summed one (sse) per its size
            dataset, summed = loop.program.dataset, loop.config.loss == "sse"
            per_batch = loop.program.batches.size / len(dataset.y_eval) if summed else 1.0
            self.initial_loss = np.asarray(values["loss"], np.float64) * per_batch
        if loop.config.target_eval_loss:
            self.note_target(loop, step, np.asarray(values["loss"], np.float64))
        # A diverged member, frozen at its last good weights, is still evaluated
        # in its own run, but its point's statistics are over those training.
        eval_values = {f"eval/{k}": v for k, v in values.items()}
        loop.writers.scalars(step, eval_values, stats_over=loop.diverged_at == 0)
        params = loop.params() if loop.probed and loop.program.dataset.num_classes > 2 else None
        for m in loop.probed:
            loop.views.at_eval(loop.writers.members[m], step, params and params[m], confusion[m])
        config = loop.config
        if step and loop.program.group.single and not is_time(step, config.log_every,
                                                              config.num_steps):  # fmt: skip
            line = console.headline({k: float(v[0]) for k, v in values.items()})  # its own line
            console.say(console.step_line(step, config.num_steps, f"eval {line}"))

    def note_target(self, loop: Loop, step: int, loss: np.ndarray) -> None:
        """Marks the members whose eval `loss` reached target_eval_loss first at `step`."""
        target = loop.config.target_eval_loss
        reached = (self.reached_at < 0) & (loss <= target) & (loop.diverged_at == 0)
        if not reached.any():
            return
        self.reached_at[reached] = step
        noise = loop.actions.gradient_noise  # (it runs before this action at a step)
        if noise.latest is not None and noise.latest_step == step:  # measured here
            self.noise_at_target[reached] = noise.latest[reached]
        if loop.program.group.single:
            noise = self.noise_at_target[0]
            noise = f", noise scale {noise:.3g}" if np.isfinite(noise) else ""
            text = f"eval loss {loss[0]:.4f} <= target_eval_loss {target:g}: steps to target {step}"
            console.say(console.step_line(step, loop.config.num_steps, text + noise))

    def finish(self, loop: Loop) -> None:
        """Each point's steps to target (over its members that reached it) and
        the noise scale there, for its results table and the sweep's charts."""
        if not loop.config.target_eval_loss:
            return
        for point, indices in loop.writers.points.items():
            at, noise = self.reached_at[indices], self.noise_at_target[indices]
            values = {"eval/reached_target": float(np.mean(at >= 0))}
            for name, v in (("steps_to_target", at[at >= 0]), ("noise_scale_at_target", noise)):
                v = v[np.isfinite(v)]
                if v.size:
                    values |= {f"eval/{name}/{s}": float(f(v)) for s, f in
                               (("median", np.median), ("mean", np.mean), ("min", np.min),
                                ("max", np.max))}  # fmt: skip
            loop.writers.aggregate_scalars(loop.step, point, values)

    def state_dict(self) -> dict:
        return {"initial_loss": self.initial_loss.tolist(), "reached_at": self.reached_at.tolist(),
                "noise_at_target": [_json_number(v) for v in self.noise_at_target]}  # fmt: skip

    def load_state_dict(self, saved: dict) -> None:
        if "initial_loss" in saved:  # (checkpoints from before 2026-12-04 have none)
            self.initial_loss = np.array(saved["initial_loss"], np.float64)
        if "reached_at" in saved:  # (nor those from before 2026-12-05 these)
            self.reached_at = np.array(saved["reached_at"], np.int64)
            self.noise_at_target = np.array(saved["noise_at_target"], np.float64)


class Connectivity(Action):
    """At the end, the straight line between each point's seeds two by two
    (probes.connectivity; training/connectivity.py): each pair's train loss
    and eval error along it, their barriers, and the fraction of pairs
    linearly connected with its 95% interval, in the point's aggregate run
    (scalars connectivity/*, IMAGES views/connectivity/*) and the console."""

    def __init__(self):
        self.measurement_seconds: list[float] = []

    def cadence(self, loop: Loop) -> int:
        return loop.config.num_steps  # nothing to do before the end

    def __call__(self, loop: Loop, step: int, metrics: dict | None) -> None:
        pass

    def finish(self, loop: Loop) -> None:
        config = loop.config.probes
        if not config.connectivity:
            return
        start = time.perf_counter()
        program, n = loop.program, config.examples or None
        dataset, train_step = program.dataset, program.train_step
        classifier = not dataset.is_regression
        # The train loss along the line; a classifier's eval error too.
        splits = [(dataset.x_train[:n], dataset.y_train[:n])]
        splits += [(dataset.x_eval[:n], dataset.y_eval[:n])] if classifier else []
        pairs_at_once = 1 if loop.config.model.name == "cnn" else 16  # (memory: as landscape's)

        def lines(examples: int):  # every pair's line on a split, in one compiled call
            evaluate = steps.make_evaluate(
                train_step.graphdef, train_step.loss_fn, examples, dataset.num_classes,
                loop.config.eval_batch_size, summed_loss=loop.config.loss == "sse",
            )  # fmt: skip
            line = connectivity.make_line(evaluate, config.connectivity_points)

            @jax.jit
            def all_pairs(params, first, second, split):
                def pair(members):
                    a, b = (jax.tree.map(lambda leaf, m=m: leaf[m], params) for m in members)
                    return line(a, b, split)

                batch = min(pairs_at_once, len(first))
                return jax.lax.map(pair, (first, second), batch_size=batch)

            return all_pairs

        splits = [(lines(len(split[1])), split) for split in splits]
        training = loop.diverged_at == 0
        for point, indices in loop.writers.points.items():
            pairs = connectivity.seed_pairs(indices, training)
            if not len(pairs):
                console.say(f"{point}  connectivity: no pair of seeds still training")
                continue
            measured = jax.device_get(
                [on(loop.state.params, pairs[:, 0], pairs[:, 1], split) for on, split in splits]
            )
            train_loss = measured[0][0]
            eval_error = 1 - measured[1][1] if classifier else None
            values = self.barriers(train_loss, eval_error)
            loop.writers.aggregate_scalars(loop.step, point, values)
            barriers = connectivity.barrier(eval_error if classifier else train_loss)
            for tag, picture in pictures.connectivity_pictures(
                train_loss, eval_error, barriers, connectivity.CONNECTED
            ).items():
                loop.writers.aggregates[point].image(tag, picture, loop.step)
            console.say(console.connectivity(point, values, len(pairs)))
        self.measurement_seconds.append(time.perf_counter() - start)
        loop.views.seconds += self.measurement_seconds[-1]

    @staticmethod
    def barriers(train_loss: np.ndarray, eval_error: np.ndarray | None) -> dict[str, float]:
        """A point's aggregate scalars from its pairs' lines (pairs, points)."""
        found = {"train_loss_barrier": connectivity.barrier(train_loss)}
        if eval_error is not None:
            found["eval_error_barrier"] = connectivity.barrier(eval_error)
        values = {}
        for name, b in found.items():
            values |= {f"connectivity/{name}/{s}": float(f(b)) for s, f in
                       (("median", np.median), ("mean", np.mean), ("min", np.min),
                        ("max", np.max))}  # fmt: skip
        if eval_error is not None:
            connected = int(np.sum(found["eval_error_barrier"] <= connectivity.CONNECTED))
            low, high = wilson_interval(connected, len(train_loss))
            values["connectivity/connected"] = connected / len(train_loss)
            values["connectivity/connected/low95"] = low
            values["connectivity/connected/high95"] = high
        return values


class Checkpoint(Action):
    every = "checkpoint_every"

    def __call__(self, loop: Loop, step: int, metrics: dict | None) -> None:
        loop.save()


def finish(loop: Loop) -> None:
    """What a run writes after its last step: every action's `finish`, in
    their order (the views' end reports, the sharpness picture, the
    landscapes, ...), `LogTrain`'s results table last, to end the output."""
    for action in sorted(loop.actions, key=lambda action: isinstance(action, LogTrain)):
        action.finish(loop)


def outcome(loop: Loop) -> tuple[dict, set[str]]:
    """What a sweep's end needs of a program: its sharpness curves, and
    which of its members diverged."""
    diverged = {m.name for m, at in zip(loop.members, loop.diverged_at, strict=True) if at}
    return loop.actions.sharpness.curves(loop), diverged


def finish_sweep(config, run_dir: str, groups, final: dict, sharpness: dict, diverged) -> str:
    """What a sweep writes after its last program, into its top-level
    `aggregate` run: the config, the results table (the best point marked),
    the sharpness picture and each metric against each swept number
    (dashboards/sweep_charts.py). Returns the table."""
    best = sweep_charts.best_point(groups, final, diverged, config.best_metric)
    order = dict.fromkeys(m.point for group in groups for m in group.members)  # as swept
    table = sweeps.results_table(final, config.num_seeds, best, order, config.best_metric)
    critical = critical_batch_text(groups, final)
    table += f"\n\n{critical}" if critical else ""
    aggregate = parallel.writer(os.path.join(run_dir, "aggregate"))
    try:
        aggregate.text("config", summaries.config_markdown(sweeps.plain(config)), 0)
        aggregate.text("results", table, config.num_steps)
        if sharpness:
            aggregate.image("views/sharpness_vs_limit", pictures.sharpness_chart(sharpness),
                            config.num_steps)  # fmt: skip
        spec = sweeps.sweep_spec(config)
        sweep_charts.write(aggregate, config.num_steps, groups, final, diverged, spec)
    finally:
        aggregate.close()
    return table


def critical_batch_text(groups, final: dict) -> str | None:
    """A sweep over batch_size with a target_eval_loss: the steps to target
    at each batch size (its best point's median over the seeds, of the
    points where at least half of them reached it: the best learning rate,
    or of any other swept field), McCandlish et al.'s fit S_min (1 +
    B_crit/B) to them (three batch sizes or more), and the noise scale
    B_simple measured where the members reached the target, which the paper
    finds close to B_crit. Full-batch points (batch_size=0) are left out.
    None for other sweeps."""
    best: dict[int, tuple[float, float]] = {}  # batch size -> (steps, noise scale there)
    sizes = set()
    for group in groups:
        for point, config in {m.point: m.point_config for m in group.members}.items():
            at = f"{point}/aggregate/eval/"
            if not config.batch_size or f"{at}reached_target" not in final:
                continue
            sizes.add(config.batch_size)
            steps_ = final.get(f"{at}steps_to_target/median")
            if (
                final[f"{at}reached_target"] >= 0.5
                and steps_ < best.get(config.batch_size, (np.inf,))[0]
            ):
                best[config.batch_size] = (steps_, final.get(f"{at}noise_scale_at_target/median",
                                                             np.nan))  # fmt: skip
    if len(sizes) < 2:
        return None
    found = sorted(best)
    each = ", ".join(f"{b}: {best[b][0]:,.0f}" for b in found)
    lines = [f"Steps to target at each batch size (the best point's median): {each}."]
    missed = sorted(sizes - set(best))
    if missed:
        lines.append(f"Not reached by half the seeds of any point: batch size "
                     f"{', '.join(map(str, missed))}.")  # fmt: skip
    fit = gradient_noise.critical_batch(found, [best[b][0] for b in found])
    if len(found) < 3:
        lines.append("A fit of S_min (1 + B_crit / B) needs three batch sizes or more.")
    elif fit:
        s_min, b_crit = fit
        lines.append(
            f"Fitted S_min (1 + B_crit / B): B_crit = {b_crit:.3g} (S_min = {s_min:,.0f})."
        )
    else:
        lines.append("The steps do not fall with the batch size: no B_crit fits.")
    noise = np.array([best[b][1] for b in found])
    if np.isfinite(noise).any():
        each = ", ".join(f"{b}: {n:.3g}" for b, n in zip(found, noise, strict=True))
        median = np.nanmedian(noise)
        lines.append(f"The noise scale B_simple at the target, there: {each} (median "
                     f"{median:.3g}; McCandlish et al. 2018: B_crit ~ B_simple).")  # fmt: skip
    return "\n".join(lines)


def checkpointer(run_dir: str, group) -> checkpoints.Checkpointer:
    """A group's checkpoints: RUN_DIR/checkpoints, or .../checkpoints/GROUP."""
    return checkpoints.Checkpointer(run_dir, group.config.keep_checkpoints, group.name)
