"""Docs that cannot go stale: every `python train.py` command they show runs.

The commands are read from README.md, every page under docs/ (the Korean
one included) and the notebook's cells. Shell `for` loops are
expanded; commands differing only in `--config.seed` run once. Each runs
in this process through the command line's own parsing (`train.run_command`,
what `main()` runs), shortened: a few steps, a few seeds, small images and
landscapes, a tiny MNIST for the image sets and small files for the CSV
placeholders. Where the docs show what a command prints, every printed
line shown must still come out, numbers and paths aside.
"""

import glob
import io
import itertools
import json
import os
import re
import shlex
import sys
from contextlib import redirect_stdout
from typing import NamedTuple

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
