"""Sweep speed: N XOR nets in one vmapped program against N runs one after another.

    python benchmarks/sweep.py            # about a minute
    python benchmarks/sweep.py --quick    # seconds: checks that it runs

Prints JSON. The net is the PyTorch peer's (benchmarks/torch_xor.py
--sweep 256): 2-4-1 sigmoid, MSE on the sigmoid output, SGD
at learning rate 1.0, full batch of the four points. `member_steps_per_second`
times `--config.num_seeds=N` (training.program.build: the program train.py
runs for a sweep); `sequential_steps_per_second` times the single run's
program for one seed, so N separate runs take N times as long.
`bytes_per_member` comes from XLA's memory analysis of the compiled sweep
at two sizes (the growth per member); `max_members_24GiB` divides 24 GiB
by it; `cnn_...` the same for configs/fashion_mnist_cnn.py (full mode only,
on CPU one vmapped step: the whole data set is shared, not counted).
Compare with the peer's `bmm_batched_net_steps_per_s`, alternating.
"""

import argparse
import json
import statistics
import sys

from common import Timer, build  # benchmarks/common.py: first, it sets up the path

import jax  # noqa: E402

from configs import fashion_mnist_cnn, xor  # noqa: E402
from plumbing.failures import UserError  # noqa: E402


def peer_config(num_seeds: int):
    config = xor.get_config()
    config.num_seeds = num_seeds
    config.model.hidden_sizes = (4,)
    config.model.activation = "sigmoid"
    config.loss = "mse"
    config.optimizer.name = "sgd"
    config.optimizer.learning_rate = 1.0
    return config


def cnn_config(num_seeds: int):
    config = fashion_mnist_cnn.get_config()
    config.num_seeds = num_seeds
    return config


def bytes_per_member(make_config, sizes) -> float:
    """What one more member costs: XLA's memory analysis of two compiled sweeps."""
    used = []
    for size in sizes:
        built = build(make_config(size))
        assert built.part == size, f"{size} members trained in parts of {built.part}: fewer"
        analysis = built.compiled.memory_analysis()
        used.append(
            analysis.argument_size_in_bytes
            + analysis.output_size_in_bytes
            + analysis.temp_size_in_bytes
            - analysis.alias_size_in_bytes
        )
    return (used[1] - used[0]) / (sizes[1] - sizes[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small numbers, for tests")
    parser.add_argument("--members", type=int, default=256, help="nets trained at once")
    args = parser.parse_args()
    members = 8 if args.quick else args.members
    chunk, repeats = (500, 2) if args.quick else (10_000, 5)

    # N nets at once: the sweep's own program.
    swept = Timer(build(peer_config(members)))
    member_rates = [r * members for r in swept.time(chunk, repeats)]
    # One net: the program a single run of train.py compiles.
    sequential = Timer(build(peer_config(1))).time(chunk, repeats)

    per_member = bytes_per_member(peer_config, (16, 64) if args.quick else (1024, 4096))
    cnn_per_member = None
    if not args.quick:
        try:
            cnn_per_member = bytes_per_member(cnn_config, (2, 4))
        except UserError as e:  # no Fashion-MNIST here
            print(f"CNN memory not measured: {e}", file=sys.stderr)
    member_median = statistics.median(member_rates)
    sequential_median = statistics.median(sequential)
    print(json.dumps({
        "benchmark": "sweep",
        "backend": jax.default_backend(),
        "members": members,
        "member_steps_per_second": round(member_median),
        "member_steps_per_second_all": [round(r) for r in member_rates],
        "sequential_steps_per_second": round(sequential_median),
        "sequential_steps_per_second_all": [round(r) for r in sequential],
        "speedup_vs_sequential": round(member_median / sequential_median, 1),
        "bytes_per_member": round(per_member),
        "max_members_24GiB": int(24 * 2**30 / per_member),
        "cnn_bytes_per_member": cnn_per_member and round(cnn_per_member),
        "cnn_max_members_24GiB": cnn_per_member and int(24 * 2**30 / cnn_per_member),
        "quick": args.quick,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
