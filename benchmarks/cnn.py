"""CNN throughput: train and eval images/s and achieved GFLOP/s, as JSON.

    python benchmarks/cnn.py            # about a minute
    python benchmarks/cnn.py --quick    # a few steps: checks that it runs

Times the training loop that `train.py` runs for configs/fashion_mnist_cnn.py
(batch 128, the same compiled step and on-device batching) on random
images of Fashion-MNIST's shape, so it needs no dataset: with the config's
AdamW, and with the PyTorch peer's optimizer (SGD, momentum 0.9), the same
work as the peer's step; each is compiled once and the two alternate, in two rounds. GFLOP/s comes
from XLA's own count of the compiled step's floating-point operations.
Compare with the PyTorch peer (../shared/peers/cnn_torch.py --mode
throughput), alternating the two; see the README's Speed section. With
several devices (`XLA_FLAGS=--xla_force_host_platform_device_count=2`) it
times the data-parallel step, as train.py would run it.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from plumbing import host_memory  # noqa: E402

host_memory.keep_freed_memory()  # as train.py does

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

import nets  # noqa: E402
from configs import fashion_mnist_cnn  # noqa: E402
from training import losses, optimizers, parallel, steps  # noqa: E402


def peer_optimizer(config):
    """The PyTorch peer's optimizer: SGD, momentum 0.9, learning rate 0.1."""
    config = config.copy_and_resolve_references()
    config.optimizer.update(name="momentum", learning_rate=0.1, momentum=0.9, schedule="constant")
    return config


def compile_training(config, x, y, mesh, everywhere, split):
    """The training loop train.py compiles for `config`, ready to time: a dict
    with the loop, its state, GFLOP per step, compile seconds, fused or not,
    and the graphdef."""
    model = nets.build_model(config.model, (28, 28, 1), 10, nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)
    optimizer, learning_rate = optimizers.make_optimizer(config.optimizer, config.num_steps)
    state = steps.TrainState(step=jnp.array(0), params=params, opt_state=optimizer.init(params))
    state = parallel.put(jax.device_get(state), everywhere)
    train_step = steps.make_train_step(
        graphdef, losses.cross_entropy, optimizer, learning_rate, split
    )
    batches = steps.Batches(len(y), config.batch_size, jax.random.key(1))
    batch = (x[: config.batch_size], y[: config.batch_size])

    start = time.perf_counter()
    fused = jax.default_backend() != "cpu" or not steps.uses_convolutions(train_step, state, batch)
    loop = steps.compile_train_loop(train_step, batches, state, (x, y), fused, everywhere)
    compile_seconds = time.perf_counter() - start
    # XLA counts one device's share of a split step: times the devices.
    step = jax.jit(train_step).lower(state, batch).compile(steps.compiler_options())
    gflop = step.cost_analysis()["flops"] * mesh.size / 1e9
    state, metrics = loop(state, (x, y), 2)  # warm-up
    jax.block_until_ready(metrics)
    return dict(loop=loop, state=state, gflop=gflop, compile_seconds=compile_seconds,
                fused=fused, graphdef=graphdef, rates=[])  # fmt: skip


def time_chunks(run, x, y, repeats, chunk, batch_size):
    """Appends the images/s of `repeats` chunks of `chunk` steps to run["rates"]."""
    for _ in range(repeats):
        start = time.perf_counter()
        run["state"], metrics = run["loop"](run["state"], (x, y), chunk)
        jax.block_until_ready(metrics)
        run["rates"].append(chunk * batch_size / (time.perf_counter() - start))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps, for tests")
    parser.add_argument("--repeats", type=int, default=5, help="timed chunks (median)")
    args = parser.parse_args()
    config = fashion_mnist_cnn.get_config()
    chunk = 4 if args.quick else 50  # steps per timed chunk
    repeats = 2 if args.quick else args.repeats
    n_train, n_eval = (1024, 512) if args.quick else (60_000, 10_000)

    # As train.py: weights and data on every device, each batch split over them.
    mesh = parallel.mesh()
    everywhere = parallel.replicated(mesh)
    split = parallel.split(mesh) if mesh.size > 1 else None
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n_train, 28, 28, 1), np.uint8)
    x, y = parallel.put((x, rng.integers(0, 10, n_train).astype(np.int32)), everywhere)

    # The config's AdamW and the peer's SGD with momentum, each compiled once,
    # timed alternating.
    runs = {
        name: compile_training(c, x, y, mesh, everywhere, split)
        for name, c in [("config", config), ("peer", peer_optimizer(config))]
    }
    for _ in range(1 if args.quick else 2):
        for run in runs.values():
            time_chunks(run, x, y, repeats, chunk, config.batch_size)
    graphdef, params = runs["config"]["graphdef"], runs["config"]["state"].params

    evaluate = steps.make_evaluate(
        graphdef, losses.cross_entropy, n_eval, 10, config.eval_batch_size, summed_loss=False
    )
    evaluate = jax.jit(evaluate).lower(params, (x[:n_eval], y[:n_eval]))
    evaluate = evaluate.compile(steps.compiler_options())
    jax.block_until_ready(evaluate(params, (x[:n_eval], y[:n_eval])))
    eval_rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(evaluate(params, (x[:n_eval], y[:n_eval])))
        eval_rates.append(n_eval / (time.perf_counter() - start))

    def per_second(run):
        images = statistics.median(run["rates"])
        return round(images), round(images / config.batch_size * run["gflop"], 1)

    (train_images, train_gflops), (peer_images, peer_gflops) = map(per_second, runs.values())
    result = {
        "benchmark": "cnn",
        "backend": jax.default_backend(),
        "devices": len(jax.devices()),
        "loop": "fused" if runs["config"]["fused"] else "stepwise",
        "batch_size": config.batch_size,
        "compile_seconds": round(runs["config"]["compile_seconds"], 2),
        # configs/fashion_mnist_cnn.py as train.py runs it (AdamW, cosine schedule)
        "train_images_per_second": train_images,
        "train_images_per_second_all": [round(r) for r in runs["config"]["rates"]],
        "train_gflop_per_step": round(runs["config"]["gflop"], 3),
        "train_gflops_per_second": train_gflops,
        # the same net with the PyTorch peer's optimizer (SGD, momentum 0.9): the same work
        "peer_optimizer_train_images_per_second": peer_images,
        "peer_optimizer_train_images_per_second_all": [round(r) for r in runs["peer"]["rates"]],
        "peer_optimizer_train_gflops_per_second": peer_gflops,
        "eval_images_per_second": round(statistics.median(eval_rates)),
        "quick": args.quick,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
