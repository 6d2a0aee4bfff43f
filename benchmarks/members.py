"""Sweep speed against its size: member-steps/s at 10^3 to 10^6 XOR members in one program.

    python benchmarks/members.py                          # about two minutes
    python benchmarks/members.py --sizes 1000,100000 --net readme
    python benchmarks/members.py --quick                  # seconds: checks that it runs

Prints JSON: for each number of members N, the member-steps/s (N times
the steps/s) of the program train.py runs for `--config.num_seeds=N`,
timed over chunks of about `--work` member-steps each, median of
`--repeats`, plus each chunk's rate and its compile time. `--net peer` is
the PyTorch peer's net (2-4-1 sigmoid, MSE, SGD 1.0: benchmarks/sweep.py);
`--net readme` is configs/xor.py's (2-16-1 ReLU, Adam), the README's
100,000-seed sweep. Each chunk is one `program.train` call: its steps and
the metrics of its last one, as between two log lines. Compare the peer
net with PyTorch's batched loop on the same sizes, alternating:

    /tmp/torch-venv/bin/python benchmarks/torch_xor.py --sweep 1000,10000,100000,1000000 \
        --steps 200

(its `sweeps.N.bmm.net_steps_per_s`). docs/speed.md says what bounds each size.
"""

import argparse
import json
import statistics
import time

from common import Timer, build, sizes_arguments  # benchmarks/common.py: first, it sets up the path

import jax  # noqa: E402
from sweep import peer_config  # noqa: E402  (benchmarks/sweep.py, beside this script)

from configs import xor  # noqa: E402


def readme_config(num_seeds: int):
    config = xor.get_config()
    config.num_seeds = num_seeds
    return config


NETS = {"peer": peer_config, "readme": readme_config}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=sorted(NETS), default="peer")
    sizes, work, repeats, args = sizes_arguments(parser)

    results = {}
    for n in sizes:
        start = time.perf_counter()
        timer = Timer(build(NETS[args.net](n)))  # compiles, and warms up
        compile_s = time.perf_counter() - start
        steps = max(10, round(work / n))
        rates = [r * n for r in timer.time(steps, repeats)]
        results[str(n)] = {
            "steps_per_chunk": steps,
            "member_steps_per_second": round(statistics.median(rates)),
            "member_steps_per_second_all": [round(r) for r in rates],
            "build_and_warm_up_s": round(compile_s, 2),
        }
    print(json.dumps({
        "benchmark": "members",
        "backend": jax.default_backend(),
        "net": args.net,
        "sizes": results,
        "quick": args.quick,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
