"""Many seeds in one compiled program: `--config.num_seeds=N`.

    python train.py --config=configs/xor.py --config.num_seeds=256

Trains N copies of the config that differ only by seed (initialisation and
minibatch order): member k is exactly the single run with seed
`config.seed + k`, up to float reassociation. Their states are stacked on a
leading axis and the fused training loop is `jax.vmap`ped over it, so all N
train in one compiled call per chunk.

Written to TensorBoard:
- `RUN/seed=K`, one run per member, with its hparams (seed K), train and
  eval scalars: every member is its own row in HPARAMS;
- `RUN/aggregate`: the mean, std, min and max over members of every
  metric (`train/loss/mean`, ...), `solved` (the fraction of members at
  100% train accuracy), and a TEXT table of the final numbers, with the
  median number of steps the solved members took (to the log step).

A sweep is not checkpointed (each chunk is seconds of work): interrupted,
it starts over.
"""

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

import data
import losses
import nets
import optimizers
import steps
import summaries
from registry import UserError


def check_config(config: ml_collections.ConfigDict) -> None:
    """What a sweep cannot do, before any work."""
    if config.num_seeds < 1:
        raise UserError(f"num_seeds must be >= 1, got {config.num_seeds}")


def _member_dirs(run_dir: str, seeds: list[int]) -> list[str]:
    return [os.path.join(run_dir, f"seed={s}") for s in seeds]


def run(config: ml_collections.ConfigDict, run_dir: str, console=print) -> dict[str, float]:
    """Trains `config.num_seeds` members in `run_dir`; returns the aggregate's final metrics.

    The returned dict holds, per metric, `train/loss/mean`, `.../std`,
    `.../min`, `.../max`, and `solved` (fraction at 100% train accuracy),
    plus `members`: {seed: {"train/loss": ..., ...}}.
    """
    check_config(config)
    n = config.num_seeds
    seeds = [config.seed + k for k in range(n)]
    aggregate_dir = os.path.join(run_dir, "aggregate")
    if os.path.isdir(aggregate_dir) and summaries.event_files(aggregate_dir):
        console(f"{run_dir} is finished; --new_run starts another run")
        return {}
    summaries.preload()
    start = time.perf_counter()
    dataset = data.load_dataset(config.data)
    if config.batch_size > len(dataset.x_train):
        raise UserError(f"batch_size {config.batch_size} is larger than the training set")
    num_outputs = (
        dataset.y_train.shape[-1]
        if dataset.is_regression
        else losses.num_outputs(config.loss, dataset.num_classes)
    )
    shape = dataset.x_train.shape[1:]

    def init(key):
        model = nets.build_model(config.model, shape, num_outputs, nnx.Rngs(params=key))
        return nnx.split(model, nnx.Param)[1]

    graphdef = nnx.split(nets.build_model(config.model, shape, num_outputs, nnx.Rngs(0)))[0]
    keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in seeds])
    optimizer, schedule = optimizers.make_optimizer(config.optimizer, config.num_steps)
    loss_fn = losses.get_loss(config.loss, config.loss_power)

    def init_state(key_data):
        key = jax.random.wrap_key_data(key_data)
        params = init(jax.random.fold_in(key, 0))  # as train.py: fold_in(seed key, 0)
        return steps.TrainState(step=jnp.array(0), params=params, opt_state=optimizer.init(params))

    state = jax.jit(jax.vmap(init_state))(keys)
    train_step = steps.make_train_step(graphdef, loss_fn, optimizer, schedule)
    n_train = len(dataset.x_train)

    def member_loop(state, key_data, dataset, num_steps):
        key = jax.random.fold_in(jax.random.wrap_key_data(key_data), 1)
        batches = steps.Batches(n_train, config.batch_size, key)
        return steps.make_train_loop(train_step, batches)(state, dataset, num_steps)

    train_data = jax.device_put((dataset.x_train, dataset.y_train))
    eval_data = jax.device_put((dataset.x_eval, dataset.y_eval))
    loop = jax.jit(jax.vmap(member_loop, in_axes=(0, 0, None, None)))
    loop = loop.lower(state, keys, train_data, 0).compile()
    evaluate = steps.make_evaluate(
        graphdef, loss_fn, len(dataset.y_eval), dataset.num_classes,
        config.eval_batch_size, summed_loss=config.loss == "sse",
    )  # fmt: skip
    evaluate = jax.jit(jax.vmap(evaluate, in_axes=(0, None)))
    evaluate = evaluate.lower(state.params, eval_data).compile()
    console(f"{run_dir}: {n} members, compiled in {time.perf_counter() - start:.2f} s")

    writers = []
    for seed, member_dir in zip(seeds, _member_dirs(run_dir, seeds), strict=True):
        os.makedirs(member_dir, exist_ok=True)
        writer = summaries.Writer(member_dir)
        member = config.to_dict()
        member["seed"], member["num_seeds"] = seed, 1  # what the single run would have
        writer.hparams(member)
        writers.append(writer)
    os.makedirs(aggregate_dir, exist_ok=True)
    aggregate = summaries.Writer(aggregate_dir)
    aggregate.hparams(config.to_dict())
    aggregate.text("config", summaries.config_markdown(config.to_dict()))

    final: dict[str, np.ndarray] = {}
    solved_at = np.full(n, -1)  # first log step at 100% train accuracy, per member

    def log(step, prefix, metrics):
        metrics = {f"{prefix}/{k}": np.asarray(v) for k, v in metrics.items()}
        for k, writer in enumerate(writers):
            writer.scalars(step, {tag: float(v[k]) for tag, v in metrics.items()})
        aggregate.scalars(step, summarize(metrics))
        final.update(metrics)

    log(0, "eval", jax.device_get(evaluate(state.params, eval_data)[0]))
    step, seconds = 0, 0.0
    cadences = (config.log_every, config.eval_every)
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
                if "train/accuracy" in final:
                    solved = final["train/accuracy"] == 1
                    solved_at[(solved_at < 0) & solved] = step
                    aggregate.scalars(step, {"solved": float(np.mean(solved))})
                for writer in [*writers, aggregate]:
                    writer.flush()
                console(f"step {step:>{len(str(config.num_steps))}}  {_spread(final)}")
            if step % config.eval_every == 0 or step == config.num_steps:
                log(step, "eval", jax.device_get(evaluate(state.params, eval_data)[0]))
        summary = summarize(final)
        if "train/accuracy" in final:
            summary["solved"] = float(np.mean(final["train/accuracy"] == 1))
            if (solved_at > 0).any():
                summary["steps_to_solve/median"] = float(np.median(solved_at[solved_at > 0]))
        table = summary_table(summary)
        aggregate.text("results", table, step)
    finally:
        for writer in [*writers, aggregate]:
            writer.close()
    rate = n * config.num_steps / max(seconds, 1e-9)
    console(
        f"{table}\n{n} members x {config.num_steps} steps in {seconds:.2f} s: "
        f"{rate:,.0f} member-steps/s. Runs written to {run_dir}"
    )
    summary["members"] = {
        seed: {tag: float(v[k]) for tag, v in final.items()} for k, seed in enumerate(seeds)
    }
    return summary


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


def _spread(final: dict[str, np.ndarray]) -> str:
    loss = final["train/loss"]
    text = f"loss mean {np.mean(loss):.4f} (min {np.min(loss):.4f}, max {np.max(loss):.4f})"
    if "train/accuracy" in final:
        accuracy = final["train/accuracy"]
        solved = int(np.sum(accuracy == 1))
        text += f"  accuracy mean {np.mean(accuracy):.3f}  solved {solved}/{len(accuracy)}"
    return text


def summary_table(summary: dict[str, float]) -> str:
    """Markdown: one row per metric (mean, std, min, max), then `solved`."""
    names = sorted({k.rsplit("/", 1)[0] for k in summary if k.count("/") >= 2})
    names = [m for m in names if m.split("/")[1] in ("loss", "accuracy", "mse")]
    rows = ["| metric | mean | std | min | max |", "|---|---|---|---|---|"]
    for m in names:
        rows.append(
            "| "
            + " | ".join(
                [m] + [f"{summary[f'{m}/{s}']:.4f}" for s in ("mean", "std", "min", "max")]
            )
            + " |"
        )
    if "solved" in summary:
        rows.append(f"| solved (100% train accuracy) | {summary['solved']:.3f} | | | |")
    if "steps_to_solve/median" in summary:
        median = summary["steps_to_solve/median"]
        rows.append(f"| steps to solve (first log step at 100%) | median {median:.0f} | | | |")
    return "\n".join(rows)
