"""What logging costs a big sweep: the same command logged every 10 steps
and only at its end, alternated.

    python benchmarks/log_cost.py                 # 100,000 seeds, 2,000 steps: ~10 min
    python benchmarks/log_cost.py --seeds 100000 --steps 500 --repeats 3
    python benchmarks/log_cost.py --quick         # seconds: checks that it runs

Runs, as a user does, `python train.py --config=configs/xor.py
--config.num_seeds=N --config.num_steps=S --config.log_every=E` (the
README's 100,000-seed sweep: more than max_member_runs, so only each
point's aggregates are written), with E = 10 and E = S (one log, at the
end), in turn, each in a fresh process and a fresh run directory, and
prints JSON: the median seconds of each whole command and their ratio
(after one untimed run, which fills XLA's compilation cache for both)
`logged_every_10_over_at_end`. The difference is what the 10-step logs
cost: every metric of every member at each log step (beside the last
step's update: `steps.MembersStep.reported`), a chunk's start and end,
and each point's aggregates (computed on the device:
dashboards/statistics.py) written (docs/speed.md).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command(seeds: int, steps: int, every: int, workdir: str) -> list[str]:
    return [
        sys.executable, os.path.join(ROOT, "train.py"), "--config=configs/xor.py",
        f"--config.num_seeds={seeds}", f"--config.num_steps={steps}",
        f"--config.log_every={every}", f"--workdir={workdir}",
    ]  # fmt: skip


def seconds(seeds: int, steps: int, every: int) -> float:
    """The wall time of one whole command, in a fresh run directory."""
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        run = subprocess.run(command(seeds, steps, every, workdir), cwd=ROOT, text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        if run.returncode:
            sys.exit(f"train.py failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, alternated")
    parser.add_argument("--quick", action="store_true", help="1,000 seeds, 40 steps, once")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.repeats = 1000, 40, 1
    if args.steps <= 10:
        parser.error("--steps must be more than 10 (it is compared with logging every 10)")
    times = {10: [], args.steps: []}
    seconds(args.seeds, 10, 10)  # compiles both's programs into XLA's cache (not timed)
    for _ in range(args.repeats):
        for every in times:
            times[every].append(seconds(args.seeds, args.steps, every))
    every_10, at_end = (statistics.median(times[e]) for e in times)
    print(json.dumps({
        "seeds": args.seeds, "steps": args.steps, "repeats": args.repeats,
        "logged_every_10_s": round(every_10, 2), "logged_at_end_s": round(at_end, 2),
        "logged_every_10_over_at_end": round(every_10 / at_end, 3),
        "runs_s": {str(e): [round(t, 2) for t in ts] for e, ts in times.items()},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
