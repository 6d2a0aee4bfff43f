"""CNN throughput: train and eval images/s and achieved GFLOP/s, as JSON.

    python benchmarks/cnn.py            # about a minute
    python benchmarks/cnn.py --quick    # a few steps: checks that it runs

Times the training loop that `train.py` runs for configs/fashion_mnist_cnn.py
(batch 128, the same compiled step and on-device batching) on random
images of Fashion-MNIST's shape, so it needs no dataset: with the config's
AdamW, and with the PyTorch peer's optimizer (SGD, momentum 0.9), the same
work as the peer's step; each is compiled once and the two alternate, in two rounds. GFLOP/s comes
from XLA's own count of the compiled step's floating-point operations.
Compare with the PyTorch script (benchmarks/torch_cnn.py --mode
throughput), alternating the two; see the README's Speed section. With
several devices (`XLA_FLAGS=--xla_force_host_platform_device_count=2`) it
times the data-parallel step, as train.py would run it.
"""

import argparse
import json
import statistics
import time

from common import Timer, build  # benchmarks/common.py: first, it sets up the path

import jax  # noqa: E402
import numpy as np  # noqa: E402

import data  # noqa: E402
from configs import fashion_mnist_cnn  # noqa: E402
from training import parallel, steps  # noqa: E402


def peer_optimizer(config):
    """The PyTorch peer's optimizer: SGD, momentum 0.9, learning rate 0.1."""
    config = config.copy_and_resolve_references()
    config.optimizer.update(name="momentum", learning_rate=0.1, momentum=0.9, schedule="constant")
    return config


def compile_training(config, dataset):
    """train.py's program for `config`, warmed up: (Timer, GFLOP per step, compile seconds)."""
    start = time.perf_counter()
    built = build(config, dataset)
    compile_seconds = time.perf_counter() - start
    timer = Timer(built)
    # XLA's count of one step (one device's share of a split one: times the devices).
    one = jax.jit(built.train_step).lower(built.member_state(built.state), built.first_batch)
    gflop = one.compile(steps.compiler_options()).cost_analysis()["flops"]
    return timer, gflop * parallel.mesh().size / 1e9, compile_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps, for tests")
    parser.add_argument("--repeats", type=int, default=5, help="timed chunks (median)")
    args = parser.parse_args()
    config = fashion_mnist_cnn.get_config()
    chunk = 4 if args.quick else 50  # steps per timed chunk
    repeats = 2 if args.quick else args.repeats
    n_train, n_eval = (1024, 512) if args.quick else (60_000, 10_000)

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_train, 28, 28, 1), np.uint8)
    labels = rng.integers(0, 10, n_train).astype(np.int32)
    dataset = data.Dataset(images, labels, images[:n_eval], labels[:n_eval], num_classes=10)

    # The config's AdamW and the peer's SGD with momentum, each compiled once,
    # timed alternating.
    runs = {
        name: compile_training(c, dataset)
        for name, c in [("config", config), ("peer", peer_optimizer(config))]
    }
    for _ in range(1 if args.quick else 2):
        for timer, _, _ in runs.values():
            timer.time(chunk, repeats)
    timer = runs["config"][0]
    evaluate = timer.program.evaluate
    jax.block_until_ready(evaluate(timer.state.params))
    eval_rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(evaluate(timer.state.params))
        eval_rates.append(n_eval / (time.perf_counter() - start))

    def per_second(run):
        steps_per_second = statistics.median(run[0].rates)
        return round(steps_per_second * config.batch_size), round(steps_per_second * run[1], 1)

    (train_images, train_gflops), (peer_images, peer_gflops) = map(per_second, runs.values())
    result = {
        "benchmark": "cnn",
        "backend": jax.default_backend(),
        "devices": len(jax.devices()),
        "loop": "stepwise" if timer.program.stepwise else "fused",
        "batch_size": config.batch_size,
        "compile_seconds": round(runs["config"][2], 2),
        # configs/fashion_mnist_cnn.py as train.py runs it (AdamW, cosine schedule)
        "train_images_per_second": train_images,
        "train_images_per_second_all": [round(r * config.batch_size) for r in timer.rates],
        "train_gflop_per_step": round(runs["config"][1], 3),
        "train_gflops_per_second": train_gflops,
        # the same net with the PyTorch peer's optimizer (SGD, momentum 0.9): the same work
        "peer_optimizer_train_images_per_second": peer_images,
        "peer_optimizer_train_images_per_second_all": [
            round(r * config.batch_size) for r in runs["peer"][0].rates
        ],
        "peer_optimizer_train_gflops_per_second": peer_gflops,
        "eval_images_per_second": round(statistics.median(eval_rates)),
        "quick": args.quick,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
