"""Many runs in one compiled program: seeds and numeric hyperparameters.

    python train.py --config=configs/xor.py --config.num_seeds=256
    python train.py --config=configs/xor.py --config.num_seeds=64 \\
        --config.sweep.optimizer.learning_rate='(0.01, 0.1, 1.0)'

`num_seeds=N` trains N copies that differ only by seed (initialisation and
minibatch order); `config.sweep.<field> = (v1, v2, ...)` sweeps a field.
Every point of the cartesian product of the swept values is trained with
every seed; each (point, seed) is a MEMBER, exactly the single run with
that seed and those values, up to float reassociation.

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

A sweep is not checkpointed (each chunk is seconds of work): interrupted,
it starts over.
"""

import ast
import itertools
import os
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

import data
import nets
from dashboards import summaries
from plumbing.failures import UserError
from training import losses, optimizers, parallel, steps

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


def check_config(config: ml_collections.ConfigDict) -> None:
    """What a sweep cannot do, before any work."""
    if config.num_seeds < 1:
        raise UserError(f"num_seeds must be >= 1, got {config.num_seeds}")
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


def point_name(point: dict, spec: dict) -> str:
    """{'optimizer.learning_rate': 0.1} -> 'learning_rate=0.1' (full keys if ambiguous)."""
    short = {k: k.split(".")[-1] for k in spec}
    if len(set(short.values())) < len(short):
        short = {k: k for k in spec}

    def text(value):
        if isinstance(value, (tuple, list)):
            return "x".join(text(v) for v in value) or "none"
        return str(value)

    return ",".join(f"{short[k]}={text(v)}" for k, v in point.items())


def run(config: ml_collections.ConfigDict, run_dir: str, console=print) -> dict:
    """Trains every member in `run_dir`; returns the final metrics.

    Without a sweep: the aggregate over the seeds, per metric
    `train/loss/mean`, `.../std`, `.../min`, `.../max`, `solved` (fraction
    at 100% train accuracy), and `members`: {seed: {"train/loss": ...}}.
    With a sweep: {"points": {point name: that dict}}.
    """
    check_config(config)
    aggregate_dir = os.path.join(run_dir, "aggregate")
    if os.path.isdir(aggregate_dir) and summaries.event_files(aggregate_dir):
        console(f"{run_dir} is finished; --new_run starts another run")
        return {}
    summaries.preload()
    spec = sweep_spec(config)
    structural = {k: v for k, v in spec.items() if k not in VMAPPED}
    vmapped = {k: v for k, v in spec.items() if k in VMAPPED}
    results = {}
    for fixed in _product(structural):  # one compiled program each
        group = with_values(config, fixed)
        points = [{**fixed, **numbers} for numbers in _product(vmapped)]
        names = [point_name(p, spec) for p in points]
        results.update(_run_group(group, run_dir, points, names, list(vmapped), console))
    if not spec:
        return results[""]
    table = results_table(results)
    aggregate = parallel.writer(aggregate_dir)
    try:
        aggregate.text("config", summaries.config_markdown(plain(config)))
        aggregate.text("results", table, config.num_steps)
    finally:
        aggregate.close()
    console(f"{table}\nRuns written to {run_dir}")
    return {"points": results}


class Members(NamedTuple):
    """One compiled program's members, ready to train (see `build_members`)."""

    state: steps.TrainState  # every leaf stacked: (points x seeds, ...)
    keys: jax.Array  # each member's seed key data
    train_data: tuple  # (x, y), shared by all members
    eval_data: tuple
    loop: Callable  # (state, keys, train_data, num_steps) -> (state, metrics)
    evaluate: Callable  # (params, eval_data) -> (metrics, confusion), per member
    program: jax.stages.Compiled  # the loop's XLA program (the loop, or one step)


def build_members(config, points: list[dict], vmapped: list[str]) -> Members:
    """Initialises and compiles `points` x `config.num_seeds` members.

    Member m is point m // num_seeds with seed `config.seed + m % num_seeds`;
    the `vmapped` fields of its point are set in its optimizer state.
    """
    seeds = [config.seed + k for k in range(config.num_seeds)]
    dataset = data.load_dataset(config.data)
    if config.batch_size > len(dataset.x_train):
        raise UserError(f"batch_size {config.batch_size} is larger than the training set")
    num_outputs = (
        dataset.y_train.shape[-1]
        if dataset.is_regression
        else losses.num_outputs(config.loss, dataset.num_classes)
    )
    shape = dataset.x_train.shape[1:]
    graphdef = nnx.split(nets.build_model(config.model, shape, num_outputs, nnx.Rngs(0)))[0]
    optimizer, learning_rate = optimizers.make_optimizer(config.optimizer, config.num_steps)
    loss_fn = losses.get_loss(config.loss, config.loss_power)
    # Members are split over the devices (parallel.py), each whole on one.
    mesh = parallel.mesh()
    if mesh.size > 1:
        parallel.check_divides(
            len(seeds) * len(points), "the members (points x seeds)",
            "choose --config.num_seeds so that points x seeds is", mesh,
        )  # fmt: skip
    members = parallel.split(mesh)
    member_seeds = parallel.put(np.array(seeds * len(points)), members)
    keys = jax.jit(
        jax.vmap(lambda s: jax.random.key_data(jax.random.key(s))), out_shardings=members
    )(member_seeds)
    numbers = {
        key.split(".")[-1]: np.array([point[key] for point in points for _ in seeds])
        for key in vmapped
    }
    numbers = parallel.put(numbers, members)

    def init_state(key_data, numbers):
        key = jax.random.wrap_key_data(key_data)
        model = nets.build_model(  # as train.py: the params key is fold_in(seed key, 0)
            config.model, shape, num_outputs, nnx.Rngs(params=jax.random.fold_in(key, 0))
        )
        params = nnx.split(model, nnx.Param)[1]
        opt_state = optimizers.with_hyperparameters(optimizer.init(params), numbers)
        return steps.TrainState(step=jnp.array(0), params=params, opt_state=opt_state)

    state = jax.jit(jax.vmap(init_state), out_shardings=members)(keys, numbers)
    train_step = steps.make_train_step(graphdef, loss_fn, optimizer, learning_rate)
    everywhere = parallel.replicated(mesh)
    train_data = parallel.put((dataset.x_train, dataset.y_train), everywhere)
    eval_data = parallel.put((dataset.x_eval, dataset.y_eval), everywhere)
    loop, program = _compile_member_loop(train_step, config, state, keys, train_data)
    evaluate = steps.make_evaluate(
        graphdef, loss_fn, len(dataset.y_eval), dataset.num_classes,
        config.eval_batch_size, summed_loss=config.loss == "sse",
    )  # fmt: skip
    evaluate = jax.jit(jax.vmap(evaluate, in_axes=(0, None)))
    evaluate = evaluate.lower(state.params, eval_data).compile(steps.compiler_options())
    return Members(state, keys, train_data, eval_data, loop, evaluate, program)


def _run_group(config, run_dir, points, names, vmapped, console) -> dict[str, dict]:
    """Trains points x seeds members of one program; returns {name: summary}."""
    n, p = config.num_seeds, len(points)
    seeds = [config.seed + k for k in range(n)]
    start = time.perf_counter()
    state, keys, train_data, eval_data, loop, evaluate, _ = build_members(config, points, vmapped)
    what = f"{p} points x {n} seeds" if names[0] else f"{n} members"
    console(f"{run_dir}: {what}, compiled in {time.perf_counter() - start:.2f} s")

    point_dirs = [os.path.join(run_dir, name) for name in names]
    writers = []
    for point, point_dir in zip(points, point_dirs, strict=True):
        for seed in seeds:
            member_dir = os.path.join(point_dir, f"seed={seed}")
            if summaries.event_files(member_dir):  # an interrupted attempt: start over
                summaries.cut_events_after(member_dir, -1)
            os.makedirs(member_dir, exist_ok=True)
            writer = parallel.writer(member_dir)
            member = plain(with_values(config, point))
            member["seed"], member["num_seeds"] = seed, 1  # what the single run would have
            writer.hparams(member)
            writers.append(writer)
    aggregates = []
    for point, point_dir in zip(points, point_dirs, strict=True):
        os.makedirs(os.path.join(point_dir, "aggregate"), exist_ok=True)
        aggregate = parallel.writer(os.path.join(point_dir, "aggregate"))
        aggregate_config = plain(with_values(config, point))
        aggregate.hparams(aggregate_config)
        aggregate.text("config", summaries.config_markdown(aggregate_config))
        aggregates.append(aggregate)

    final: dict[str, np.ndarray] = {}  # tag -> (p * n,) values
    # Solved = 100% accuracy on the whole training set, which a full-batch
    # step measures; a minibatch's accuracy says nothing of the kind.
    solvable = config.batch_size == 0 and config.data.name not in data.REGRESSIONS
    solved_at = np.full(p * n, -1)  # first log step at 100% train accuracy, per member

    def of_point(values, i):
        return values[i * n : (i + 1) * n]

    def log(step, prefix, metrics):
        metrics = {f"{prefix}/{k}": np.asarray(v) for k, v in metrics.items()}
        for m, writer in enumerate(writers):
            writer.scalars(step, {tag: float(v[m]) for tag, v in metrics.items()})
        for i, aggregate in enumerate(aggregates):
            aggregate.scalars(step, summarize({t: of_point(v, i) for t, v in metrics.items()}))
        final.update(metrics)

    log(0, "eval", jax.device_get(evaluate(state.params, eval_data)[0]))
    step, seconds = 0, 0.0
    cadences = (config.log_every, config.eval_every)
    width = len(str(config.num_steps))
    results = {}
    try:
        while step < config.num_steps:
            target = min(config.num_steps, *((step // c + 1) * c for c in cadences))
            chunk_start = time.perf_counter()
            state, metrics = loop(state, keys, train_data, target - step)
            metrics = jax.device_get(metrics)
            seconds += time.perf_counter() - chunk_start
            step = target
            if step % config.log_every == 0 or step == config.num_steps:
                log(step, "train", metrics)
                if solvable:
                    solved = final["train/accuracy"] == 1
                    solved_at[(solved_at < 0) & solved] = step
                    for i, aggregate in enumerate(aggregates):
                        aggregate.scalars(step, {"solved": float(np.mean(of_point(solved, i)))})
                for writer in [*writers, *aggregates]:
                    writer.flush()
                for i, name in enumerate(names):
                    where = f"  {name}" if name else ""
                    point_final = {t: of_point(v, i) for t, v in final.items()}
                    console(f"step {step:>{width}}{where}  {_spread(point_final, solvable)}")
            if step % config.eval_every == 0 or step == config.num_steps:
                log(step, "eval", jax.device_get(evaluate(state.params, eval_data)[0]))
        for i, (name, aggregate) in enumerate(zip(names, aggregates, strict=True)):
            point_final = {t: of_point(v, i) for t, v in final.items()}
            summary = summarize(point_final)
            if solvable:
                summary["solved"] = float(np.mean(point_final["train/accuracy"] == 1))
                at = of_point(solved_at, i)
                if (at > 0).any():
                    summary["steps_to_solve/median"] = float(np.median(at[at > 0]))
            aggregate.text("results", summary_table(summary), step)
            summary["members"] = {
                seed: {tag: float(v[k]) for tag, v in point_final.items()}
                for k, seed in enumerate(seeds)
            }
            results[name] = summary
    finally:
        for writer in [*writers, *aggregates]:
            writer.close()
    rate = p * n * config.num_steps / max(seconds, 1e-9)
    if not names[0]:
        console(summary_table(results[""]))
    console(
        f"{p * n} members x {config.num_steps} steps in {seconds:.2f} s: "
        f"{rate:,.0f} member-steps/s. Runs written to {run_dir}"
    )
    return results


def _compile_member_loop(train_step, config, state, keys, train_data):
    """`(state, keys, (x, y), num_steps) -> (state, metrics)` for all members at once.

    Fused (a vmapped `steps.make_train_loop`) wherever that is fast. For
    convolutions on CPU, one compiled step per call, as train.py does
    (steps.compile_train_loop says why), with the members unrolled in it:
    its compile time grows with their number.
    """
    n_train = len(train_data[1])

    def member_batches(key_data):  # as train.py: minibatch order from fold_in(seed key, 1)
        key = jax.random.fold_in(jax.random.wrap_key_data(key_data), 1)
        return steps.Batches(n_train, config.batch_size, key)

    def member_loop(state, key_data, dataset, num_steps):
        loop = steps.make_train_loop(train_step, member_batches(key_data), stop_at_nan=False)
        return loop(state, dataset, num_steps)

    one_state = jax.tree.map(lambda a: a[0], state)
    first_batch = jax.tree.map(lambda a: a[: member_batches(keys[0]).size], train_data)
    if jax.default_backend() != "cpu" or not steps.uses_convolutions(
        train_step, one_state, first_batch
    ):
        loop = jax.jit(jax.vmap(member_loop, in_axes=(0, 0, None, None)))
        loop = loop.lower(state, keys, train_data, 0).compile(steps.compiler_options())
        return loop, loop

    batches = member_batches(keys[0])  # its take() is the same for every member
    orders = jax.jit(jax.vmap(lambda k, s: member_batches(k).order(s), in_axes=(0, None)))

    def one_step(state, dataset, order):
        return train_step(state, batches.take(dataset, order, state.step))

    order = orders(keys, 0)

    # Not vmap: over the members' kernels, a convolution becomes a grouped
    # one, which XLA:CPU runs 3x slower than the members one by one.
    def step_all(state, dataset, order):
        each = [
            one_step(jax.tree.map(lambda a: a[m], state), dataset, order[m])  # noqa: B023
            for m in range(len(keys))
        ]
        return jax.tree.map(lambda *members: jnp.stack(members), *each)

    step_all = jax.jit(step_all)
    step_all = step_all.lower(state, train_data, order).compile(steps.compiler_options())

    def loop(state, keys, dataset, num_steps):
        first = int(state.step[0])
        order = orders(keys, first)
        metrics = None
        for s in range(first, first + int(num_steps)):
            if not batches.full and s % batches.steps_per_epoch == 0 and s != first:
                order = orders(keys, s)
            state, metrics = step_all(state, dataset, order)
        return state, metrics

    return loop, step_all


def summarize(metrics: dict[str, np.ndarray]) -> dict[str, float]:
    """{'train/loss/mean': ..., '/std', '/min', '/max'} over the members."""
    out = {}
    for tag, values in metrics.items():
        values = np.asarray(values, np.float64)
        out.update({
            f"{tag}/mean": float(np.mean(values)), f"{tag}/std": float(np.std(values)),
            f"{tag}/min": float(np.min(values)), f"{tag}/max": float(np.max(values)),
        })  # fmt: skip
    return out


def _spread(final: dict[str, np.ndarray], solvable: bool) -> str:
    loss = final["train/loss"]
    text = f"loss mean {np.mean(loss):.4f} (min {np.min(loss):.4f}, max {np.max(loss):.4f})"
    if "train/accuracy" in final:
        accuracy = final["train/accuracy"]
        text += f"  accuracy mean {np.mean(accuracy):.3f}"
        if solvable:
            text += f"  solved {int(np.sum(accuracy == 1))}/{len(accuracy)}"
    return text


def summary_table(summary: dict[str, float]) -> str:
    """Markdown: one row per metric (mean, std, min, max), then `solved`."""
    names = sorted({k.rsplit("/", 1)[0] for k in summary if k.count("/") >= 2})
    names = [m for m in names if m.split("/")[1] in ("loss", "accuracy", "mse")]
    rows = ["| metric | mean | std | min | max |", "|---|---|---|---|---|"]
    for m in names:
        stats = [f"{summary[f'{m}/{s}']:.4f}" for s in ("mean", "std", "min", "max")]
        rows.append(f"| {m} | {' | '.join(stats)} |")
    if "solved" in summary:
        rows.append(f"| solved (100% train accuracy) | {summary['solved']:.3f} | | | |")
    if "steps_to_solve/median" in summary:
        median = summary["steps_to_solve/median"]
        rows.append(f"| steps to solve (first log step at 100%) | median {median:.0f} | | | |")
    return "\n".join(rows)


def results_table(results: dict[str, dict]) -> str:
    """Markdown: one row per point, means over its seeds, solved and steps to solve."""
    columns = ["train/loss", "train/accuracy", "eval/loss", "eval/accuracy"]
    columns = [c for c in columns if any(f"{c}/mean" in s for s in results.values())]
    header = ["point", *columns, "solved", "steps to solve (median)"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, summary in results.items():
        cells = [name] + [f"{summary[f'{c}/mean']:.4f}" for c in columns]
        cells.append(f"{summary['solved']:.3f}" if "solved" in summary else "")
        median = summary.get("steps_to_solve/median")
        cells.append(f"{median:.0f}" if median is not None else "")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
