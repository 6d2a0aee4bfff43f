"""The event files of one program's members and of their aggregates.

A single run writes into its run directory. A run of many members writes
one TensorBoard run per member (`seed=K`, or `POINT/seed=K`) and, per
point, an `aggregate` run with the mean, std, min and max over its seeds of
every scalar, and mean -+ std as `lower` and `upper`: CUSTOM SCALARS draws
them as a band (`summaries.seed_bands`). `Writers.scalars` takes each value
with a leading members axis and writes all of them; `final` keeps the latest value of every scalar
written through it (the metrics and aggregates; not the probes'), keyed
`RUN/TAG` as TensorBoard names it (`train/loss` for a single run,
`seed=1/train/loss`, `lr=0.1/aggregate/train/loss/mean`).
"""

import os
from collections.abc import Mapping

import jax
import numpy as np

from dashboards import statistics, summaries

# The scalars whose median over a point's seeds is written too (the results
# tables, the sweep charts and HPARAMS read it): it costs 32 counting passes
# over the seeds (dashboards/statistics.py).
MEDIAN_OF = ("loss", "accuracy", "mse", "classification_error", "regularization",
             "zero_fraction", "sharpness", "b_simple")  # fmt: skip


def _median_of(tag: str) -> bool:
    return tag.rsplit("/", 1)[-1] in MEDIAN_OF


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% (z = 1.96) Wilson score interval of a success rate: where the
    rate over infinitely many seeds lies, from `n` of them. Unlike p -+ 2 SE
    it stays inside [0, 1] and is right for 0 or n successes too."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(centre - half, 0.0)), float(min(centre + half, 1.0))


class Writers:
    """The SummaryWriters of a program's members (and of their points' aggregates) in `run_dir`.

    `members`: each with its `name` (its run below `run_dir`: '' for a single
    run) and `point` (training/sweeps.py's Member). `owner`: whether this
    process writes the files (in a multi-host run only process 0 does; the
    others' writers write nothing).
    """

    def __init__(self, run_dir: str, members, member_runs: bool = True, owner: bool = True):
        self.run_dir, self.owner = run_dir, owner
        self.names = [m.name for m in members]
        # Without member runs (a sweep above max_member_runs), only the aggregates.
        self.dirs = [os.path.join(run_dir, n) if n else run_dir for n in self.names] * member_runs
        self.points: dict[str, np.ndarray] = {}  # point -> its members' indices
        if self.names[0]:  # a sweep (a single run has no aggregate)
            points = np.array([member.point for member in members])
            for point in dict.fromkeys(points.tolist()):  # in the members' order
                self.points[point] = np.flatnonzero(points == point)
            blocks = np.arange(len(points))
            if len(points) % len(self.points) == 0:
                blocks = blocks.reshape(len(self.points), -1)
            if not np.array_equal(list(self.points.values()), blocks):
                raise ValueError("a sweep's members come point by point (sweeps.groups)")
        self.aggregate_dirs = {p: os.path.join(run_dir, p, "aggregate") for p in self.points}
        self.final: dict[str, float] = {}
        self.members: list = []  # a summaries.SummaryWriter per member
        self.aggregates: dict = {}  # and per point

    def open(self, start_step: int) -> None:
        """Opens the writers, after dropping what an earlier attempt wrote
        past `start_step` (every event, when starting from step 0).

        In a multi-host run only process 0 touches the files: the others'
        writers discard, and must not remove the events process 0 just began.
        """
        for log_dir in [*self.dirs, *self.aggregate_dirs.values()] if self.owner else []:
            if start_step:
                summaries.cut_events_after(log_dir, start_step)
            else:
                for path in summaries.event_files(log_dir):
                    os.remove(path)
        for log_dir in self.dirs:  # a failure leaves those opened for close()
            self.members.append(summaries.open_writer(log_dir, self.owner))
        for point, log_dir in self.aggregate_dirs.items():
            self.aggregates[point] = summaries.open_writer(log_dir, self.owner)

    @property
    def _writers(self) -> list:
        return [*self.members, *self.aggregates.values()]

    def _key(self, name: str, tag: str) -> str:
        return f"{name}/{tag}" if name else tag

    def scalars(self, step: int, values: Mapping[str, np.ndarray], which=None,
                stats_over=None) -> dict[str, dict[str, float]]:  # fmt: skip
        """Each `values[tag][m]` into member m's run; their statistics per point.

        `values`: arrays with a leading members axis, on the host or where
        they were computed (a device): only what is written comes over, the
        members' values if they have runs, else each point's statistics
        (`statistics.of_points`, computed there). `which`: a mask of the
        members to write (all if None); the statistics are over those, or
        over `stats_over` (a mask) if given. Returns each point's
        statistics as written ({point: {'TAG/STAT': number}}; a point
        with no member counted has none).
        """
        which = np.ones(len(self.names), bool) if which is None else np.asarray(which)
        over = which if stats_over is None else np.asarray(stats_over)
        if self.members:
            host = jax.device_get(dict(values))
            host = {tag: np.asarray(v, np.float64) for tag, v in host.items()}
        for m, writer in enumerate(self.members):
            if which[m]:
                scalars = {tag: float(v[m]) for tag, v in host.items()}
                writer.write_scalars(step, scalars)
                self.final.update({self._key(self.names[m], t): v for t, v in scalars.items()})
        if not self.points or not values:
            return {}
        median_of = tuple(tag for tag in values if _median_of(tag))
        stats = statistics.of_points(dict(values), over, len(self.points), median_of)
        written = {}
        for p, (point, indices) in enumerate(self.points.items()):
            if over[indices].any():
                written[point] = {
                    f"{tag}/{stat}": float(numbers[p])
                    for tag, each in stats.items()
                    for stat, numbers in each.items()
                }
                self.aggregate_scalars(step, point, written[point])
        return written

    def aggregate_scalars(self, step: int, point: str, scalars: Mapping[str, float]) -> None:
        self.aggregates[point].write_scalars(step, scalars)
        name = os.path.join(point, "aggregate") if point else "aggregate"
        self.final.update({f"{name}/{t}": float(v) for t, v in scalars.items()})

    def flush(self) -> None:
        for writer in self._writers:
            writer.flush()

    def close(self) -> None:
        """Closes every writer; raises the first failure after closing all."""
        error = None
        for writer in self._writers:
            try:
                writer.close()
            except Exception as e:  # noqa: BLE001  (close the rest, then raise)
                error = error or e
        if error is not None:
            raise error
