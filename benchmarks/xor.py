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

`command_parts_s` says where the command's seconds go (medians of
`--runs` each): `python` starting, `import_jax`, `backend_start` (the
device client: `jax.devices()`), the rest of train.py's `imports`, each
timed in a fresh process of its own; then, from the command's own lines,
`build` (its "compiled in": the data, the state, compiling or loading the
programs from the compilation cache) and `train` (its "done: ... in":
the steps and every action); `rest` is the wall time left (flags, the run
directory, the config, opening and closing the writers, the exit).
`backend_start_with_s` times JAX's import and the device client's start
together (`import_jax` + `backend_start`) under settings that may
shorten it on a GPU (no preallocated memory; no search for other
platforms). The commands and probes run first, before this process
touches the device.
"""

import argparse
import json
import os
import re
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


# Each probe runs in a fresh process; its time includes what the one before it
# measures. Each exits as train.py does, without the interpreter's teardown.
EXIT = "; import os; os._exit(0)"
PROBES = {
    "python": "pass" + EXIT,
    "import_jax": "import jax" + EXIT,
    "backend_start": "import jax; jax.devices()" + EXIT,
    "imports": "import jax; jax.devices(); import train" + EXIT,
}


def probe_seconds(code: str, env=None, check: bool = True) -> float | None:
    """The wall time of `python -c CODE` in a fresh process, from the repository
    root; None if it failed and not `check`."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=check,
                          capture_output=True, env={**os.environ, **(env or {})})  # fmt: skip
    return time.perf_counter() - start if done.returncode == 0 else None


def platform() -> str:
    """The JAX_PLATFORMS name of the backend in use ("cuda" or "rocm" on a GPU,
    whose backend reads "gpu": as JAX_PLATFORMS, that asks for every GPU kind and
    fails on the missing ones), asked of a child process (this one keeps off the device)."""
    code = (
        "import jax, jax.extend.backend as b; d = jax.default_backend(); "
        "print(next((p for p in b.backends() if p in ('cuda', 'rocm')), d) if d == 'gpu' else d)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout.split()[-1]


def command_parts(walls: list[float], outputs: list[str], runs: int) -> dict:
    """Where the whole command's seconds go (see the module docstring)."""
    totals = {name: statistics.median(probe_seconds(code) for _ in range(runs))
              for name, code in PROBES.items()}  # fmt: skip
    parts, before = {}, 0.0
    for name, total in totals.items():  # each probe's time less the one before it
        parts[name], before = max(total - before, 0.0), total
    for name, pattern in (("build", r"compiled in ([\d.]+) s"),
                          ("train", r"done: \d+ steps in ([\d.]+) s")):  # fmt: skip
        found = [re.search(pattern, out) for out in outputs]
        if not all(found):  # (a console line changed: say nothing rather than fail)
            return {}
        parts[name] = statistics.median(float(m.group(1)) for m in found)
    # (a difference of medians of separate processes: it can come out a little below 0)
    parts["rest"] = statistics.median(walls) - sum(parts.values())
    return {name: round(seconds, 2) for name, seconds in parts.items()}


def backend_start_with(runs: int) -> dict:
    """`import jax; jax.devices()` seconds (JAX's import and the device client's
    start) under each setting (median of `runs`; None where the setting failed)."""
    name = platform()
    settings = {
        "default": {},
        "XLA_PYTHON_CLIENT_PREALLOCATE=false": {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
        f"JAX_PLATFORMS={name}": {"JAX_PLATFORMS": name},
    }
    times = {}
    for name, env in settings.items():
        each = [probe_seconds(PROBES["backend_start"], env, check=False) for _ in range(runs)]
        times[name] = None if None in each else round(statistics.median(each), 2)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small numbers, for tests")
    parser.add_argument("--runs", type=int, default=5, help="whole-command runs (median)")
    args = parser.parse_args()
    chunk = 2_000 if args.quick else 100_000
    repeats = 2 if args.quick else 5
    runs = 1 if args.quick else args.runs

    # First the child processes, while this one holds nothing on the device.
    walls, outputs = [], []
    command = [sys.executable, "train.py", "--config=configs/xor.py"]
    if args.quick:
        command.append("--config.num_steps=200")
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as workdir:
            start = time.perf_counter()
            done = subprocess.run([*command, f"--workdir={workdir}"], cwd=ROOT, check=True,
                                  capture_output=True, text=True)  # fmt: skip
            walls.append(time.perf_counter() - start)
            outputs.append(done.stdout)
    parts, client = command_parts(walls, outputs, runs), backend_start_with(runs)

    compile_seconds, rates = loop_rates(xor.get_config(), chunk, repeats)
    peer = peer_config(num_seeds=1)  # the PyTorch peer's net: 2-4-1 sigmoid, MSE, SGD 1.0
    _, peer_rates = loop_rates(peer, chunk, repeats)

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
        "command_parts_s": parts,
        "backend_start_with_s": client,
        "quick": args.quick,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
