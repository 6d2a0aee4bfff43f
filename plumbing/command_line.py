"""The command line's helpers: flags, run directories, one-line config errors.

`train.py` defines the flags and `main()`; what they need that is not
training lives here, importable by tests.
"""

import ast
import contextlib
import difflib
import glob
import os
import re
import runpy
import shutil
import sys
from typing import Any

import ml_collections

from plumbing.failures import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository


def run_name(config_file: str, overrides: dict[str, Any]) -> str:
    """'configs/xor.py', {'model.activation': 'tanh'} -> 'xor/model.activation=tanh'.

    The config file's stem (plus its ':argument', if any) then the sorted
    overrides, so runs of one experiment sit side by side in TensorBoard and
    their names say how they differ. Only ASCII letters, digits and ._+=-
    reach the path; a shape (4, 4) is written 4x4, any other tuple, such as
    a swept '(relu, tanh)', relu+tanh (`join`).
    """
    stem, _, argument = config_file.partition(":")
    name = os.path.splitext(os.path.basename(stem))[0] + (f"-{argument}" if argument else "")

    def clean(value):
        if isinstance(value, str) and value.startswith("(") and value.endswith(")"):
            value = [v.strip(" '\"") for v in value[1:-1].split(",") if v.strip()]  # a sweep
        if isinstance(value, (tuple, list)):
            return join([clean(v) for v in value], value)
        return re.sub(r"[^A-Za-z0-9._+-]", "_", str(value))

    parts = [f"{clean(k)}={clean(v)}" for k, v in sorted(overrides.items())]
    return os.path.join(clean(name), ",".join(parts) or "default")


def join(texts: list[str], values) -> str:
    """A tuple in a name: '4x4' for a shape (integers), 'relu+tanh' otherwise."""
    shape = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    return ("x" if shape else "+").join(texts) or "none"


def make_run_dir(workdir: str, name: str, new_run: bool = False) -> tuple[str, bool]:
    """Returns (`workdir/name`, created): the run's directory, made if needed.

    An existing directory is the same run, which `train_and_evaluate`
    resumes. With `new_run`, the first free `name,run=2`, `name,run=3`, ...
    is made instead, so two runs never share a directory.
    """
    if not workdir:
        raise UserError("--workdir is empty: give a directory, e.g. --workdir=runs")
    base = os.path.join(workdir, name)
    for attempt in range(1, 10_000):
        path = base + (f",run={attempt}" if attempt > 1 else "")
        try:
            os.makedirs(path)
            return path, True
        except FileExistsError:
            if not os.path.isdir(path):
                raise UserError(
                    f"cannot create run directory {path}: a file is in the way"
                ) from None
            if not new_run:
                return path, False
        except OSError as e:
            message = f"cannot write to --workdir={workdir}: {e.strerror} ({e.filename})"
            raise UserError(message) from None
    raise UserError(f"too many runs named {name} in {workdir}")


def config_file(argv: list[str]) -> str | None:
    """The value of --config=FILE (or --config FILE) in `argv`."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def config_error(argv: list[str], error: Exception) -> str:
    """One line saying why the config could not be loaded or overridden."""
    file = config_file(argv)
    path, _, argument = (file or "").partition(":")
    if not os.path.isfile(path):
        root = ROOT
        if os.path.isfile(os.path.join(root, path)):  # run from another folder
            return (
                f"config file not found: {path!r} in {os.getcwd()}; the configs are in "
                f"{os.path.join(root, 'configs')}: run from {root}, or pass "
                f"--config={os.path.join(root, path)}"
            )
        return (
            f"config file not found: {path!r}; the recipes are in "
            f"{os.path.join(root, 'configs')}, e.g. --config={os.path.join(root, 'configs/xor.py')}"
        )
    cause = error.__cause__ or error  # the loader wraps the real error
    try:
        get_config = runpy.run_path(path)["get_config"]
        config = get_config(*([argument] if argument else []))
    except Exception:  # the file itself is broken: report that
        return f"cannot load config {file}: {type(cause).__name__}: {cause}"
    for arg in argv:  # the file loads, so an override must be wrong
        if arg.startswith("--config."):
            key = arg.removeprefix("--config.").split("=", 1)[0]
            message = _unknown_key(config, key, file)
            if message:
                return message
    return f"{type(cause).__name__}: {cause}"


def _unknown_key(config: ml_collections.ConfigDict, key: str, config_file: str) -> str | None:
    """Why `key` is not a field of `config`, with the nearest valid name."""
    node, parts = config, key.split(".")
    for i, part in enumerate(parts):
        where = ".".join(parts[:i])
        if not isinstance(node, ml_collections.ConfigDict):
            return f"config key {key!r} does not exist: {where!r} is a value, not a section."
        if part not in node:
            close = difflib.get_close_matches(part, list(node), n=1)
            hint = f" Did you mean {'.'.join(parts[:i] + close)!r}?" if close else ""
            return (
                f"unknown config key {key!r} in {config_file}.{hint} "
                f"Fields of {where or 'the config'}: {', '.join(node)}."
            )
        node = node[part]
    return None


def parse_flags(argv: list[str], config_flag) -> list[str]:
    """absl flag parsing that reports a bad flag or config in one line."""
    from absl import flags

    try:
        rest = flags.FLAGS(argv)
        if config_flag.value is None:
            raise UserError("--config is required, e.g. --config=configs/xor.py")
        config_flag.value.get("seed")  # a config file that failed to load raises here
        if len(rest) > 1:
            file, extra = config_file(argv) or "", rest[1:]
            hint = ""
            if len(extra) == 1 and ":" not in file and not extra[0].startswith("-"):
                hint = f" (a config's argument follows a colon: --config={file}:{extra[0]})"
            raise UserError(f"unexpected arguments: {' '.join(extra)}{hint}")
        return rest
    except (UserError, flags.Error) as e:
        message = str(e)
        if "Error whilst parsing config file" in message:  # get_config raised
            last_line = message.strip().splitlines()[-1]
            message = f"cannot load config {config_file(argv)}: {last_line}"
    except Exception as e:  # a config file can raise anything: report it
        message = config_error(argv, e)
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(2)


def parents(path: str) -> list[str]:
    """'a/b/c' -> ['a/b', 'a'], deepest first."""
    out, path = [], os.path.dirname(os.path.normpath(path))
    while path and path not in (os.sep, "."):
        out.append(path)
        path = os.path.dirname(path)
    return out


@contextlib.contextmanager
def run_directory(workdir: str, name: str, new_run: bool):
    """Yields the run's directory (made if needed: see `make_run_dir`).

    If the run fails before writing any event file, a directory this made
    is removed again, with the folders above it that it made.
    """
    new_parents = [p for p in parents(os.path.join(workdir, name)) if not os.path.exists(p)]
    run_dir, created = make_run_dir(workdir, name, new_run)
    try:
        yield run_dir
    except BaseException:
        pattern = os.path.join(glob.escape(run_dir), "**", "*tfevents*")
        if created and not glob.glob(pattern, recursive=True):
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing written: leave nothing
            for folder in new_parents:  # deepest first
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # only if empty
        raise


def point_name(point: dict, spec: dict) -> str:
    """{'optimizer.learning_rate': 0.1} -> 'learning_rate=0.1' (full keys if ambiguous)."""
    short = {k: k.split(".")[-1] for k in spec}
    if len(set(short.values())) < len(short):
        short = {k: k for k in spec}

    def text(value):  # a tuple as the run directory names it: 4x4, relu+tanh
        if isinstance(value, (tuple, list)):
            return join([text(v) for v in value], value)
        return str(value)

    return ",".join(f"{short[k]}={text(v)}" for k, v in point.items())


def recipes(folder: str) -> str:
    """The recipes in `folder` (configs/), one line each, for `--help`:
    '  configs/xor.py            XOR: a 2-16-1 MLP learns ...', with
    ':{a,b}' after a recipe that takes a variant (its VARIANTS). Read
    from the files' text, not run."""
    lines = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py") or name in ("__init__.py", "base.py"):
            continue
        path = os.path.join(folder, name)
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        summary = (ast.get_docstring(tree) or "").split("\n")[0]
        variants = [ast.literal_eval(node.value) for node in tree.body
                    if isinstance(node, ast.Assign)
                    and [getattr(t, "id", None) for t in node.targets] == ["VARIANTS"]]  # fmt: skip
        recipe = f"configs/{name}" + (":{" + ",".join(variants[0]) + "}" if variants else "")
        lines.append(f"  {recipe:<34} {summary}")
    return "\n".join(lines)
