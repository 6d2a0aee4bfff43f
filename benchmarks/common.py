"""What the benchmarks share: the program train.py builds, timed.

Each benchmark builds its program with `training.program.build`, exactly as
`train.py` does for the same config, so it times what a run runs.
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from plumbing import host_memory  # noqa: E402

host_memory.keep_freed_memory()  # as train.py does (plumbing/startup.py), before XLA starts

import jax  # noqa: E402

import data  # noqa: E402
from training import program, sweeps  # noqa: E402


def build(config, dataset=None) -> program.Program:
    """The (first) program train.py compiles for `config`."""
    group = sweeps.groups(config)[0]
    return program.build(group, dataset or data.load_dataset(config.data))


class Timer:
    """Times chunks of a program's training loop, carrying its state along."""

    def __init__(self, built: program.Program):
        self.program, self.rates = built, []
        # (a copy: train consumes the state it is given; built.state stays step 0's)
        self.state, self.diverged_at = built.copy(built.state), built.diverged_at
        self.run(10)  # warm-up

    def run(self, steps: int) -> float:
        """Trains `steps` steps of every member; returns the seconds taken."""
        start = time.perf_counter()
        self.state, self.diverged_at, metrics = self.program.train(
            self.state, self.diverged_at, steps
        )
        jax.block_until_ready(metrics)
        return time.perf_counter() - start

    def time(self, steps: int, repeats: int) -> list[float]:
        """Steps/s of one member in each of `repeats` chunks (also kept in `rates`)."""
        for _ in range(repeats):
            self.rates.append(steps / self.run(steps))
        return self.rates[-repeats:]


def sizes_arguments(parser: argparse.ArgumentParser) -> tuple:
    """Parses the flags of a benchmark over numbers of members (--sizes, --work,
    --repeats, --quick: 8 and 64 members, small chunks, once) after `parser`'s
    own; returns (sizes, member-steps per chunk, repeats, the parsed args)."""
    parser.add_argument("--sizes", default="1000,10000,100000,1000000", help="comma-separated")
    parser.add_argument("--work", type=float, default=3e7, help="member-steps per timed chunk")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small numbers, for tests")
    args = parser.parse_args()
    if args.quick:
        return [8, 64], 2e4, 1, args
    return [int(s) for s in args.sizes.split(",")], args.work, args.repeats, args
