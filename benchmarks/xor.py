"""XOR speed: the compiled loop's steps/s, compile time, and the whole command's wall time.

    python benchmarks/xor.py            # about half a minute
    python benchmarks/xor.py --quick    # seconds: checks that it runs

Prints JSON. `loop_steps_per_second` times the fused training loop that
`train.py` runs for configs/xor.py (2-16-1 MLP, Adam, full batch), in
chunks of 100,000 steps; `peer_net_loop_steps_per_second` the same loop
for the PyTorch peer's net (2-4-1 sigmoid, MSE, SGD 1.0, as in
benchmarks/torch_xor.py); `command_seconds` is the wall time of
`python train.py --config=configs/xor.py` (2,000 steps with every summary
and checkpoint), median of `--runs` fresh processes. Compare with
the PyTorch scripts (benchmarks/torch_xor.py, torch_xor_command.py), alternating.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

from common import ROOT, Timer, build  # benchmarks/common.py: first, it sets up the path

import jax  # noqa: E402
from sweep import peer_config  # noqa: E402  (benchmarks/sweep.py, beside this script)

from configs import xor  # noqa: E402


def loop_rates(config, chunk: int, repeats: int) -> tuple[float, list[float]]:
    """(build and compile seconds, steps/s per timed chunk) of train.py's program."""
    start = time.perf_counter()
    timer = Timer(build(config))
    compile_seconds = time.perf_counter() - start
    return compile_seconds, timer.time(chunk, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small numbers, for tests")
    parser.add_argument("--runs", type=int, default=5, help="whole-command runs (median)")
    args = parser.parse_args()
    chunk = 2_000 if args.quick else 100_000
    repeats = 2 if args.quick else 5
    runs = 1 if args.quick else args.runs

    compile_seconds, rates = loop_rates(xor.get_config(), chunk, repeats)
    peer = peer_config(num_seeds=1)  # the PyTorch peer's net: 2-4-1 sigmoid, MSE, SGD 1.0
    _, peer_rates = loop_rates(peer, chunk, repeats)

    walls = []
    command = [sys.executable, "train.py", "--config=configs/xor.py"]
    if args.quick:
        command.append("--config.num_steps=200")
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as workdir:
            start = time.perf_counter()
            subprocess.run(
                [*command, f"--workdir={workdir}"], cwd=ROOT, check=True, capture_output=True
            )
            walls.append(time.perf_counter() - start)
    print(json.dumps({
        "benchmark": "xor",
        "backend": jax.default_backend(),
        "loop_steps_per_second": round(statistics.median(rates)),
        "loop_steps_per_second_all": [round(r) for r in rates],
        "peer_net_loop_steps_per_second": round(statistics.median(peer_rates)),
        "peer_net_loop_steps_per_second_all": [round(r) for r in peer_rates],
        "compile_seconds": round(compile_seconds, 2),
        "command_seconds": round(statistics.median(walls), 2),
        "command_seconds_all": [round(w, 2) for w in walls],
        "quick": args.quick,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
