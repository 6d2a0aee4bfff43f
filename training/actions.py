"""What the training loop does between its compiled chunks, one object per job.

As CLU's `PeriodicAction`: each action fires every `config.<every>` steps
and at the last step, and does one thing. The loop (train.py) runs a chunk
up to the next step where one is due, then calls the due ones in order:

    LogTrain    log_every    train scalars (per member, aggregates), console
    Inspect     log_every    parameter histograms, layer probes
    Sharpness   probes.sharpness_every  the loss Hessian's top eigenvalue (0: auto, ~10%)
    Path        log_every    where the weights are, for the landscape's path (probes.landscape)
    Pictures    picture_every decision boundaries of 2-D classifiers
    Evaluate    eval_every   the eval split: scalars, confusion matrix
    Checkpoint  checkpoint_every  the whole state, to resume bit for bit

`Inspect`, `Sharpness`, `Path`, `Pictures` and `Evaluate` also fire at step 0 of a new run. They
share one `Run`: the program, its current state and where it writes.
"""

import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable

import jax
import numpy as np

from dashboards import graphs, pictures, probes, summaries, sweep_charts
from dashboards.board import Board, wilson_interval
from plumbing.failures import Diverged
from training import checkpoints, curvature, landscape, parallel, steps, sweeps
from training.program import Program

# Pictures, layer probes and embeddings are drawn for at most this many
# members of a run (the first seed of each point first): each costs host
# time, and a 256-seed sweep's pictures would all look alike.
PROBED_MEMBERS = 8
# Members named in the console when they diverge, per chunk (then a count).
REPORTED_DIVERGED = 10


def cadence(action, run: "Run") -> int:
    """Steps between an action's runs: its `every` field (an action may choose: Sharpness)."""
    choose = getattr(action, "cadence", None)
    return choose(run) if choose else run.config[action.every]


def is_time(step: int, every: int, total: int) -> bool:
    """True at every `every`-th step and at the last one."""
    return step % every == 0 or step == total


class Run:
    """What the actions share: a program, its state, and where it writes."""

    def __init__(self, config, program: Program, board: Board, checkpointer, console: Callable):
        self.program, self.board, self.checkpointer = program, board, checkpointer
        self.console = console
        self.run_config = config  # the whole run's, as checkpoints store it
        self.config = program.group.config  # its program's
        self.members = program.group.members
        self.state, self.diverged_at = program.state, np.zeros(len(self.members), np.int32)
        self.device_diverged_at = program.diverged_at  # a single run's, from the loop
        self.step = self.last_saved = 0
        self.ended = 0  # the step by which every member diverged (0: training)
        # First log step at 100% train accuracy, per member (0: not yet).
        # Solved means the whole training set, which only a full-batch
        # step measures; a minibatch's accuracy says nothing of the kind.
        self.solved_at = np.zeros(len(self.members), np.int64)
        self.solvable = self.config.batch_size == 0 and not program.dataset.is_regression
        self.probes = probes.Probes(self.config, program.graphdef, program.dataset)
        order = sorted(range(len(self.members)), key=lambda m: (m % self.config.num_seeds, m))
        self.probed = sorted(order[:PROBED_MEMBERS]) if board.dirs else []  # (member runs)
        # Every process computes the probes (each runs every program); only
        # process 0's files are kept.
        self.files = board.dirs if parallel.is_writer() else [tempfile.mkdtemp()] * len(board.dirs)
        self.seconds = 0.0  # in the compiled loop since the last log line
        self._params = None  # (state, its members' host parameters: stacked, each)
        self.steps_timed = 0
        # [step, each member's sharpness, each one's limit or None] per log
        # step (probes.sharpness), checkpointed: the end picture draws them all.
        self.sharpness: list = []
        self.sharpness_seconds: list[float] = []
        # [step, each probed member's landscape.unit_dots] per log step
        # (probes.landscape), checkpointed: the end's path on the plane.
        self.path: list = []
        self._directions = None

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

    def directions(self) -> list:
        """The landscape's two raw random directions (landscape.raw_directions)."""
        if self._directions is None:
            self._directions = landscape.raw_directions(self.params()[self.probed[0]])
        return self._directions

    def restore(self) -> None:
        """The state, metrics and progress of the latest checkpoint."""
        abstract = jax.eval_shape(lambda: self.program.state)
        state, _, saved = self.checkpointer.restore(abstract)
        self.state = jax.tree.map(
            lambda a, like: parallel.put(np.asarray(a), like.sharding), state, self.program.state
        )
        self.step = self.last_saved = int(np.asarray(state.step)[0])
        self.board.final.update(saved["final"])
        self.diverged_at = np.array(saved["diverged_at"], np.int32)
        self.solved_at = np.array(saved["solved_at"], np.int64)
        self.ended = saved.get("ended", 0)
        self.sharpness = saved.get("sharpness", [])
        self.path = saved.get("path", [])
        self.device_diverged_at = parallel.put(self.diverged_at, self.program.diverged_at.sharding)

    def save(self) -> str:
        """A checkpoint of this step (once); says what is saved."""
        if self.step > self.last_saved:  # never twice for one step, never at step 0
            self.board.flush()  # events up to the step are on disk before it
            progress = {
                "final": self.board.final,
                "diverged_at": self.diverged_at.tolist(),
                "solved_at": self.solved_at.tolist(),
                "ended": self.ended,
                "sharpness": self.sharpness,
                "path": self.path,
            }
            self.checkpointer.save(self.step, self.state, self.run_config.to_dict(), progress)
            self.last_saved = self.step
        if not self.last_saved:
            return "no step done, nothing saved"
        return (
            f"checkpoint of step {self.last_saved} in {self.checkpointer.directory}; "
            "run the same command to resume"
        )

    def check_divergence(self, metrics: dict, earlier: steps.TrainState, since: int) -> bool:
        """After a chunk that started at step `since` in state `earlier`:
        a single run that diverged raises Diverged, naming the step. A
        sweep's member whose metrics are no longer finite is reported and
        reset to its weights of step `since` (its last good ones), and is
        reset so after every chunk from then on, while the others go on.
        Returns True when no member is left training (then saved)."""
        if self.program.group.single:
            self._single_run_diverged(metrics)
            return False
        finite = np.all([np.isfinite(np.asarray(v)) for v in metrics.values()], axis=0)
        newly = np.flatnonzero(~finite & (self.diverged_at == 0))
        self.diverged_at[newly] = self.step
        for m in newly[:REPORTED_DIVERGED]:
            self.console(
                f"{self.members[m].name} diverged between steps {since} and {self.step}: its "
                f"loss or a weight became NaN/Inf; it keeps its weights of step {since}, the "
                "others go on"
            )
        if len(newly) > REPORTED_DIVERGED:
            self.console(
                f"... and {len(newly) - REPORTED_DIVERGED:,} more members diverged between steps "
                f"{since} and {self.step} ({int(np.sum(self.diverged_at > 0)):,} of "
                f"{len(self.members):,} so far; each point's aggregate/diverged counts them)"
            )
        if not np.any(self.diverged_at):
            return False
        mask = parallel.put(self.diverged_at > 0, self.program.diverged_at.sharding)
        self.state = self.program.reset(self.state, earlier, mask)
        if not np.all(self.diverged_at):
            return False
        self.ended = int(self.diverged_at.max())
        self.save()
        return True

    def _single_run_diverged(self, metrics: dict) -> None:
        diverged_at = int(np.asarray(jax.device_get(self.device_diverged_at))[0])
        if not diverged_at:
            return
        # The loop stopped at that step, with every metric.
        self.board.scalars(diverged_at, {f"train/{k}": v for k, v in metrics.items()})
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
        program = self.program
        for m, writer in enumerate(self.board.members):
            member = sweeps.plain(self.members[m].config)
            writer.hparams(member)
            writer.text("config", summaries.config_markdown(member), 0)
            writer.text("run", summaries.run_markdown(), 0)
        for point, writer in self.board.aggregates.items():
            point_config = sweeps.plain(self.members[self.board.points[point][0]].config)
            point_config.pop("seed")
            writer.hparams(point_config)
            writer.text("config", summaries.config_markdown(point_config), 0)
            writer.layout(summaries.seed_bands(band_tags(program)))
        if not self.probed:
            return
        one = {"state": program.member_state(program.state), "batch": program.first_batch}
        graph = graphs.graph_def(program.train_step, one)
        for m in self.probed:
            self.board.members[m].graph(graph)
            self.probes.at_start(self.board.members[m])


def band_tags(program: Program) -> list[str]:
    """The scalars the seed bands chart (summaries.seed_bands)."""
    task = "mse" if program.dataset.is_regression else "accuracy"
    tags = [f"{split}/{m}" for m in ("loss", task) for split in ("train", "eval")]
    return tags + (["train/sharpness"] if program.sharpness else [])


class LogTrain:
    """Train scalars of every member and their aggregates; the console line."""

    every = "log_every"
    at_start = False

    def __call__(self, run: Run, step: int, metrics: dict) -> None:
        training = run.diverged_at == 0  # a diverged member's curves end where it did
        run.board.scalars(step, {f"train/{k}": v for k, v in metrics.items()}, training)
        solved = training & (np.asarray(metrics.get("accuracy", 0)) == 1)
        if run.solvable:
            run.solved_at[(run.solved_at == 0) & solved] = step
        for point, indices in run.board.points.items():
            counts = {"diverged": float(np.sum(~training[indices]))}
            if run.solvable:
                counts["solved"] = float(np.mean(solved[indices]))
                low, high = wilson_interval(int(np.sum(solved[indices])), len(indices))
                counts["solved/low95"], counts["solved/high95"] = low, high
            run.board.aggregate_scalars(step, point, counts)
        run.board.flush()
        rate = run.steps_timed / max(run.seconds, 1e-9)
        run.seconds, run.steps_timed = 0.0, 0
        width = len(str(run.config.num_steps))
        if run.program.group.single:
            values = {k: float(v[0]) for k, v in metrics.items()}
            run.console(f"step {step:>{width}}  {headline(values)}  {speed(run, step, rate)}")
            return
        for point, indices in run.board.points.items():
            where = f"  {point}" if point else ""
            indices = [m for m in indices if training[m]]
            if indices:
                values = {k: np.asarray(v)[indices] for k, v in metrics.items()}
                run.console(f"step {step:>{width}}{where}  {spread(values, run.solvable)}")


class Inspect:
    """Histograms of every member's weights; small weights as scalars and
    layer statistics for the probed members."""

    every = "log_every"
    at_start = True

    def __call__(self, run: Run, step: int, metrics: dict | None) -> None:
        start = time.perf_counter()
        stacked = probes.param_arrays(run.stacked_params())  # (members, ...) each
        zeros = probes.zero_fraction(stacked)
        run.board.scalars(step, {"params/zero_fraction": zeros}, run.diverged_at == 0)
        for m, writer in enumerate(run.board.members):
            writer.write_histograms(step, {name: a[m] for name, a in stacked.items()})
        run.probes.seconds += time.perf_counter() - start
        params = run.params() if run.probed else []
        for m in run.probed:
            run.probes.at_log(run.board.members[m], step, params[m])


class Sharpness:
    """Every member's sharpness (probes.sharpness), beside the limit that
    gradient descent holds it to, 2/eta for sgd (training/curvature.py)."""

    every = "probes.sharpness_every"
    at_start = True

    @staticmethod
    def cadence(run: Run) -> int:
        """`probes.sharpness_every`; if 0, the multiple of log_every that keeps the
        measurements to about 10% of the training's work. A measurement is
        `sharpness_iterations` Hessian-vector products, each about two gradients,
        on `probes.examples` examples; a training step is one gradient on a batch."""
        config = run.config
        if not config.probes.sharpness:  # nothing to measure: no steps of its own
            return config.log_every
        if config.probes.sharpness_every:
            return config.probes.sharpness_every
        n = len(run.program.dataset.y_train)
        examples, batch = min(config.probes.examples or n, n), min(config.batch_size or n, n)
        steps = 2 * config.probes.sharpness_iterations * examples / batch  # one measurement's
        return config.log_every * max(1, math.ceil(10 * steps / config.log_every))

    def __call__(self, run: Run, step: int, metrics: dict | None) -> None:
        if run.program.sharpness is None:
            return
        start = time.perf_counter()
        top, rate, momentum = jax.device_get(run.program.sharpness(run.state))
        limit = curvature.stability_limit(run.config.optimizer.name, rate, momentum)
        values = {"train/sharpness": top}
        if limit is not None:
            values["train/sharpness_limit"] = limit
        run.board.scalars(step, values, run.diverged_at == 0)
        run.sharpness.append([step, top.tolist(), None if limit is None else limit.tolist()])
        run.sharpness_seconds.append(time.perf_counter() - start)


class Path:
    """Where each probed member's weights are, in the few numbers the loss
    landscape's path needs (probes.landscape; training/landscape.py)."""

    every = "log_every"
    at_start = True

    def __call__(self, run: Run, step: int, metrics: dict | None) -> None:
        if not (run.config.probes.landscape and run.probed):
            return
        start = time.perf_counter()
        params = run.params()
        where = [landscape.unit_dots(params[m], run.directions()).tolist() for m in run.probed]
        run.path.append([step, where])
        run.probes.seconds += time.perf_counter() - start


class Pictures:
    """Decision boundaries of the probed members (2-D classifiers)."""

    every = "picture_every"
    at_start = True

    def __call__(self, run: Run, step: int, metrics: dict | None) -> None:
        params = run.params() if run.probed else []
        for m in run.probed:
            run.probes.at_picture(run.board.members[m], step, params[m])


class Evaluate:
    """Every member on the eval split; its confusion matrix for the probed."""

    every = "eval_every"
    at_start = True

    def __call__(self, run: Run, step: int, metrics: dict | None) -> None:
        values, confusion = jax.device_get(run.program.evaluate(run.state.params))
        run.board.scalars(step, {f"eval/{k}": v for k, v in values.items()})
        params = run.params() if run.probed and run.program.dataset.num_classes > 2 else None
        for m in run.probed:
            run.probes.at_eval(run.board.members[m], step, params and params[m], confusion[m])
        config = run.config
        if (
            step
            and run.program.group.single
            and not is_time(step, config.log_every, config.num_steps)
        ):
            line = headline({k: float(v[0]) for k, v in values.items()})  # its own line
            run.console(f"step {step:>{len(str(config.num_steps))}}  eval {line}")


class Checkpoint:
    every = "checkpoint_every"
    at_start = False

    def __call__(self, run: Run, step: int, metrics: dict | None) -> None:
        run.save()


ACTIONS = (LogTrain(), Inspect(), Sharpness(), Path(), Pictures(), Evaluate(), Checkpoint())


def finish(run: Run) -> None:
    """What a run writes after its last step: the probes' end pictures and
    reports, and each point's results table."""
    params = run.params() if run.probed else []
    for m in run.probed:
        report = run.probes.at_end(run.board.members[m], run.step, params[m], run.files[m])
        if report:
            run.board.members[m].text("learned_vs_true", report, run.step)
            run.console(report)
    if run.config.probes.landscape and run.probed:
        draw_landscapes(run, params)
    if run.sharpness and list(run.board.points) in ([], [""]):  # a sweep's: train.py
        picture = sharpness_picture(sharpness_curves(run))
        writer = run.board.aggregates[""] if run.board.points else run.board.members[0]
        writer.image("sharpness/vs_limit", picture, run.step)
    for point, writer in run.board.aggregates.items():
        summary = point_summary(run, point)
        writer.text("results", sweeps.summary_table(summary), run.step)
        if len(run.board.points) == 1:
            run.console(sweeps.summary_table(summary))


def draw_landscapes(run: Run, params: list) -> None:
    """landscape/line and landscape/plane of each probed member (training/landscape.py)."""
    start = time.perf_counter()
    program, probes_config = run.program, run.config.probes
    resolution, span = probes_config.landscape_resolution, probes_config.landscape_span
    losses = landscape.make_losses(
        program.train_step.loss, resolution, span, one_at_a_time=run.config.model.name == "cnn"
    )
    n, ds = probes_config.examples or None, program.dataset
    train, evaluation = (ds.x_train[:n], ds.y_train[:n]), (ds.x_eval[:n], ds.y_eval[:n])
    directions = run.directions()
    for i, m in enumerate(run.probed):
        final = params[m]
        initial = jax.device_get(program.member_state(program.state, m).params)
        d1, d2 = landscape.normalised(final, directions, landscape.scales(final, directions))
        line, plane = jax.device_get(losses(initial, final, d1, d2, train, evaluation))
        path = landscape.project([where[i] for _, where in run.path], final, directions)
        writer = run.board.members[m]
        alphas = np.linspace(-0.5, 1.5, resolution)
        series = [pictures.Series(line[0], "train loss"), pictures.Series(line[1], "eval loss")]
        wide = np.all(line > 0) and line.max() / line.min() > 10
        title = "loss from the initial (0) to the final (1) weights"
        writer.image("landscape/line", pictures.chart(alphas, series, title, "a", log_y=wide),
                     run.step)  # fmt: skip
        title = "train loss around the final weights; the path"
        writer.image("landscape/plane", pictures.surface(plane, span, path, title), run.step)
    seconds = time.perf_counter() - start
    run.probes.seconds += seconds
    run.console(
        f"landscape: the line and a {resolution}x{resolution} plane for "
        f"{len(run.probed)} member{'s' * (len(run.probed) > 1)} in {seconds:.2f} s"
    )


def outcome(run: Run) -> tuple[dict, set[str]]:
    """What a sweep's end needs of a program: its sharpness curves, and
    which of its members diverged."""
    diverged = {m.name for m, at in zip(run.members, run.diverged_at, strict=True) if at}
    return sharpness_curves(run), diverged


def finish_sweep(config, run_dir: str, groups, final: dict, sharpness: dict, diverged) -> str:
    """What a sweep writes after its last program, into its top-level
    `aggregate` run: the config, the results table (the best point marked),
    the sharpness picture and each metric against each swept number
    (dashboards/sweep_charts.py). Returns the table."""
    best = sweep_charts.best_point(groups, final, diverged)
    order = dict.fromkeys(m.point for group in groups for m in group.members)  # as swept
    table = sweeps.results_table(final, best, order)
    aggregate = parallel.writer(os.path.join(run_dir, "aggregate"))
    try:
        aggregate.text("config", summaries.config_markdown(sweeps.plain(config)), 0)
        aggregate.text("results", table, config.num_steps)
        if sharpness:
            picture = sharpness_picture(sharpness)
            aggregate.image("sharpness/vs_limit", picture, config.num_steps)
        spec = sweeps.sweep_spec(config)
        sweep_charts.write(aggregate, config.num_steps, groups, final, diverged, spec)
    finally:
        aggregate.close()
    return table


def sharpness_curves(run: Run) -> dict[str, tuple]:
    """{point: (steps, mean, min, max, limit)} of the members' sharpness, over
    each point's members that were still training ('' for a single run);
    {} if it was not measured."""
    if not run.sharpness:
        return {}
    steps_ = np.array([s for s, _, _ in run.sharpness])
    values = np.array([v for _, v, _ in run.sharpness], np.float64)  # (log steps, members)
    limits = np.array([np.nan * np.ones(len(v)) if lim is None else lim
                       for _, v, lim in run.sharpness], np.float64)  # fmt: skip
    alive = steps_[:, None] < np.where(run.diverged_at > 0, run.diverged_at, np.inf)[None]
    values = np.where(alive, values, np.nan)
    points = run.board.points or {"": [0]}
    curves = {}
    with warnings.catch_warnings():  # a step where none was left (or no limit): NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        for point, indices in points.items():
            v = values[:, indices]
            curves[point] = (steps_, np.nanmean(v, 1), np.nanmin(v, 1), np.nanmax(v, 1),
                             np.nanmean(limits[:, indices], 1))  # fmt: skip
    return curves


def sharpness_picture(curves: dict[str, tuple]) -> np.ndarray:
    """Sharpness over training, a line per point (its band: min to max over
    seeds), each point's limit 2/eta dashed in its colour."""
    series, x = [], next(iter(curves.values()))[0]
    for i, (point, (_, mean, low, high, limit)) in enumerate(curves.items()):
        many = not np.allclose(low, high, equal_nan=True)
        name = point or "sharpness"
        series.append(pictures.Series(mean, name, low if many else None, high if many else None,
                                      color=i))  # fmt: skip
        if np.isfinite(limit).any():
            series.append(pictures.Series(limit, "limit 2/eta" if not point else "", dashed=True,
                                          color=i))  # fmt: skip
    return pictures.chart(x, series, "sharpness (solid) and its limit (dashed)", "step")


def point_summary(run: Run, point: str) -> dict[str, float]:
    """A point's aggregate scalars (last values) and its median steps to solve."""
    indices = run.board.points[point]
    if run.solvable:
        at = run.solved_at[indices]
        if (at > 0).any():
            median = {"steps_to_solve/median": float(np.median(at[at > 0]))}
            run.board.aggregate_scalars(run.step, point, median)
    prefix = os.path.join(point, "aggregate/") if point else "aggregate/"
    return {k[len(prefix) :]: v for k, v in run.board.final.items() if k.startswith(prefix)}


def headline(metrics: dict[str, float]) -> str:
    """'loss 0.0123  accuracy 1.000' (mse instead of accuracy for a regression)."""
    if "accuracy" in metrics:
        return f"loss {metrics['loss']:.4f}  accuracy {metrics['accuracy']:.3f}"
    return f"loss {metrics['loss']:.4f}  mse {metrics['mse']:.4f}"


def spread(metrics: dict[str, np.ndarray], solvable: bool) -> str:
    """One point's members in a line: the loss's mean and range, how many solved."""
    loss = metrics["loss"]
    text = f"loss mean {np.mean(loss):.4f} (min {np.min(loss):.4f}, max {np.max(loss):.4f})"
    if "accuracy" in metrics:
        accuracy = metrics["accuracy"]
        text += f"  accuracy mean {np.mean(accuracy):.3f}"
        if solvable:
            text += f"  solved {int(np.sum(accuracy == 1))}/{len(accuracy)}"
    return text


def speed(run: Run, step: int, steps_per_second: float) -> str:
    """'1,234 steps/s' for full batches; epoch, examples/s and ETA for minibatches."""
    batches = run.program.batches
    if batches.full:
        return f"{steps_per_second:,.0f} steps/s"
    left = round((run.config.num_steps - step) / steps_per_second)
    return (
        f"epoch {step / batches.steps_per_epoch:.2f}  "
        f"{steps_per_second * batches.size:,.0f} examples/s  ETA {left // 60}m{left % 60:02d}s"
    )


def checkpointer(run_dir: str, group) -> checkpoints.Checkpointer:
    """A group's checkpoints: RUN_DIR/checkpoints, or .../checkpoints/GROUP."""
    return checkpoints.Checkpointer(run_dir, group.config.keep_checkpoints, group.name)
