"""The GPU check: the suite, the benchmarks against PyTorch, the big sweep and two CNN epochs.

    python3 benchmarks/gpu_check.py --json=$OUT/gpu_check.json --log=$OUT/gpu_check.log
    .venv/bin/python benchmarks/gpu_check.py --quick        # on this CPU: a few minutes

One command for a machine with a GPU (it runs on the CPU backend too). It
runs, one after another, each as its own process (so a part that fails or
hangs costs only its own time):

- `env`: Python, JAX, Flax, the backend and its devices, PyTorch and the
  GPU it sees, and whether every package the project needs imports;
- `suite`: `python -m pytest -m "not slow" -n WORKERS` (`--quick`: a few
  test files);
- `seeds`: the README's big sweep, `python train.py --config=configs/xor.py
  --config.num_seeds=100000 --config.log_every=10`, timed (a fresh
  compilation cache: cold, as on a fresh machine);
- `epochs`: `python train.py --config=configs/fashion_mnist_cnn.py
  --config.num_steps=936` (two epochs), timed, with its test accuracy
  (needs Fashion-MNIST: `--data-dir`);
- `cnn` and `torch_cnn`: `benchmarks/cnn.py` against
  `benchmarks/torch_cnn.py --data=random` (eager, `torch.compile`, CUDA
  graphs on a GPU; eager alone on the CPU);
- `sweep` and `torch_xor`: `benchmarks/sweep.py` (256 XOR nets in one
  program) against `benchmarks/torch_xor.py` (the same nets hand-batched
  with `baddbmm`, its variants, and 100,000 nets on a GPU);
- `members`: `benchmarks/members.py`, the same net at 10^3 to 10^6
  members in one program (compared at 100,000 with `torch_xor`'s);
- `xor`: `benchmarks/xor.py --runs=3`: one XOR net's loop, and the whole
  `python train.py --config=configs/xor.py` command (start-up included,
  and where its seconds go);
- `members_last`: `benchmarks/members_last.py`, that program against the
  same nets' step written with the members axis last (what the members
  axis's place costs on this device).

Then it prints a summary (each part: pass, fail, timeout or skip, and its
numbers; the ratios of ours to PyTorch's best variant) and writes it as
JSON to `--json`; `--log` gets every part's whole output. It needs nothing
from the network. Without PyTorch (in this Python or `--torch-python`) the
PyTorch parts say so and are skipped. `--budget` seconds bound the whole
check: each part's time limit is cut to what is left, and a part with too
little left is not started. Exit status: 0 when no part failed, else 1.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = ("env", "suite", "seeds", "epochs", "cnn", "torch_cnn", "sweep", "members", "torch_xor",
         "xor", "members_last")  # fmt: skip
TORCH_PARTS = ("torch_cnn", "torch_xor")
# Each part's time limit (seconds), full and --quick, before --budget cuts it.
LIMITS = {
    "env": (120, 120),
    "suite": (300, 420),
    "seeds": (150, 150),
    "epochs": (150, 150),
    "cnn": (150, 240),
    "torch_cnn": (240, 240),
    "sweep": (150, 180),
    "members": (180, 120),
    "members_last": (120, 120),
    "torch_xor": (240, 180),
    "xor": (240, 120),
}
NUMBER = r"(\d+(?:\.\d+)?)"  # a number in a console line, not the full stop after it
GPU_BACKENDS = ("gpu", "cuda", "rocm")  # jax.default_backend() on a GPU: "gpu"
MIN_LEFT = 15  # seconds: a part is not started with less of the budget left
QUICK_TESTS = "tests/test_losses.py tests/test_mlp.py tests/test_steps.py"
SEED_COMMAND = "train.py --config=configs/xor.py --config.num_seeds={seeds} --config.log_every=10"
CNN_COMMAND = "train.py --config=configs/fashion_mnist_cnn.py --config.num_steps={steps}"
# What train.py and the suite import (requirements.txt, requirements-dev.txt), by module.
NEEDED = (
    "jax flax optax ml_collections absl numpy ml_dtypes tensorboard google_crc32c PIL pytest xdist"
).split()

ENV_SCRIPT = """
import importlib, json, sys
info = {"python": sys.version.split()[0], "missing": []}
for name in sys.argv[1].split():
    try:
        importlib.import_module(name)
    except Exception as e:
        info["missing"].append(f"{name} ({type(e).__name__}: {e})")
import jax, flax
info.update(jax=jax.__version__, flax=flax.__version__, backend=jax.default_backend(),
            devices=[d.device_kind for d in jax.devices()])
print(json.dumps(info))
"""
TORCH_SCRIPT = """
import json, torch
cuda = torch.cuda.is_available()
print(json.dumps({"torch": torch.__version__, "cuda": cuda,
                  "gpu": torch.cuda.get_device_name(0) if cuda else None}))
"""


class Check:
    def __init__(self, args):
        self.args, self.parts = args, {}
        self.start = time.perf_counter()
        self.log = open(args.log, "w") if args.log else None  # noqa: SIM115 (closed in main)
        self.env = {}

    def left(self):
        return self.args.budget - (time.perf_counter() - self.start)

    def run(self, name, command, shown=None):
        """Runs `command` (argv) from the repository root within the part's time limit.

        Returns (return code or None when it ran out of time, its output, seconds).
        """
        limit = min(LIMITS[name][self.args.quick], self.left())
        shown = shown or shlex.join(command)
        print(f"[{name}] {shown}  (limit {limit:.0f} s)", flush=True)
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: a timeout ends its children too
        )
        try:
            output, _ = process.communicate(timeout=limit)
            code = process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            code = None
        seconds = time.perf_counter() - start
        if self.log:
            self.log.write(f"===== {name}: {shown}\n{output}\n===== {name}: ")
            self.log.write(f"{'timeout' if code is None else f'exit {code}'}, {seconds:.1f} s\n")
            self.log.flush()
        return code, output, seconds

    def record(self, name, status, seconds=None, command=None, note=None, **numbers):
        self.parts[name] = {
            "status": status,
            "seconds": None if seconds is None else round(seconds, 1),
            "command": command,
            "note": note,
            "numbers": numbers,
        }
        print(f"[{name}] {status}: {describe(name, self.parts[name])}", flush=True)

    def finished(self, name, command, code, output, seconds, **numbers):
        """Records a part that ran: pass, or fail with its last error line, or timeout."""
        shown = shlex.join(command)
        if code is None:
            note = f"stopped at its time limit; its last line: {last_line(output)}"
            self.record(name, "timeout", seconds, shown, note, **numbers)
        elif code != 0:
            self.record(
                name, "fail", seconds, shown, f"exit {code}: {last_line(output)}", **numbers
            )
        else:
            self.record(name, "pass", seconds, shown, **numbers)


def last_line(output):
    """The output's last error line, else its last non-empty line (what a failure says)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"(error|\w*Error|E )", line)]
    return ((errors or lines or [""])[-1])[:300]


def last_json(output):
    """The last JSON object a benchmark printed (one line, or indented over many)."""
    start = output.rfind("\n{")
    text = output[start + 1 :] if start >= 0 else output[output.find("{") :]
    try:
        return json.loads(text)
    except ValueError:
        return None


def python_json(check, name, python, script, *argv, label="env"):
    shown = f"{python} -c <{label} script>"
    code, output, seconds = check.run(name, [python, "-c", script, *argv], shown)
    return (last_json(output) if code == 0 else None), output, seconds


def find_torch_python(args):
    """The Python that has PyTorch: --torch-python, this one, or /tmp/torch-venv's."""
    if args.torch_python is not None:
        return args.torch_python or None  # '' : none
    for python in (sys.executable, "/tmp/torch-venv/bin/python"):
        if os.path.exists(python):
            found = subprocess.run([python, "-c", "import torch"], capture_output=True)
            if found.returncode == 0:
                return python
    return None


def part_env(check):
    args = check.args
    info, output, seconds = python_json(check, "env", sys.executable, ENV_SCRIPT, " ".join(NEEDED))
    if info is None:
        check.record("env", "fail", seconds, note=last_line(output))
        return
    check.env.update(info)
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        check.env["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    python = check.env["torch_python"] = find_torch_python(args)
    if python:
        torch_info, torch_output, _ = python_json(check, "env", python, TORCH_SCRIPT, label="torch")
        check.env.update(torch_info or {"torch_error": last_line(torch_output)})
    gpu = info["backend"] in GPU_BACKENDS
    if check.env.get("torch"):
        # PyTorch on the device JAX uses; a GPU that PyTorch does not see is no comparison.
        check.env["torch_device"] = "cuda" if gpu and check.env["cuda"] else "cpu"
    missing = info["missing"]
    note = f"missing: {', '.join(missing)} (carry wheels: docs/devices.md)" if missing else None
    numbers = {key: check.env.get(key) for key in ("python", "jax", "flax", "backend", "torch")}
    numbers["devices"] = len(info["devices"])
    numbers["device"] = info["devices"][0]
    check.record("env", "fail" if missing else "pass", seconds, note=note, **numbers)


def part_suite(check):
    args = check.args
    tests = shlex.split(args.tests if args.tests is not None else QUICK_TESTS if args.quick else "")
    command = [sys.executable, "-m", "pytest", "-m", "not slow", "-n", str(args.workers), "-q"]
    command += ["-p", "no:cacheprovider", *tests]
    code, output, seconds = check.run("suite", command)
    counts = {}
    summary = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    for count, kind in re.findall(
        r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)", (summary or [""])[-1]
    ):
        counts["errors" if kind.startswith("error") else kind] = int(count)
    failed = [
        line.split(" - ")[0].split(" ", 1)[1]
        for line in output.splitlines()
        if line.startswith(("FAILED ", "ERROR "))
    ]
    skipped = sorted({line for line in output.splitlines() if line.startswith("SKIPPED ")})
    numbers = {"workers": args.workers, **counts, "failed_tests": failed}
    numbers["skip_reasons"] = [line[len("SKIPPED ") :][:160] for line in skipped][:20]
    check.finished("suite", command, code, output, seconds, **numbers)


def train_command(check, line, workdir):
    """`python LINE --workdir=... --compilation_cache=...` (fresh: a cold start)."""
    return [
        sys.executable,
        *shlex.split(line),
        f"--workdir={workdir}",
        f"--compilation_cache={os.path.join(workdir, 'xla-cache')}",
    ]


def done_numbers(output):
    """What a run's lines say: compile seconds; from its last, steps, training seconds and the
    final evaluation (the test split, for Fashion-MNIST); a sweep's solved fraction."""
    numbers = {}
    if m := re.search(rf"compiled in {NUMBER} s", output):
        numbers["compile_s"] = float(m.group(1))
    if m := re.search(rf"done: (\d+) steps in {NUMBER} s", output):
        numbers["steps"], numbers["train_s"] = int(m.group(1)), float(m.group(2))
    done = [line for line in output.splitlines() if line.startswith("done:")]
    if done and (m := re.search(rf"eval loss {NUMBER}\s+accuracy {NUMBER}", done[-1])):
        numbers["test_loss"], numbers["test_accuracy"] = float(m.group(1)), float(m.group(2))
    if m := re.search(rf"\| solved[^|]*\| {NUMBER} ", output):
        numbers["solved"] = float(m.group(1))
    return numbers


def part_seeds(check):
    line = SEED_COMMAND.format(seeds=check.args.seeds)
    with tempfile.TemporaryDirectory(prefix="gpu_check_seeds_") as workdir:
        command = train_command(check, line, workdir)
        code, output, seconds = check.run("seeds", command)
    numbers = {"seeds": check.args.seeds, "command_s": round(seconds, 1), **done_numbers(output)}
    if numbers.get("train_s"):
        numbers["member_steps_per_s"] = round(
            check.args.seeds * numbers["steps"] / numbers["train_s"]
        )
    check.finished("seeds", ["python", *shlex.split(line)], code, output, seconds, **numbers)


def part_epochs(check):
    args = check.args
    line = CNN_COMMAND.format(steps=args.cnn_steps)
    data_dir = args.data_dir
    if data_dir:
        line += f" --config.data.data_dir={data_dir}"
    folder = data_dir or "/usr/share/datasets/fashion-mnist"
    if not os.path.isdir(folder) or not any(
        f.startswith("t10k-images") for f in os.listdir(folder)
    ):
        check.record(
            "epochs", "skip", note=f"no Fashion-MNIST in {folder}: --data-dir (see docs/devices.md)"
        )
        return
    with tempfile.TemporaryDirectory(prefix="gpu_check_epochs_") as workdir:
        command = train_command(check, line, workdir)
        code, output, seconds = check.run("epochs", command)
    numbers = {"command_s": round(seconds, 1), **done_numbers(output)}
    check.finished("epochs", ["python", *shlex.split(line)], code, output, seconds, **numbers)


def benchmark(check, name, command):
    """Runs a benchmark that prints JSON last; returns it (None when it failed)."""
    code, output, seconds = check.run(name, command)
    result = last_json(output) if code == 0 else None
    if code == 0 and result is None:
        check.record(name, "fail", seconds, shlex.join(command), "printed no JSON")
    return code, output, seconds, result


def ours(check, name, command, keys):
    """One of our benchmarks: runs it and records these `keys` of its JSON."""
    code, output, seconds, result = benchmark(check, name, command)
    if code != 0 or result is not None:
        numbers = {key: result[key] for key in keys if key in result} if result else {}
        check.finished(name, command, code, output, seconds, **numbers)


def part_cnn(check):
    command = [sys.executable, "benchmarks/cnn.py", *(["--quick"] if check.args.quick else [])]
    keys = ("train_images_per_second", "peer_optimizer_train_images_per_second",
            "compile_seconds", "eval_images_per_second", "backend", "loop")  # fmt: skip
    ours(check, "cnn", command, keys)


def torch_ready(check, name):
    """The PyTorch Python and device for a PyTorch part, or None (the part recorded as skipped)."""
    python, device = check.env.get("torch_python"), check.env.get("torch_device")
    if not python:
        note = "no PyTorch here (nor --torch-python): skipped"
    elif not check.env.get("torch"):
        note = f"PyTorch did not start: {check.env.get('torch_error', 'env did not run')}"
    elif check.env.get("backend") in GPU_BACKENDS and device != "cuda":
        note = "JAX runs on the GPU but this PyTorch sees none: no comparison"
    else:
        return python, device
    check.record(name, "skip", note=note)
    return None


def variant_name(name):
    """torch_cnn.py's result name as a variant: an eager run alone is named by its format."""
    return "eager" if name in ("default", "channels_last") else name


def part_torch_cnn(check):
    if not (ready := torch_ready(check, "torch_cnn")):
        return
    python, device = ready
    command = [
        python,
        "benchmarks/torch_cnn.py",
        "--mode=throughput",
        "--data=random",
        f"--device={device}",
    ]
    if check.args.quick:
        command += ["--rounds=2", "--chunk=4", "--warmup=2"]
    code, output, seconds, result = benchmark(check, "torch_cnn", command)
    if code != 0 or result is not None:
        numbers = {"device": device}
        if result:
            numbers.update(
                {
                    f"{variant_name(name)}_images_per_s": r["images_per_s_median"]
                    for name, r in result["results"].items()
                }
            )
            numbers["first_step_s"] = {
                variant_name(n): r["first_step_s"] for n, r in result["results"].items()
            }
        check.finished("torch_cnn", command, code, output, seconds, **numbers)


def part_sweep(check):
    command = [sys.executable, "benchmarks/sweep.py", *(["--quick"] if check.args.quick else [])]
    keys = ("members", "member_steps_per_second", "sequential_steps_per_second",
            "speedup_vs_sequential", "bytes_per_member", "backend")  # fmt: skip
    ours(check, "sweep", command, keys)


def sizes_part(check, name: str, field: str, key: str) -> None:
    """A benchmark of sizes of members (`benchmarks/NAME.py`): each size's `field`
    recorded as `members_N_KEY`."""
    quick = ["--quick"] if check.args.quick else []
    command = [sys.executable, f"benchmarks/{name}.py", *quick]
    code, output, seconds, result = benchmark(check, name, command)
    if code != 0 or result is not None:
        numbers = {"backend": result["backend"]} if result else {}
        for n, size in (result or {}).get("sizes", {}).items():
            numbers[f"members_{n}_{key}"] = size[field]
        check.finished(name, command, code, output, seconds, **numbers)


def part_members(check):
    sizes_part(check, "members", "member_steps_per_second", "member_steps_per_s")


def part_members_last(check):
    sizes_part(check, "members_last", "members_last_over_program", "members_last_over_program")


def part_torch_xor(check):
    if not (ready := torch_ready(check, "torch_xor")):
        return
    python, device = ready
    if check.args.quick:
        sizes, steps, rounds = "8", 500, 1  # sweep.py --quick's 8 members
    else:
        sizes, steps, rounds = ("256,100000" if device == "cuda" else "256"), 2000, 3
    command = [
        python,
        "benchmarks/torch_xor.py",
        f"--device={device}",
        f"--sweep={sizes}",
        f"--steps={steps}",
        f"--rounds={rounds}",
    ]
    code, output, seconds, result = benchmark(check, "torch_xor", command)
    if code != 0 or result is not None:
        numbers = {"device": device}
        if result:
            results = result["results"]
            for name, r in results.items():
                if name.startswith("idiomatic"):
                    numbers[f"{name}_steps_per_s"] = r["steps_per_s_median"]
            sweeps = results.get("sweeps") or {str(results["sweep"]["nets"]): results["sweep"]}
            for n, sweep in sweeps.items():
                for name, r in sweep.items():
                    if isinstance(r, dict):
                        numbers[f"{name}_{n}_net_steps_per_s"] = r["net_steps_per_s"]
        check.finished("torch_xor", command, code, output, seconds, **numbers)


def part_xor(check):
    command = [sys.executable, "benchmarks/xor.py", "--quick" if check.args.quick else "--runs=3"]
    keys = ("loop_steps_per_second", "peer_net_loop_steps_per_second", "compile_seconds",
            "command_seconds", "command_seconds_all", "command_parts_s",
            "backend_start_with_s", "backend")  # fmt: skip
    ours(check, "xor", command, keys)


def comparisons(parts):
    """Ours against PyTorch's best variant on the same device, where both ran."""
    out = {}
    numbers = {name: part["numbers"] for name, part in parts.items() if part["status"] == "pass"}
    if "cnn" in numbers and "torch_cnn" in numbers:
        theirs = {k: v for k, v in numbers["torch_cnn"].items() if k.endswith("_images_per_s")}
        best = max(theirs, key=theirs.get)
        ours = numbers["cnn"]["peer_optimizer_train_images_per_second"]
        out["cnn"] = {
            "ours_images_per_s": ours,
            "torch_best": best.removesuffix("_images_per_s"),
            "torch_images_per_s": theirs[best],
            "ratio": round(ours / theirs[best], 2),
        }
    if "sweep" in numbers and "torch_xor" in numbers:
        n = numbers["sweep"]["members"]
        theirs = {
            k: v
            for k, v in numbers["torch_xor"].items()
            if k.startswith("bmm") and k.endswith(f"_{n}_net_steps_per_s")
        }
        if theirs:
            best = max(theirs, key=theirs.get)
            ours = numbers["sweep"]["member_steps_per_second"]
            out["sweep"] = {
                "members": n,
                "ours_member_steps_per_s": ours,
                "torch_best": best.removesuffix(f"_{n}_net_steps_per_s"),
                "torch_net_steps_per_s": theirs[best],
                "ratio": round(ours / theirs[best], 1),
            }
    if "members" in numbers and "torch_xor" in numbers:
        ours = numbers["members"].get("members_100000_member_steps_per_s")
        theirs = {k: v for k, v in numbers["torch_xor"].items()
                  if k.startswith("bmm") and k.endswith("_100000_net_steps_per_s")}  # fmt: skip
        if ours and theirs:
            best = max(theirs, key=theirs.get)
            out["members"] = {
                "members": 100000,
                "ours_member_steps_per_s": ours,
                "torch_best": best.removesuffix("_100000_net_steps_per_s"),
                "torch_net_steps_per_s": theirs[best],
                "ratio": round(ours / theirs[best], 1),
            }
    return out


def fmt(x):
    """A number as the summary shows it: 1,234 or 9.5 M or 0.882."""
    if isinstance(x, float) and x < 100:
        return f"{x:g}"
    if isinstance(x, int | float) and x >= 1e6:
        return f"{x / 1e6:.3g} M"
    return f"{x:,.0f}" if isinstance(x, int | float) else str(x)


def short(key):
    """A PyTorch number's name without its unit: bmm_compile_256, eager, idiomatic."""
    return re.sub(r"(_net)?_(steps|images)_per_s$", "", key)


def describe(name, part):
    """One line for a part: its numbers, or why it did not pass."""
    n, bits = part["numbers"], []
    if name == "env" and n:
        bits.append(
            f"python {n['python']}, jax {n['jax']}, flax {n['flax']}, backend "
            f"{n['backend']} ({n['devices']} x {n['device']}), torch {n['torch'] or 'none'}"
        )
    elif name == "suite" and "passed" in n:
        counts = ", ".join(
            f"{n[k]} {k}" for k in ("passed", "failed", "errors", "skipped") if k in n
        )
        bits.append(f"{counts} ({n['workers']} workers)")
        bits += [f"FAILED {t}" for t in n["failed_tests"][:12]]
    elif name in ("seeds", "epochs") and "train_s" in n:
        what = f"{n['seeds']:,} seeds x " if name == "seeds" else ""
        bits.append(
            f"{what}{n['steps']} steps: train {n['train_s']} s, compile {n.get('compile_s')}"
            f" s, whole command {n['command_s']} s"
        )
        if name == "seeds":
            bits.append(f"{fmt(n['member_steps_per_s'])} member-steps/s, solved {n.get('solved')}")
        else:
            bits.append(f"test accuracy {n.get('test_accuracy')}")
    elif name == "cnn" and n:
        bits.append(
            f"{fmt(n['train_images_per_second'])} images/s (AdamW), "
            f"{fmt(n['peer_optimizer_train_images_per_second'])} (SGD+momentum), "
            f"compile {n['compile_seconds']} s, {n['backend']}"
        )
    elif name == "sweep" and n:
        bits.append(
            f"{n['members']} members {fmt(n['member_steps_per_second'])} member-steps/s, "
            f"one net {fmt(n['sequential_steps_per_second'])} steps/s"
        )
    elif name == "members" and len(n) > 1:
        sizes = [(k.split("_")[1], v) for k, v in n.items() if k.startswith("members_")]
        bits.append(", ".join(f"{int(m):,}: {fmt(v)}" for m, v in sizes) + " member-steps/s")
    elif name == "members_last" and len(n) > 1:
        sizes = [(k.split("_")[1], v) for k, v in n.items() if k.startswith("members_")]
        bits.append("members last / the program: "
                    + ", ".join(f"{int(m):,}: {v}x" for m, v in sizes))  # fmt: skip
    elif name == "xor" and n:
        bits.append(
            f"one net {fmt(n['loop_steps_per_second'])} steps/s (configs/xor.py), "
            f"{fmt(n['peer_net_loop_steps_per_second'])} (2-4-1); whole command "
            f"{n['command_seconds']} s (runs: {', '.join(map(str, n['command_seconds_all']))})"
        )
        if n.get("command_parts_s"):  # where the command's seconds go (item 5 of issue 28)
            bits.append(
                "of it (s) " + ", ".join(f"{k} {v}" for k, v in n["command_parts_s"].items())
            )
            bits.append("import jax + device client " + ", ".join(
                f"{k} {v} s" if v is not None else f"{k} failed"
                for k, v in n["backend_start_with_s"].items()))  # fmt: skip
    elif name.startswith("torch") and len(n) > 1:
        unit = "images/s" if name == "torch_cnn" else "steps/s"
        shown = {k: v for k, v in n.items() if isinstance(v, int | float)}
        bits.append(
            f"{n['device']}: "
            + ", ".join(f"{short(k)} {fmt(v)}" for k, v in shown.items())
            + f" ({unit})"
        )
    if part["seconds"] is not None:
        bits.append(f"{part['seconds']} s")
    if part["note"]:
        bits.append(part["note"])
    return "; ".join(bits)


def summary(check):
    parts, env = check.parts, check.env
    ok = all(part["status"] in ("pass", "skip") for part in parts.values())
    return {
        "check": "benchmarks/gpu_check.py",
        "quick": check.args.quick,
        "ok": ok,
        "seconds": round(time.perf_counter() - check.start, 1),
        "env": env,
        "parts": parts,
        "comparisons": comparisons(parts),
    }


def print_summary(result):
    env = result["env"]
    where = "env not run"
    if env.get("backend"):
        where = f"{env['backend']}: {', '.join(sorted(set(env['devices'])))}"
    print(
        f"\n== GPU check summary ({where}; {'quick' if result['quick'] else 'full'}, "
        f"{result['seconds']} s) =="
    )
    for name, part in result["parts"].items():
        print(f"{name:10} {part['status'].upper():8} {describe(name, part)}")
    caveat = " (--quick: too few steps to compare speed)" if result["quick"] else ""
    for name, c in result["comparisons"].items():
        ours, theirs = (value for key, value in c.items() if key.endswith("_per_s"))
        unit = "images/s" if name == "cnn" else "member-steps/s"
        against = f"{c['torch_best']} {fmt(theirs)} {unit}"
        print(
            f"ours / PyTorch's best ({name}): {c['ratio']}x ({fmt(ours)} against {against}){caveat}"
        )
    bad = [name for name, part in result["parts"].items() if part["status"] not in ("pass", "skip")]
    skipped = [name for name, part in result["parts"].items() if part["status"] == "skip"]
    verdict = f"FAILED: {', '.join(bad)}" if bad else "OK: no part failed"
    print(verdict + (f" (skipped: {', '.join(skipped)})" if skipped else ""))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, a few test files: minutes on a CPU"
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated, of {', '.join(PARTS)} (default: all)",
    )
    parser.add_argument("--json", help="write the summary as JSON to this path")
    parser.add_argument("--log", help="write every part's whole output to this path")
    parser.add_argument(
        "--budget", type=float, help="seconds for the whole check (default 480; --quick 1200)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="pytest-xdist workers (default: cores - 2, at most 12; --quick 2)",
    )
    parser.add_argument("--tests", help="the suite's pytest arguments instead (paths, -k ...)")
    parser.add_argument("--seeds", type=int, help="seeds part: num_seeds (100000; --quick 2000)")
    parser.add_argument(
        "--cnn-steps", type=int, help="epochs part: num_steps (936, two epochs; --quick 40)"
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("FMNIST_DIR", ""),
        help="Fashion-MNIST's folder (default $FMNIST_DIR, else Debian's)",
    )
    parser.add_argument(
        "--torch-python",
        help="the Python with PyTorch ('' : none; default: this one, else "
        "/tmp/torch-venv/bin/python)",
    )
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown --parts {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    args.parts = [p for p in PARTS if p in parts]  # in their order
    if args.budget is None:
        args.budget = 1200 if args.quick else 480
    if args.workers is None:
        args.workers = 2 if args.quick else max(2, min(12, (os.cpu_count() or 4) - 2))
    if args.seeds is None:
        args.seeds = 2000 if args.quick else 100_000
    if args.cnn_steps is None:
        args.cnn_steps = 40 if args.quick else 936
    for name in ("json", "log"):  # before minutes of work, not after
        path = getattr(args, name)
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            parser.error(f"--{name}={path}: no such folder")
    return args


RUNNERS = {
    "env": part_env,
    "suite": part_suite,
    "seeds": part_seeds,
    "epochs": part_epochs,
    "cnn": part_cnn,
    "torch_cnn": part_torch_cnn,
    "sweep": part_sweep,
    "members": part_members,
    "members_last": part_members_last,
    "torch_xor": part_torch_xor,
    "xor": part_xor,
}


def main(argv=None):
    args = parse_args(argv)
    check = Check(args)
    # The PyTorch parts need to know which Python and device: env finds them.
    needs_env = "env" not in args.parts and any(p in TORCH_PARTS for p in args.parts)
    for name in (["env"] if needs_env else []) + args.parts:
        if check.left() < MIN_LEFT:
            check.record(
                name, "skip", note=f"not started: the budget ({args.budget:.0f} s) is spent"
            )
            continue
        try:
            RUNNERS[name](check)
        except Exception as e:  # a part's own parsing broke: say so, go on with the others
            check.record(name, "fail", note=f"the check itself: {type(e).__name__}: {e}")
    result = summary(check)
    if check.log:
        check.log.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    print_summary(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
