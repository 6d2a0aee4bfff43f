"""Many runs in one compiled program: seeds and numeric hyperparameters.

    python train.py --config=configs/xor.py --config.num_seeds=256
    python train.py --config=configs/xor.py --config.num_seeds=64 \\
        --config.sweep.optimizer.learning_rate='(0.01, 0.1, 1.0)'

`num_seeds=N` trains N copies that differ only by seed (initialisation and
minibatch order); `config.sweep.<field> = (v1, v2, ...)` sweeps a field.
Every point of the cartesian product of the swept values is trained with
every seed; each (point, seed) is a MEMBER, exactly the single run with
that seed and those values, up to float reassociation. (With `split_step`
>= 0 the seeds come in pairs, and the second of a pair starts from the
first's weights and minibatches: it is a run no single run reproduces;
training/program.py.)

Members are stacked on a leading axis and the fused training loop is
`jax.vmap`ped over it, so they train in one compiled call per chunk. That
works for the numbers the optimizer holds in its state
(`optimizers.HYPERPARAMETERS`: learning rate, momentum, b1, b2, weight
decay, injected with `optax.inject_hyperparams`). Any other field changes
the program itself (an activation, hidden sizes, a loss, a dataset): each
of its values gets its own compiled program, one after another in this
process, each with all its vmapped members.

Written to TensorBoard, under the run directory:
- `POINT/seed=K`, one run per member, with its hparams: every member is its
  own row in HPARAMS (POINT is e.g. `learning_rate=0.1`; no sweep, no POINT);
- `POINT/aggregate`: the mean, std, min and max over the seeds of every
  metric (`train/loss/mean`, ...), `solved` (the fraction at 100% train
  accuracy), and a TEXT table with the median steps to solve;
- `aggregate`: the TEXT `results` table, one row per point.

Every member is trained by the same loop as a single run (train.py): it
is checkpointed, resumed, pictured and checked for divergence the same way.
"""

import ast
import contextlib
import itertools
import json
import os
from typing import NamedTuple

import ml_collections

from dashboards import summaries
from plumbing import command_line
from plumbing.failures import UserError
from training import optimizers

# Swept inside one program; every other field needs a program per value.
VMAPPED = tuple(f"optimizer.{name}" for name in optimizers.HYPERPARAMETERS)


def sweep_spec(config: ml_collections.ConfigDict) -> dict[str, tuple]:
    """{'optimizer.learning_rate': (0.01, 0.1)}: the swept fields and values.

    Raises UserError for a field the config lacks, a value that is not a
    non-empty tuple, or a value of the wrong type for its field.
    """
    spec: dict[str, tuple] = {}

    def walk(section, prefix):
        for key, value in section.items():
            if isinstance(value, ml_collections.ConfigDict):
                walk(value, f"{prefix}{key}.")
            elif value is not None:
                spec[prefix + key] = _values(prefix + key, value)

    walk(config.get("sweep") or {}, "")
    for key, values in spec.items():
        for value in values:
            try:
                with_values(config, {key: value})
            except (TypeError, ValueError) as e:
                raise UserError(f"sweep.{key}: {value!r} does not fit the field: {e}") from None
    return spec


def _values(key: str, value) -> tuple:
    """A tuple of values from what the config or the command line gave."""
    if isinstance(value, str):  # --config.sweep.model.activation='(relu, tanh)'
        text = value.strip()
        if not (text.startswith("(") and text.endswith(")")):
            raise UserError(f"sweep.{key} must be a tuple of values, e.g. '(a, b)', got {value!r}")
        value = tuple(_literal(v.strip()) for v in text[1:-1].split(",") if v.strip())
    if not isinstance(value, (tuple, list)):
        raise UserError(f"sweep.{key} must be a tuple of values, e.g. '(0.01, 0.1)', got {value!r}")
    if not value:
        raise UserError(f"sweep.{key} is empty: give at least one value, e.g. '(0.01, 0.1)'")
    return tuple(value)


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare name: relu


def with_values(config: ml_collections.ConfigDict, values: dict) -> ml_collections.ConfigDict:
    """A copy of `config` with `values` ({'model.activation': 'tanh'}) set, unswept."""
    copy = ml_collections.ConfigDict(config.to_dict())
    if "sweep" in copy:
        del copy["sweep"]
    for key, value in values.items():
        *path, last = key.split(".")
        section = copy
        for part in path:
            section = section.get(part)
            if not isinstance(section, ml_collections.ConfigDict):
                raise UserError(f"sweep.{key}: the config has no field {key!r}")
        if last not in section or isinstance(section[last], ml_collections.ConfigDict):
            raise UserError(f"sweep.{key}: the config has no field {key!r}")
        if isinstance(section[last], float) and isinstance(value, int):
            value = float(value)
        section[last] = value  # ConfigDict refuses a value of another type
    return copy


def plain(config: ml_collections.ConfigDict) -> dict:
    """`config` as a dict, with only the swept fields of its sweep section."""
    out = config.to_dict()
    if "sweep" in out:
        spec = {k: str(v) for k, v in sweep_spec(config).items()}
        out.pop("sweep")
        if spec:
            out["sweep"] = spec
    return out


def point_configs(config: ml_collections.ConfigDict) -> list[ml_collections.ConfigDict]:
    """One config per point of the sweep (just `config` without a sweep)."""
    spec = sweep_spec(config)
    return [with_values(config, point) for point in _product(spec)] if spec else [config]


def _product(spec: dict[str, tuple]) -> list[dict]:
    return [dict(zip(spec, values, strict=True)) for values in itertools.product(*spec.values())]


def num_members(config: ml_collections.ConfigDict) -> int:
    """Points x seeds: how many networks the run trains."""
    return config.num_seeds * len(point_configs(config))


def writes_member_runs(config: ml_collections.ConfigDict) -> bool:
    """Whether every member gets its own TensorBoard run: up to
    `max_member_runs` members (no TensorBoard lists tens of thousands of
    runs). Above it only the aggregates are written; they, the results table
    and train_and_evaluate's summary still cover every member."""
    return num_members(config) <= config.max_member_runs


# HPARAMS' columns: these fields always, and any other that a run being
# compared sets away from configs/base.py or that differs between the runs;
# never one that only says how a run is logged or run (NOT_HPARAMS).
KEY_HPARAMS = ("data.name", "model.name", "model.hidden_sizes", "model.activation", "loss",
               "optimizer.name", "optimizer.learning_rate", "num_steps", "batch_size")  # fmt: skip
NOT_HPARAMS = ("checkpoint_every", "embedding_examples", "eval_batch_size", "eval_every",
               "keep_checkpoints", "layer_stats", "log_every", "max_member_runs", "num_seeds",
               "members_per_program", "picture_every", "probes.", "sweep.",
               "best_metric", "target_eval_loss")  # fmt: skip


def hparam_columns(runs: list[dict], run_dir: str) -> list[str]:
    """The fields HPARAMS shows, over `runs` (plain configs, as `plain` gives
    them: every point of a sweep) and the runs beside `run_dir` in its
    experiment's folder (their config.json): the rows TensorBoard compares
    when opened there."""
    from configs import base

    default = summaries.flatten(base.get_config().to_dict())
    folder = os.path.dirname(os.path.abspath(run_dir))
    beside = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name, "config.json")
        if os.path.join(folder, name) != os.path.abspath(run_dir) and os.path.isfile(path):
            with contextlib.suppress(OSError, ValueError):
                beside.append(read_config_json(path))
    beside = [run for run in beside if isinstance(run, dict)]  # (not a config: left out)
    flat = [summaries.flatten(run) for run in runs + beside]
    fields = dict.fromkeys(k for run in flat for k in run)  # in the config's order
    columns = []
    for field in fields:
        if field.startswith(NOT_HPARAMS):
            continue
        values = [run[field] for run in flat if field in run]
        if field in KEY_HPARAMS or len(set(values)) > 1 or values[0] != default.get(field):
            columns.append(field)
    return columns


def read_config_json(path: str):
    """A run's config.json (as train.py writes it), its lists the tuples they
    were (a shape, a sweep's values): as a dict."""

    def with_tuples(pairs: list) -> dict:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in pairs}

    with open(path) as f:
        return json.load(f, object_pairs_hook=with_tuples)


def check_config(config: ml_collections.ConfigDict) -> None:
    """What a sweep cannot do, before any work."""
    if config.num_seeds < 1:
        raise UserError(f"num_seeds must be >= 1, got {config.num_seeds}")
    if config.max_member_runs < 1:
        raise UserError(f"max_member_runs must be >= 1, got {config.max_member_runs}")
    split, _, metric = config.best_metric.partition("/")
    if split not in ("train", "eval") or metric not in ("loss", "accuracy", "mse"):
        raise UserError(
            f"best_metric must be train/ or eval/ then loss, accuracy or mse, "
            f"got {config.best_metric!r}"
        )
    if config.members_per_program < 0:
        raise UserError(
            f"members_per_program must be >= 0 (0: as many as the device's memory holds), "
            f"got {config.members_per_program}"
        )
    spec = sweep_spec(config)
    for key in spec:
        if key in VMAPPED:
            name = key.split(".")[-1]
            optimizer_names = spec.get("optimizer.name", (config.optimizer.name,))
            if not any(name in optimizers.USES.get(o, ()) for o in optimizer_names):
                raise UserError(
                    f"sweep.{key}: optimizer {config.optimizer.name!r} does not use {name}, "
                    "so every point would train the same members"
                )


class Member(NamedTuple):
    """One network of a run: exactly the single run of `config` (but the
    second seed of a `split_step` pair: see the module docstring)."""

    name: str  # its run directory below the run's: '' alone, 'seed=1', 'lr=0.1/seed=1'
    point: str  # the point it belongs to ('' without a sweep)
    seed: int
    point_config: ml_collections.ConfigDict  # its point's values, no sweep (shared)

    @property
    def config(self) -> ml_collections.ConfigDict:
        """Its own config: its point's, with its seed (num_seeds 1). A copy
        made on each call: a sweep of 100,000 members shares one per point."""
        config = ml_collections.ConfigDict(self.point_config.to_dict())
        config.seed, config.num_seeds = self.seed, 1
        return config


class Group(NamedTuple):
    """Members that train in one compiled program (`training.program.build`)."""

    name: str  # the structural values that set it apart ('' if only one group)
    config: ml_collections.ConfigDict  # the run's config with those values set
    members: list[Member]
    vmapped: list[str]  # swept fields set per member in its optimizer state

    @property
    def single(self) -> bool:
        """A single run (one member, named ''), not a sweep (even of one seed)."""
        return not self.members[0].name


def groups(config: ml_collections.ConfigDict) -> list[Group]:
    """The programs a run trains, one after another, and their members.

    A single run is one group of one member, named ''. `num_seeds=N` makes
    members 'seed=K'; a sweep, 'POINT/seed=K', every point with every seed.
    Structural fields (anything the optimizer state does not hold) split the
    points into groups, one program each.
    """
    spec = sweep_spec(config)
    structural = {k: v for k, v in spec.items() if k not in VMAPPED}
    vmapped = {k: v for k, v in spec.items() if k in VMAPPED}
    single = config.num_seeds == 1 and not spec
    out = []
    for fixed in _product(structural):
        members = []
        for values in _product(vmapped):
            point = {**fixed, **values}
            name = command_line.point_name(point, spec)
            point_config = with_values(config, point)
            for seed in range(config.seed, config.seed + config.num_seeds):
                path = "" if single else os.path.join(name, f"seed={seed}")
                members.append(Member(path, name, seed, point_config))
        group_name = command_line.point_name(fixed, spec)
        out.append(Group(group_name, with_values(config, fixed), members, list(vmapped)))
    return out


def summary_table(summary: dict[str, float], seeds: int) -> str:
    """Markdown: one row per metric (median, mean, std, min, max over the
    point's `seeds`; its value if it has one), then `solved` and the rest."""
    names = sorted({k.rsplit("/", 1)[0] for k in summary if k.count("/") >= 2})
    names = [m for m in names if m.split("/")[1] in ("loss", "accuracy", "mse")]
    stats = ("median", "mean", "std", "min", "max") if seeds > 1 else ("median",)
    header = (
        f"| metric (over {seeds} seeds) | {' | '.join(stats)} |"
        if seeds > 1
        else "| metric | value |"
    )
    rows = [header, "|---|" + "---|" * len(stats)]
    blank = " |" * (len(stats) - 1)
    for m in names:
        values = [f"{summary[m + '/' + s]:.4f}" for s in stats]
        rows.append(f"| {m} | {' | '.join(values)} |")
    if "solved" in summary:
        solved = _solved(summary, seeds)
        rows.append(f"| solved (100% train accuracy) | {solved} |{blank}")
    for name in ("diverged", "unstable"):
        if name in summary:
            rows.append(f"| {name} ({WHAT[name]}) | {summary[name]:.0f} |{blank}")
    for key, label, form in SUMMARY_ROWS:
        if key == "connectivity/connected" and key in summary:  # with its interval
            low, high = summary[key + "/low95"], summary[key + "/high95"]
            rows.append(f"| {label} | {summary[key]:.3f} ({low:.3f}-{high:.3f}) |{blank}")
        elif key in summary:
            rows.append(f"| {label} | {form.format(summary[key])} |{blank}")
    return "\n".join(rows)


WHAT = {"diverged": "NaN/Inf", "unstable": "train loss above twice its initial loss"}
# A point's results rows below its metrics, each from one of its aggregate
# scalars where it has it: (scalar, row label, number format).
SUMMARY_ROWS = (
    ("steps_to_solve/median", "steps to solve (first log step at 100%)", "{:.0f}"),
    ("connectivity/connected", "seed pairs linearly connected (eval error barrier <= 2%)", ""),
    ("connectivity/train_loss_barrier/median", "train loss barrier between seeds (median)",
     "{:.4f}"),
    ("eval/reached_target", "reached the target eval loss", "{:.3f}"),
    ("eval/steps_to_target/median", "steps to target (first eval at or below it)", "{:.0f}"),
    ("eval/noise_scale_at_target/median", "noise scale B_simple at the target", "{:.3g}"),
)  # fmt: skip


def _solved(summary: dict, seeds: int) -> str:
    """'0.562 (0.470-0.650)': the fraction and its 95% interval; 'yes' or 'no' for one seed."""
    if seeds == 1:
        return "yes" if summary["solved"] == 1 else "no"
    return f"{summary['solved']:.3f}{_interval(summary)}"


def _interval(summary: dict) -> str:
    """' (0.560-0.580)': the 95% interval of `solved` (writers.wilson_interval)."""
    if "solved/low95" not in summary:
        return ""
    return f" ({summary['solved/low95']:.3f}-{summary['solved/high95']:.3f})"


def results_table(final: dict[str, float], seeds: int, best=(None, ""), order=None,
                  asked: str = "") -> str:  # fmt: skip
    """Markdown: one row per point: the medians over its `seeds` (its values,
    for one), solved, diverged, unstable and steps to solve.

    `final`: train_and_evaluate's scalars ('POINT/aggregate/train/loss/median', ...);
    `best`: (a point to mark, the metric it is best by: sweep_charts.best_point),
    `asked` the config's best_metric (said, if the run does not log it);
    `order`: the points in the order of their rows (default: sorted by name).
    """
    points = sorted({k.split("/aggregate/")[0] for k in final if "/aggregate/" in k})
    if order is not None:
        points = sorted(points, key=list(order).index)
    columns = ["train/loss", "train/accuracy", "train/mse", "eval/loss", "eval/accuracy",
               "eval/mse", "train/regularization"]  # fmt: skip
    columns = [c for c in columns if any(f"{p}/aggregate/{c}/median" in final for p in points)]
    if "train/regularization" in columns:  # what L1 switched off
        columns.append("weights/zero_fraction")
    over = f"median of {seeds} seeds" if seeds > 1 else "one seed"
    header = [f"point ({over})", *columns, "solved", "diverged", "unstable", "steps to solve"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for point in points:
        summary = {k.split("/aggregate/", 1)[1]: v for k, v in final.items()
                   if k.startswith(f"{point}/aggregate/")}  # fmt: skip
        medians = [summary.get(f"{c}/median") for c in columns]  # none if every member diverged
        name = f"{point} (best)" if point == best[0] else point
        cells = [name] + ["" if m is None else f"{m:.4f}" for m in medians]
        cells.append(_solved(summary, seeds) if "solved" in summary else "")
        for count in ("diverged", "unstable"):
            cells.append(f"{summary[count]:.0f}" if count in summary else "")
        median = summary.get("steps_to_solve/median")
        cells.append(f"{median:.0f}" if median is not None else "")
        rows.append("| " + " | ".join(cells) + " |")
    if best[0] is not None:
        most = "highest" if best[1].endswith("accuracy") else "lowest"
        rows.append(f"\n(best): the {most} {best[1]}" + " (median over seeds)" * (seeds > 1))
        if asked and asked != best[1]:
            rows[-1] += f" ({asked}, the best_metric asked for, is not logged by this run)"
    return "\n".join(rows)
