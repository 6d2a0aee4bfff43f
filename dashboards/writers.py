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

import numpy as np

from dashboards import summaries

# The scalars whose median over a point's seeds is written too (the results
# tables, the sweep charts and HPARAMS read it). A median costs a partial
# sort: of 100,000 members, about 1.5 ms each, the most of a log step's work.
MEDIAN_OF = ("loss", "accuracy", "mse", "classification_error", "regularization",
             "zero_fraction", "sharpness")  # fmt: skip


def _median_of(tag: str) -> bool:
    return tag.rsplit("/", 1)[-1] in MEDIAN_OF


def summarize(values: np.ndarray, median: bool = True) -> dict[str, float]:
    """{'mean', 'std', 'min', 'max', 'median', 'lower', 'upper'} of one scalar
    over members (no median if not `median`); lower and upper are mean -+ std,
    the band CUSTOM SCALARS draws."""
    values = np.asarray(values, np.float64)
    mean, std = float(np.mean(values)), float(np.std(values))
    stats = {"mean": mean, "std": std, "min": float(np.min(values)), "max": float(np.max(values))}
    if median:
        stats["median"] = float(np.median(values))
    return stats | {"lower": mean - std, "upper": mean + std}


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
                stats_over=None) -> None:  # fmt: skip
        """Each `values[tag][m]` into member m's run; their statistics per point.

        `which`: a mask of the members to write (all if None); the
        statistics are over those, or over `stats_over` (a mask) if given.
        """
        values = {tag: np.asarray(v, np.float64) for tag, v in values.items()}
        which = np.ones(len(self.names), bool) if which is None else np.asarray(which)
        over = which if stats_over is None else np.asarray(stats_over)
        for m, writer in enumerate(self.members):
            if which[m]:
                scalars = {tag: float(v[m]) for tag, v in values.items()}
                writer.write_scalars(step, scalars)
                self.final.update({self._key(self.names[m], t): v for t, v in scalars.items()})
        for point, indices in self.points.items():
            indices = indices[over[indices]]
            if len(indices):
                stats = {
                    f"{tag}/{stat}": number
                    for tag, v in values.items()
                    for stat, number in summarize(v[indices], _median_of(tag)).items()
                }
                self.aggregate_scalars(step, point, stats)

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
