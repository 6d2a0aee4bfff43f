"""The docs' result tables, rerun from the commands they name.

    python docs/tables.py                     # reruns every table's command, rewrites its numbers
    python docs/tables.py --check             # reruns, compares; exit status 1 if a number differs
    python docs/tables.py activations --check # one table (names: --list)

Each table of results in README.md and docs/ names the command that made
it; here each has a function that runs that command (`python train.py
...`, in a temporary folder) and computes the table's rows from what the
run wrote to its event files, as TensorBoard reads them
(dashboards/reading.py), never from what it printed. Only the rows' cells
are rewritten; a row's first cell (its label) stays. Columns of wall time
or images/s are noise: `--check` skips them, and they are kept as
measured unless their table's function measures them again.

tests/test_docs.py reruns the cheap tables, shortened where their claim
allows (fewer seeds, fewer steps), with these same functions. The slow
ones (Fashion-MNIST, 5 to 20 minutes each on a 2-core CPU) are rerun here
only. The speed tables (docs/speed.md, the README's Speed) name their
benchmarks/ scripts and are not rerun: they measure this machine's load.
"""

import argparse
import glob
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import NamedTuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from dashboards import reading  # noqa: E402

# run(args, workdir) trains `python train.py ARGS` with its runs under `workdir`
# and returns the run's directory.
Runner = Callable[[list[str], str], str]


def run_dir(workdir: str) -> str:
    """The one run directory under `workdir` (the folder holding its checkpoints)."""
    pattern = os.path.join(workdir, "**", "checkpoints")
    found = sorted({os.path.dirname(p) for p in glob.glob(pattern, recursive=True)})
    if len(found) != 1:
        raise RuntimeError(f"expected one run under {workdir}, found {found}")
    return found[0]


def subprocess_runner(args: list[str], workdir: str) -> str:
    """Runs the command as a reader would, from the repository root."""
    command = [sys.executable, "train.py", *args, f"--workdir={workdir}"]
    print("  $ python train.py", shlex.join(args), flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{shlex.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return run_dir(workdir)


def last(run: str, tag: str) -> float:
    """The last logged value of a scalar."""
    values = reading.scalars(run, tag)
    if not values:
        raise KeyError(f"{run} logged no {tag!r}")
    return values[max(values)]


def at(run: str, tag: str, step: int) -> float:
    return reading.scalars(run, tag)[step]


def parameters(run: str) -> int:
    """The run's parameter count: the counts of its last weight histograms (weights/...)."""
    from tensorboard.util import tensor_util

    accumulator, total = reading.events(run), 0
    for tag in accumulator.Tags()["tensors"]:
        if tag.startswith("weights/"):
            value = tensor_util.make_ndarray(accumulator.Tensors(tag)[-1].tensor_proto)
            if value.ndim == 2 and value.shape[1] == 3:  # a histogram: (left, right, count) rows
                total += int(value[:, 2].sum())
    return total


class Table(NamedTuple):
    page: str  # where it is, relative to the repository root
    header: str  # its first line, stripped: how it is found
    command: str  # the command the page names for it (shown in --list)
    rows: Callable  # rows(run, old_rows, **shortening) -> new rows, as lists of cells
    noisy: tuple[int, ...] = ()  # columns --check skips (times, speeds)


# --- reading tables --------------------------------------------------------------------------


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def find(text: str, header: str) -> tuple[int, list[str]]:
    """(index of the header line, the table's body lines) of the table starting with `header`."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == header]
    if len(starts) != 1:
        raise LookupError(f"{len(starts)} tables start with {header!r}")
    start, body = starts[0], []
    for line in lines[start + 2 :]:
        if not line.strip().startswith("|"):
            break
        body.append(line)
    return starts[0], body


def read(table: Table) -> list[list[str]]:
    """The table's rows as its page shows them, as lists of cells."""
    with open(os.path.join(ROOT, table.page), encoding="utf-8") as f:
        return [cells(line) for line in find(f.read(), table.header)[1]]


def write(table: Table, rows: list[list[str]]) -> None:
    """Rewrites the table's body lines in its page, nothing else."""
    path = os.path.join(ROOT, table.page)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start, body = find(text, table.header)
    indent = body[0][: len(body[0]) - len(body[0].lstrip())]
    lines = text.splitlines(keepends=True)
    new = [indent + "| " + " | ".join(r) + " |\n" for r in rows]
    lines[start + 2 : start + 2 + len(body)] = new
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(lines))


# --- number formats, as the tables write them ------------------------------------------------


def two_digits(x: float) -> str:
    """2.5e-4, 0.42, 0.40, 4.1, 12."""
    if x != 0 and abs(x) < 0.01:
        mantissa, exponent = f"{x:.1e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{x:#.2g}".rstrip(".")


def thousands(n: float) -> str:
    return f"{n:,.0f}"


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


# --- README: how often a tiny XOR net solves it ----------------------------------------------

XOR_HIDDEN, XOR_ACTIVATIONS = (2, 4), ("sigmoid", "tanh", "relu", "leaky_relu", "maxout")


def xor_solved(run: Runner, hidden: int, activation: str, seeds: int = 10_000) -> dict:
    """One cell: solved fraction, its 95% interval and the median steps to solve."""
    args = ["--config=configs/xor.py", f"--config.num_seeds={seeds}", "--config.log_every=10",
            f"--config.model.hidden_sizes=({hidden},)",
            f"--config.model.activation={activation}"]  # fmt: skip
    if seeds < 10_000:  # shortened: the aggregates alone (the same with or without member runs)
        args.append("--config.max_member_runs=1")
    with tempfile.TemporaryDirectory() as workdir:
        aggregate = os.path.join(run(args, workdir), "aggregate")
        return {"solved": last(aggregate, "solved"), "low": last(aggregate, "solved/low95"),
                "high": last(aggregate, "solved/high95"),
                "median_steps": last(aggregate, "steps_to_solve/median")}  # fmt: skip


def xor_seeds_rows(run: Runner, old: list[list[str]], seeds: int = 10_000) -> list[list[str]]:
    rows = []
    for (label, *_), hidden in zip(old, XOR_HIDDEN, strict=True):
        found = [xor_solved(run, hidden, a, seeds) for a in XOR_ACTIVATIONS]
        # The best in bold when its interval lies above every other's.
        best = max(range(len(found)), key=lambda i: found[i]["solved"])
        clear = all(found[best]["low"] > f["high"] for i, f in enumerate(found) if i != best)
        row = [label]
        for i, f in enumerate(found):
            share = percent(f["solved"])
            share = f"**{share}**" if clear and i == best else share
            interval = f"{100 * f['low']:.1f}-{100 * f['high']:.1f}"
            steps = f"{f['median_steps']:.0f}" + (" steps" if i == 0 and hidden == 2 else "")
            row.append(f"{share} ({interval}), {steps}")
        rows.append(row)
    return rows


# --- README: the activation study ------------------------------------------------------------

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "maxout")


def activation_row(run: Runner, activation: str, num_steps: int | None = None) -> list[str]:
    """One row of the study, from `configs/activations.py --config.model.activation=A`.

    With `num_steps` (the test's shortening) only the step-100 column is
    filled; the others are left empty.
    """
    args = ["--config=configs/activations.py", f"--config.model.activation={activation}"]
    if num_steps is not None:
        args.append(f"--config.num_steps={num_steps}")
    with tempfile.TemporaryDirectory() as workdir:
        r = run(args, workdir)
        tags = reading.events(r).Tags()["tensors"]
        layers = sorted(int(t.split("/")[2]) for t in tags
                        if re.fullmatch(r"views/layers/\d+/dead", t))  # fmt: skip
        last_layer = max(int(t.rsplit("/", 1)[1]) for t in tags
                         if re.fullmatch(r"train/grad_norm/layers/\d+", t))  # fmt: skip
        first_step, final = 100, max(reading.scalars(r, "train/loss"))

        def ratio(step: int) -> float:
            return at(r, "train/grad_norm/layers/0", step) / at(
                r, f"train/grad_norm/layers/{last_layer}", step
            )

        step_100 = two_digits(ratio(first_step))
        if num_steps is not None:
            return [activation, "", "", step_100, "", "", ""]
        dead = statistics.fmean(last(r, f"views/layers/{i}/dead") for i in layers)
        saturated = statistics.fmean(last(r, f"views/layers/{i}/saturated") for i in layers)
        return [activation, f"{last(r, 'train/accuracy'):.3f}", f"{last(r, 'eval/accuracy'):.3f}",
                step_100, two_digits(ratio(final)), f"{dead:.2f}", f"{saturated:.2f}"]  # fmt: skip


def activations_rows(run: Runner, old: list[list[str]]) -> list[list[str]]:
    return [activation_row(run, row[0]) for row in old]


# --- README: the loss study ------------------------------------------------------------------

LOSS_SEEDS = range(5)
SGD = ["--config.optimizer.name=sgd", "--config.optimizer.learning_rate=1"]


def loss_runs(run: Runner, loss: str, sgd: bool, seeds=LOSS_SEEDS) -> list[dict]:
    """Each seed's final eval accuracy and first log step at train accuracy >= 0.95."""
    out = []
    for seed in seeds:
        args = ["--config=configs/playground.py:spiral", f"--config.loss={loss}",
                f"--config.seed={seed}", *(SGD if sgd else [])]  # fmt: skip
        with tempfile.TemporaryDirectory() as workdir:
            r = run(args, workdir)
            accuracy = reading.scalars(r, "train/accuracy")
            reached = [s for s in sorted(accuracy) if accuracy[s] >= 0.95]
            out.append({"eval": last(r, "eval/accuracy"), "to_95": reached[0] if reached else None,
                        "steps": max(accuracy)})  # fmt: skip
    return out


def accuracy_cell(runs: list[dict]) -> str:
    values = [r["eval"] for r in runs]
    return f"{statistics.median(values):.3f} ({min(values):.3f})"


def steps_cell(runs: list[dict]) -> str:
    reached = sorted(r["to_95"] for r in runs if r["to_95"] is not None)
    if len(reached) == len(runs):
        return thousands(statistics.median(reached))
    if not reached:
        return "never"
    steps = " and ".join(thousands(s) for s in reached) if len(reached) <= 2 else (
        f"median {thousands(statistics.median(reached))}")  # fmt: skip
    return (f"{steps} in {len(reached)} seeds; not within {thousands(runs[0]['steps'])} steps "
            f"in {len(runs) - len(reached)}")  # fmt: skip


def losses_rows(run: Runner, old: list[list[str]]) -> list[list[str]]:
    rows = []
    for label, *_ in old:
        loss = re.search(r"`(\w+)`", label).group(1)
        adam, sgd = loss_runs(run, loss, sgd=False), loss_runs(run, loss, sgd=True)
        rows.append([label, accuracy_cell(adam), steps_cell(adam), accuracy_cell(sgd),
                     steps_cell(sgd)])  # fmt: skip
    return rows


# --- README: linear regression's printed table -----------------------------------------------


def linear_regression_rows(run: Runner, old: list[list[str]]) -> list[list[str]]:
    """`W[0]`, `b[0]`: the true value (the config's) and the learned one (the last logged)."""
    tags = {"W": "weights/layers/0/kernel/{}", "b": "weights/layers/0/bias/{}"}
    with tempfile.TemporaryDirectory() as workdir:
        r = run(["--config=configs/linear_regression.py"], workdir)
        rows = []
        for label, true, _ in old:
            name, index = re.fullmatch(r"(\w)\[(\d+)\]", label).groups()
            rows.append([label, true, f"{last(r, tags[name].format(index)):.4f}"])
        return rows


# --- README: Fashion-MNIST (slow: rerun by this script only) ---------------------------------

FASHION_COMMANDS = {
    "`fashion_mnist_cnn`": ["--config=configs/fashion_mnist_cnn.py"],
    "`fashion_mnist_maxout`": ["--config=configs/fashion_mnist_maxout.py"],
    "`fashion_mnist_maxout` with `model.name=mlp`, `hidden_sizes=(782,782)`": [
        "--config=configs/fashion_mnist_maxout.py",
        "--config.model.name=mlp",
        "--config.model.hidden_sizes=(782,782)",
    ],  # fmt: skip
}


def fashion_rows(run: Runner, old: list[list[str]]) -> list[list[str]]:
    """The parameters and the test accuracy (the last eval); model, times, speeds as shown."""
    rows = []
    for label, model, _, accuracy, *timing in old:
        with tempfile.TemporaryDirectory() as workdir:
            r = run(FASHION_COMMANDS[label], workdir)
            shown, count = percent(last(r, "eval/accuracy")), thousands(parameters(r))
        print(f"    {label}: {count} parameters, {shown}", flush=True)
        bold = accuracy.startswith("**")
        rows.append([label, model, count, f"**{shown}**" if bold else shown, *timing])
    return rows


def fashion_sweep_rows(run: Runner, old: list[list[str]]) -> list[list[str]]:
    """Test accuracy after two epochs, per activation and learning rate; wall times as shown."""
    rows, found = [], {}
    for label, *_ in old:
        activation = label.split()[0]
        for lr in ("0.001", "0.003"):
            args = ["--config=configs/fashion_mnist_cnn.py", "--config.num_steps=936",
                    f"--config.model.activation={activation}",
                    f"--config.optimizer.learning_rate={lr}"]  # fmt: skip
            with tempfile.TemporaryDirectory() as workdir:
                found[activation, lr] = last(run(args, workdir), "eval/accuracy")
            print(f"    {activation}, {lr}: {found[activation, lr]:.3f}", flush=True)
    best = max(found, key=found.get)
    for label, _, _, wall in old:
        activation = label.split()[0]
        shown = [f"**{found[activation, lr]:.3f}**" if (activation, lr) == best
                 else f"{found[activation, lr]:.3f}" for lr in ("0.001", "0.003")]  # fmt: skip
        rows.append([label, *shown, wall])
    return rows


def critical_batch_rows(run: Runner, old: list[list[str]]) -> list[list[str]]:
    """At each batch size, the best learning rate (the fewest median steps to
    the target eval loss), those steps, and the noise scale there: from the
    points' aggregate runs."""
    with tempfile.TemporaryDirectory() as workdir:
        top = run(["--config=configs/critical_batch.py"], workdir)
        best = {}  # batch size -> (steps, learning rate, noise scale)
        for aggregate in glob.glob(os.path.join(top, "batch_size=*", "aggregate")):
            point = os.path.basename(os.path.dirname(aggregate))
            batch, rate = (float(v) for v in re.findall(r"=([\d.]+)", point))
            if "eval/steps_to_target/median" in reading.events(aggregate).Tags()["tensors"]:
                steps = last(aggregate, "eval/steps_to_target/median")  # (no member there: none)
                noise = last(aggregate, "eval/noise_scale_at_target/median")
                best[int(batch)] = min(best.get(int(batch), (float("inf"),)),
                                       (steps, rate, noise))  # fmt: skip
    sizes = sorted(best)
    print(f"    {', '.join(f'{b}: {best[b]}' for b in sizes)}", flush=True)
    return [
        [old[0][0], *(f"{best[b][1]:g}" for b in sizes)],
        [old[1][0], *(f"{best[b][0]:,.0f}" for b in sizes)],
        [old[2][0], *(f"{float(f'{best[b][2]:.3g}'):,.0f}" for b in sizes)],
    ]


TABLES = {
    "xor_seeds": Table(
        "README.md",
        "| hidden units | sigmoid | tanh | relu | leaky_relu | maxout |",
        "for h in 2 4; do for a in sigmoid tanh relu leaky_relu maxout; do python train.py "
        "--config=configs/xor.py --config.num_seeds=10000 --config.log_every=10 "
        '--config.model.hidden_sizes="($h,)" --config.model.activation=$a; done; done',
        xor_seeds_rows,
    ),
    "linear_regression": Table(
        "README.md",
        "| parameter | true | learned |",
        "python train.py --config=configs/linear_regression.py",
        linear_regression_rows,
    ),
    "activations": Table(
        "README.md",
        "| activation | train acc | eval acc | grad norm layer 0 / layer 8, step 100 | same, "
        "step 3000 | dead units (mean over layers) | saturated |",
        "for a in sigmoid tanh relu leaky_relu maxout; do python train.py "
        "--config=configs/activations.py --config.model.activation=$a; done",
        activations_rows,
    ),
    "losses": Table(
        "README.md",
        "| loss | Adam 0.01 (the config): eval accuracy, median (min) | steps to 95% | SGD 1.0: "
        "eval accuracy, median (min) | steps to 95% |",
        "for loss in cross_entropy bce mse mae; do for s in 0 1 2 3 4; do python train.py "
        "--config=configs/playground.py:spiral --config.loss=$loss --config.seed=$s "
        "[--config.optimizer.name=sgd --config.optimizer.learning_rate=1]; done; done",
        losses_rows,
    ),
    "fashion_mnist": Table(
        "README.md",
        "| config | model | parameters | test accuracy | training time | images/s |",
        "; ".join("python train.py " + shlex.join(a) for a in FASHION_COMMANDS.values()),
        fashion_rows,
        noisy=(4, 5),
    ),
    "fashion_mnist_sweep": Table(
        "README.md",
        "| activation | learning rate 0.001 | learning rate 0.003 | wall time per run |",
        "for a in relu tanh maxout; do for lr in 0.001 0.003; do python train.py "
        "--config=configs/fashion_mnist_cnn.py --config.num_steps=936 "
        "--config.model.activation=$a --config.optimizer.learning_rate=$lr; done; done",
        fashion_sweep_rows,
        noisy=(3,),
    ),
    "critical_batch": Table(
        "docs/inside_learning.md",
        "| batch size | 4 | 16 | 64 | 256 | 1024 |",
        "python train.py --config=configs/critical_batch.py",
        critical_batch_rows,
    ),
}
SLOW = ("fashion_mnist", "fashion_mnist_sweep", "critical_batch")


def differences(table: Table, old: list[list[str]], new: list[list[str]]) -> list[str]:
    """The rows whose cells differ, noisy columns aside."""
    out = []
    for before, after in zip(old, new, strict=True):
        if [c for i, c in enumerate(before) if i not in table.noisy] != [
            c for i, c in enumerate(after) if i not in table.noisy
        ]:
            out.append(f"  shown:    | {' | '.join(before)} |\n  measured: | {' | '.join(after)} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = f"tables to rerun (default: all): {', '.join(TABLES)}"
    parser.add_argument("names", nargs="*", help=names)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    parser.add_argument("--list", action="store_true", help="list the tables and their commands")
    args = parser.parse_args()
    if args.list:
        for name, table in TABLES.items():
            print(f"{name} ({table.page}{', slow' if name in SLOW else ''}): {table.command}")
        return
    unknown = [n for n in args.names if n not in TABLES]
    if unknown:
        sys.exit(f"error: unknown table {unknown[0]!r}; tables: {', '.join(TABLES)}")
    failed = False
    for name in args.names or TABLES:
        table = TABLES[name]
        print(f"{name} ({table.page}): {table.command}", flush=True)
        old = read(table)
        new = table.rows(subprocess_runner, old)
        changed = differences(table, old, new)
        if args.check:
            failed |= bool(changed)
            print("\n".join(changed) if changed else "  as shown", flush=True)
        elif [*map(tuple, new)] != [*map(tuple, old)]:
            write(table, new)
            print("\n".join(changed) if changed else "  noisy columns only", flush=True)
            print(f"  rewritten in {table.page}", flush=True)
        else:
            print("  as shown", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
