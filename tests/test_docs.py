"""Docs that cannot go stale: every `python train.py` command they show runs.

The commands are read from README.md, every page under docs/ (the Korean
one included) and the notebook's cells. Shell `for` loops are
expanded; commands differing only in `--config.seed` run once. Each runs
in this process through the command line's own parsing (`train.run_command`,
what `main()` runs), shortened: a few steps, a few seeds, small images and
landscapes, a tiny MNIST for the image sets and small files for the CSV
placeholders. Where the docs show what a command prints, every printed
line shown must still come out, numbers and paths aside.

Tables of results name the command that made them; the cheap ones are
rerun here, their numbers read back from the runs' event files with
docs/tables.py's functions (which rerun every one: `python docs/tables.py
--check`).
"""

import glob
import importlib.util
import io
import itertools
import json
import os
import re
import shlex
import sys
from contextlib import redirect_stdout
from typing import NamedTuple

import jax
import numpy as np
import pytest
from absl import flags
from conftest import ROOT, write_mnist

import train

PAGES = ["README.md", *sorted(glob.glob("docs/**/*.md", root_dir=ROOT, recursive=True))]
NOTEBOOK = "docs/seminar.ipynb"
COMMAND = re.compile(r"(?:^|[\s`/])(?P<env>(?:[A-Z_]+=\S+ )*)python train\.py(?P<args>[^`#;&]*)")
LOOP = re.compile(r"for (\w+) in ([^;]+); do")
SHELL = ("python", "for ", "sudo ", "tensorboard ", "pip ", ".venv/", "source ", "cd ")


def sources() -> list[tuple[str, str]]:
    """(where, text) of every page, and of the notebook's cells."""
    out = [(page, open(os.path.join(ROOT, page), encoding="utf-8").read()) for page in PAGES]
    if os.path.exists(os.path.join(ROOT, NOTEBOOK)):
        with open(os.path.join(ROOT, NOTEBOOK), encoding="utf-8") as f:
            cells = json.load(f)["cells"]
        out.append((NOTEBOOK, "\n\n".join("".join(c["source"]) for c in cells)))
    return out


def shell_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) with `\\` continuations and `for ...; done` loops joined."""
    lines, out, number = text.splitlines(), [], 0
    while number < len(lines):
        start, line = number + 1, lines[number]
        while (line.rstrip().endswith("\\") or (LOOP.search(line) and "done" not in line)) and (
            number + 1 < len(lines)
        ):
            number += 1
            line = line.rstrip().removesuffix("\\") + " " + lines[number].strip()
        out.append((start, line))
        number += 1
    return out


def expand(line: str) -> list[str]:
    """A line's commands, its `for` loops' every combination substituted."""
    loops = LOOP.findall(line)
    commands = []
    for values in itertools.product(*(v.split() for _, v in loops)):
        text = line
        for (name, _), value in zip(loops, values, strict=True):
            text = re.sub(rf"\${name}\b|\${{{name}}}", value, text)
        commands += [m.group("env") + "python train.py" + m.group("args") for m in
                     COMMAND.finditer(text)]  # fmt: skip
    return commands


class Documented(NamedTuple):
    command: str  # what runs: a line's command, or a loop's first
    variants: list[str]  # a loop's other commands: parsed and checked, not run
    places: list[str]  # where it is shown, FILE:LINE


def canonical(command: str) -> str:
    """The command's words, `--config.seed` left out (another seed runs the same code)."""
    return shlex.join(w for w in shlex.split(command) if not w.startswith("--config.seed="))


def documented() -> dict[str, Documented]:
    """Every documented command, by its canonical form."""
    found = {}
    for where, text in sources():
        for number, line in shell_lines(text):
            commands = expand(line)
            if not commands:
                continue
            key = canonical(commands[0])
            entry = found.setdefault(key, Documented(commands[0], [], []))
            entry.places.append(f"{where}:{number}")
            variants = {canonical(c): c for c in commands if canonical(c) != key}
            entry.variants.extend(
                c for k, c in variants.items() if k not in map(canonical, entry.variants)
            )
    return found


def outputs(text: str) -> dict[str, list[str]]:
    """What the docs show a command printing: {command: its lines}.

    An output block is an indented block right after the paragraph, ending
    in a colon ("prints:"), that follows the command's own block.
    """
    blocks = re.split(r"\n[ \t]*\n", text)
    shown = {}
    for before, paragraph, block in zip(blocks, blocks[1:], blocks[2:], strict=False):
        commands = expand(before) if before.startswith("    ") else []
        lines = [line.strip() for line in block.splitlines()]
        if (commands and paragraph.rstrip().endswith(":") and block.startswith("    ")
                and not any(line.startswith(SHELL) for line in lines)):  # fmt: skip
            shown[commands[-1]] = lines
    return shown


def pattern(line: str, workdir: str) -> re.Pattern:
    """A shown output line as a regex: any number for a number, anything for
    `...`, any run of spaces for aligned columns, `workdir/` for `runs/`."""
    parts = re.split(r"(\d[\d,]*(?:\.\d+)?|\.\.\.)", line)
    number = r"[\d,]+(?:\.\d+)?"
    regex = "".join((".*" if p == "..." else number) if i % 2 else re.escape(p)
                    for i, p in enumerate(parts))  # fmt: skip
    regex = re.sub(r"(\\ )+", r"\\s+", regex)
    return re.compile(regex.replace("runs/", re.escape(workdir + "/")))


# Commands a single process cannot run: what covers them instead.
ELSEWHERE = {
    "--coordinator_address": "two hosts: tests/test_parallel.py runs two processes",
    "XLA_FLAGS=--xla_force_host_platform_device_count=4": "tests/test_parallel.py trains "
    "this config (circles, batch 8) on 4 simulated devices and compares it with one",
}
SHORT_STEPS = 12  # steps each command trains


def shorten(config, data_dir: str) -> None:
    """The documented config, made quick: what it runs stays, how long does not."""
    if config.get("experiment") == "gates":  # the gates take no time
        return
    config.num_steps = min(config.num_steps, SHORT_STEPS)
    for every in ("log_every", "eval_every", "picture_every"):
        config[every] = max(1, min(config[every], config.num_steps // 2))
    config.checkpoint_every = config.num_steps  # one, at the end
    if config.num_seeds > config.max_member_runs:  # keep the path without member runs
        config.max_member_runs = 2
    config.num_seeds = min(config.num_seeds, 3)
    split = config.sweep.split_step  # (split pairs: an even number of seeds, steps in the run)
    if config.split_step >= 0 or split:
        config.num_seeds = 2
    if split:
        config.sweep.split_step = tuple(sorted({min(k, config.num_steps - 1) for k in split}))
    config.probes.landscape_resolution = min(config.probes.landscape_resolution, 5)
    config.probes.sharpness_iterations = min(config.probes.sharpness_iterations, 4)
    if config.data.name in ("mnist", "fashion_mnist"):
        config.data.data_dir = data_dir
        config.data.num_validation = 0
        config.data.train_subset = min(config.data.train_subset, 24)
        config.batch_size = min(config.batch_size, 24)
        config.embedding_examples = min(config.embedding_examples, 6)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The files the docs' placeholders stand for: a tiny MNIST, two CSV files."""
    folder = tmp_path_factory.mktemp("documented")
    write_mnist(folder / "mnist", n_train=48, n_test=12)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    rows = [f"{a:.3f},{b:.3f},{int(a * b > 0)}" for a, b in x]
    (folder / "my_data.csv").write_text("x1,x2,label\n" + "\n".join(rows) + "\n")
    rows = [f"{a:.3f},{b:.3f},{3 * a - b:.3f}" for a, b in x]
    (folder / "prices.csv").write_text("size,age,price\n" + "\n".join(rows) + "\n")
    return folder


def parse(command: str, workdir: str, files) -> None:
    """Parses a documented command's flags as `main()` would, its placeholders filled in.

    Its config is then `train._CONFIG.value`, its run directory under `workdir`
    (a `--workdir` it names keeps its last folder's name: 실험 stays 실험).
    """
    placeholders = {"my_data.csv": files / "my_data.csv", "prices.csv": files / "prices.csv"}
    words = shlex.split(command)[2:]
    for placeholder, path in placeholders.items():
        words = [w.replace(placeholder, str(path)) for w in words]
    named = [w.split("=", 1)[1] for w in words if w.startswith("--workdir=")]
    words = [w for w in words if not w.startswith("--workdir=")]
    folder = os.path.basename(os.path.normpath(named[0])) if named else "runs"
    argv = ["train.py", *words, f"--workdir={os.path.join(workdir, folder)}"]
    for flag in [f for f in flags.FLAGS if f.startswith("config.")]:  # the last command's
        delattr(flags.FLAGS, flag)
    flags.FLAGS.unparse_flags()
    sys.argv = argv  # ml_collections reads the overrides from sys.argv
    flags.FLAGS(argv)


def run_documented(command: str, workdir: str, files) -> str:
    """Runs a documented command here, shortened; returns what it printed."""
    parse(command, workdir, files)
    shorten(train._CONFIG.value, str(files / "mnist"))
    printed = io.StringIO()
    with redirect_stdout(printed):
        train.run_command(train._CONFIG.value)
    return printed.getvalue()


def shown_output(command: str) -> list[tuple[str, str]]:
    """(where, line) of every line the docs show `command` printing."""
    return [(where, line) for where, text in sources()
            for shown, lines in outputs(text).items() if canonical(shown) == canonical(command)
            for line in lines if line != "..." and not line.startswith("see it with")]  # fmt: skip


COMMANDS = documented()


def test_the_docs_show_the_commands_this_test_runs():
    """The reader's pages are all read, and every loop is expanded."""
    where = {p.split(":")[0] for entry in COMMANDS.values() for p in entry.places}
    assert {"README.md", "docs/ko/README.md", "docs/playground.md", NOTEBOOK} <= where
    assert len(COMMANDS) > 30
    assert not [k for k in COMMANDS if "$" in k], "a loop was not expanded"
    assert shown_output("python train.py --config=configs/xor.py")  # README's first output


@pytest.mark.parametrize("key", sorted(COMMANDS), ids=lambda c: c.replace("python train.py ", ""))
def test_documented_command_runs(key, tmp_path, files):
    command, variants, places = COMMANDS[key]
    places = ", ".join(places)
    skip = [why for flag, why in ELSEWHERE.items() if flag in command]
    if skip:
        pytest.skip(f"{places}: {skip[0]}")
    assert command.startswith("python train.py"), f"{places}: add it to ELSEWHERE: {command}"
    for variant in variants:  # a loop's other values: each a valid config
        try:
            parse(variant, str(tmp_path), files)
            train.EXPERIMENTS[train._CONFIG.value.get("experiment", "train")][0](
                train._CONFIG.value
            )
        except (flags.Error, train.UserError) as e:
            pytest.fail(f"{places}: {variant}\nerror: {e}")
    try:
        printed = run_documented(command, str(tmp_path), files)
    except (flags.Error, train.UserError) as e:
        pytest.fail(f"{places}: {command}\nerror: {e}")
    for where, line in shown_output(command):
        regex = pattern(line, os.path.join(str(tmp_path), "runs"))
        assert regex.search(printed), f"{where} shows {line!r}; it printed:\n{printed}"


# Result tables: each names the command that made it, and the cheap ones are
# rerun here, shortened, by docs/tables.py's own functions (which read the
# numbers back from the runs' event files, not from what they printed).

_spec = importlib.util.spec_from_file_location("tables", os.path.join(ROOT, "docs", "tables.py"))
tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tables)

REFERENCE_PAGES = {"docs/config.md"}  # the config fields' defaults, not results
BENCHMARK = re.compile(r"benchmarks/\w+\.py")


def markdown_tables(text: str) -> list[tuple[int, list[str]]]:
    """(first line's index, lines) of every table, indented ones (printed output) too."""
    found, lines, number = [], text.splitlines(), 0
    while number < len(lines):
        if (
            lines[number].strip().startswith("|")
            and number + 1 < len(lines)
            and re.match(r"\s*\|[\s|:-]+\|\s*$", lines[number + 1])
        ):
            start = number
            while number < len(lines) and lines[number].strip().startswith("|"):
                number += 1
            found.append((start, lines[start:number]))
        number += 1
    return found


def has_numbers(table: list[str]) -> bool:
    """Whether a body cell but a row's first is a measured number (12, 0.93, 92.8%, ~3,800)."""
    number = re.compile(r"\**[~<>]?\d[\d,.]*(%|x|M|k| s\b)?")
    return any(number.match(cell) for row in table[2:] for cell in tables.cells(row)[1:])


def paragraph(lines: list[str], start: int, step: int) -> str:
    """The paragraph right above (step -1) or below (step 1) line `start`, blank lines skipped."""
    number, out = start + step, []
    while 0 <= number < len(lines) and not lines[number].strip():
        number += step
    while 0 <= number < len(lines) and lines[number].strip():
        out.append(lines[number])
        number += step
    return "\n".join(out[::step])


def result_tables() -> list[tuple[str, int, list[str], str]]:
    """(page, line number, table, its section) of every table of numbers in the docs."""
    out = []
    for page in PAGES:
        if page in REFERENCE_PAGES:
            continue
        text = open(os.path.join(ROOT, page), encoding="utf-8").read()
        lines = text.splitlines()
        for start, table in markdown_tables(text):
            if has_numbers(table):
                heading = max((i for i in range(start) if lines[i].startswith("#")), default=0)
                out.append((page, start + 1, table, "\n".join(lines[heading:start])))
    return out


def test_every_result_table_names_its_command():
    """A table of results names its command: a train.py table is in docs/tables.py (which
    reruns it) and the text beside it says so; a printed table follows its command; a
    speed table names its benchmarks/ scripts beside it or in its cells."""
    found, headers = result_tables(), {t.header: name for name, t in tables.TABLES.items()}
    assert len(found) >= 12, "the tables of results were not found"
    for page, number, table, section in found:
        lines = open(os.path.join(ROOT, page), encoding="utf-8").read().splitlines()
        beside = (
            paragraph(lines, number - 1, -1) + "\n" + paragraph(lines, number + len(table) - 2, 1)
        )
        header, where = table[0].strip(), f"{page}:{number}"
        if table[0].startswith("    "):  # printed by the command shown above it
            assert "python train.py" in section, f"{where}: a printed table with no command above"
        elif header in headers:  # rerun by docs/tables.py
            name = headers[header]
            assert tables.TABLES[name].page == page, where
            assert f"docs/tables.py {name}" in beside, f"{where}: name `docs/tables.py {name}`"
        else:  # a speed table: noise, not rerun
            assert BENCHMARK.search(beside + "\n".join(table)), f"{where}: name its command"
            assert "python train.py" not in beside, f"{where}: add it to docs/tables.py"
    for name, table in tables.TABLES.items():  # each still where docs/tables.py looks
        assert tables.read(table), f"{table.page} has no rows under {name}'s header"


@pytest.fixture(scope="module")
def run_here(files) -> tables.Runner:
    """docs/tables.py's runner, in this process: the command line's own parsing and run."""

    def run(args: list[str], workdir: str) -> str:
        parse(shlex.join(["python", "train.py", *args]), workdir, files)
        with redirect_stdout(io.StringIO()):
            train.run_command(train._CONFIG.value)
        return tables.run_dir(workdir)

    return run


def test_linear_regression_table_is_what_it_learns(run_here):
    """The README's W and b, learned: the whole run (500 steps on 50 points)."""
    shown = tables.read(tables.TABLES["linear_regression"])
    assert [row[0] for row in shown] == ["W[0]", "b[0]"]
    assert tables.linear_regression_rows(run_here, shown) == shown


def test_activation_table_is_what_its_loop_writes(run_here):
    """The README's activation study, exactly as shown: sigmoid's vanishing gradient at
    step 100 (a run of 100 steps) and ReLU's whole row (its 3,000 steps). The other rows:
    `python docs/tables.py activations --check`."""
    shown = {row[0]: row for row in tables.read(tables.TABLES["activations"])}
    assert list(shown) == list(tables.ACTIVATIONS)
    assert tables.activation_row(run_here, "sigmoid", num_steps=100)[3] == shown["sigmoid"][3]
    assert tables.activation_row(run_here, "relu") == shown["relu"]


XOR_SHORT_SEEDS = 300  # of the table's 10,000: member k is seed k whatever the count
XOR_MEDIAN_SLACK = 10  # steps: one log step


def test_xor_seeds_table_holds_on_fewer_seeds(run_here):
    """The README's solve rates with 2 hidden units, from the first 300 of the 10,000
    seeds: each within sampling error of the table's, its median steps within a log step,
    ReLU the lowest and maxout the highest. (A cell takes 4-8 s here; the 4-unit row and
    the whole table: `python docs/tables.py xor_seeds --check`, 3 minutes.)"""
    cell = re.compile(r"\**([\d.]+)%\** \(([\d.]+)-([\d.]+)\), (\d+)")
    shown = tables.read(tables.TABLES["xor_seeds"])
    assert [row[0] for row in shown] == [str(h) for h in tables.XOR_HIDDEN]
    for row, hidden in zip(shown[:1], tables.XOR_HIDDEN[:1], strict=True):
        solved = {}
        for activation, text in zip(tables.XOR_ACTIVATIONS, row[1:], strict=True):
            share, low, high, steps = (float(x) for x in cell.match(text).groups())
            assert low <= share <= high, text
            found = tables.xor_solved(run_here, hidden, activation, seeds=XOR_SHORT_SEEDS)
            p = share / 100
            spread = 3 * (p * (1 - p) / XOR_SHORT_SEEDS) ** 0.5 + 0.001
            where = f"{hidden} units, {activation}: {text}; {XOR_SHORT_SEEDS} seeds"
            assert abs(found["solved"] - p) <= spread, f"{where} solved {found['solved']:.3f}"
            assert abs(found["median_steps"] - steps) <= XOR_MEDIAN_SLACK, f"{where} {found}"
            solved[activation] = found["solved"]
        assert min(solved, key=solved.get) == "relu", solved  # "ReLU fails most often"
        assert max(solved, key=solved.get) == "maxout", solved  # "maxout ... the most"


def numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]


def printed_table(page: str, first_cell: str) -> tuple[list[str], list[list[str]]]:
    """(header cells, rows) of the printed (indented) table on `page` with a row starting
    `| first_cell |`."""
    text = open(os.path.join(ROOT, page), encoding="utf-8").read()
    for _, table in markdown_tables(text):
        rows = [tables.cells(line) for line in table[2:]]
        if table[0].startswith("    ") and any(row[0] == first_cell for row in rows):
            return tables.cells(table[0]), rows
    raise LookupError(f"{page} prints no table with a row {first_cell!r}")


def close(cell: str, value: float) -> bool:
    """Whether `cell`'s first number is `value` as rounded to the cell's decimals."""
    decimals = len(cell.split()[0].partition(".")[2])
    return abs(numbers(cell)[0] - value) <= 0.51 * 10**-decimals


def assert_summary(aggregate: str, name: str, cell: str, where: str) -> None:
    """A printed results cell that is not a metric's (solved, diverged, ...), against the
    aggregate run: names this test does not know are left to the page's other checks."""
    tags = reading_tags(aggregate)
    if name.startswith("solved"):
        found = [tables.last(aggregate, t) for t in ("solved", "solved/low95", "solved/high95")]
        assert np.allclose(numbers(cell), found, atol=5e-4), f"{where}: solved {cell}, {found}"
    elif name.startswith("steps to solve"):
        found = tables.last(aggregate, "steps_to_solve/median")
        assert numbers(cell) == [found], f"{where}: steps to solve {cell}, found {found}"
    elif name.split()[0] in tags:  # diverged, unstable: counts of members
        found = tables.last(aggregate, name.split()[0])
        assert numbers(cell) == [found], f"{where}: {name} {cell}, found {found}"


def reading_tags(run: str) -> set[str]:
    return set(tables.reading.events(run).Tags()["tensors"])


def test_sweep_pages_tables_are_what_their_commands_write(run_here, tmp_path):
    """docs/sweeps.md's two printed tables, their numbers read back from the aggregates,
    column by column as their headers name them: 256 XOR seeds (the whole command), and
    the two-field sweep's first row (3 seeds, 300 steps, as the page says). Member runs
    are not written: the aggregates are the same."""
    page, short = "docs/sweeps.md", "--config.max_member_runs=1"
    header, rows = printed_table(page, "eval/accuracy")
    args = ["--config=configs/xor.py", "--config.num_seeds=256", short]
    aggregate = os.path.join(run_here(args, str(tmp_path / "seeds")), "aggregate")
    statistics = [name.split()[0] for name in header[1:]]  # median, mean, std, min, max
    assert {"mean", "min", "max"} <= set(statistics), header
    for row in rows:
        label, where = row[0], f"{page}: | {' | '.join(row)} |"
        if label.startswith(("train/", "eval/")):
            for statistic, cell in zip(statistics, row[1:], strict=True):
                found = tables.last(aggregate, f"{label}/{statistic}")
                assert close(cell, found), f"{where}: {statistic} is {found}"
        else:
            assert_summary(aggregate, label, row[1], where)

    point = "activation=relu,learning_rate=0.01"
    header, rows = printed_table(page, point)
    args = ["--config=configs/xor.py", "--config.num_seeds=3", "--config.num_steps=300", short,
            "--config.sweep.optimizer.learning_rate=(0.01, 0.1, 1.0)",
            "--config.sweep.model.activation=(relu, tanh)"]  # fmt: skip
    aggregate = os.path.join(run_here(args, str(tmp_path / "fields")), point, "aggregate")
    row, where = next(r for r in rows if r[0] == point), f"{page}: {point}"
    for name, cell in zip(header[1:], row[1:], strict=True):
        if name.startswith(("train/", "eval/")):  # the median or the mean over the seeds
            found = [tables.last(aggregate, f"{name}/{s}") for s in ("median", "mean")]
            assert any(close(cell, v) for v in found), f"{where}: {name} {cell}, found {found}"
        else:
            assert_summary(aggregate, name, cell, where)


def test_fashion_mnist_table_parameters(files, tmp_path):
    """The README's Fashion-MNIST table counts the parameters each command's model has
    (its accuracies take 10 minutes: `python docs/tables.py fashion_mnist --check`)."""
    from flax import nnx

    import nets

    rows = tables.read(tables.TABLES["fashion_mnist"])
    assert [row[0] for row in rows] == list(tables.FASHION_COMMANDS)
    for label, _, shown, *_ in rows:
        parse(
            shlex.join(["python", "train.py", *tables.FASHION_COMMANDS[label]]),
            str(tmp_path),
            files,
        )
        model = nets.build_model(train._CONFIG.value.model, (28, 28, 1), 10, nnx.Rngs(0))
        count = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
        assert f"{count:,}" == shown, f"README.md: {label}: {shown} parameters shown, {count:,}"


def test_parameters_are_read_back_from_the_weight_histograms(run_here, tmp_path):
    """docs/tables.py's parameter count: configs/xor.py's 2-16-1 MLP has 65."""
    assert (
        tables.parameters(
            run_here(["--config=configs/xor.py", "--config.num_steps=10"], str(tmp_path))
        )
        == 65
    )
