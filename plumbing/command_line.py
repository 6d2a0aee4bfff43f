"""The command line's helpers: run directories and one-line config errors.

`train.py` defines the flags and `main()`; what they need that is not
training lives here, importable by tests.
"""

import difflib
import os
import re
import runpy
from typing import Any

import ml_collections

from plumbing.failures import UserError


def run_name(config_file: str, overrides: dict[str, Any]) -> str:
    """'configs/xor.py', {'model.activation': 'tanh'} -> 'xor/model.activation=tanh'.

    The config file's stem (plus its ':argument', if any) then the sorted
    overrides, so runs of one experiment sit side by side in TensorBoard and
    their names say how they differ. Only ASCII letters, digits and ._+=-
    reach the path; a tuple (4, 4) is written 4x4, a swept '(relu, tanh)' reluxtanh.
    """
    stem, _, argument = config_file.partition(":")
    name = os.path.splitext(os.path.basename(stem))[0] + (f"-{argument}" if argument else "")

    def clean(value):
        if isinstance(value, str) and value.startswith("(") and value.endswith(")"):
            value = [v.strip(" '\"") for v in value[1:-1].split(",") if v.strip()]  # a sweep
        if isinstance(value, (tuple, list)):
            return "x".join(clean(v) for v in value) or "none"
        return re.sub(r"[^A-Za-z0-9._+-]", "_", str(value))

    parts = [f"{clean(k)}={clean(v)}" for k, v in sorted(overrides.items())]
    return os.path.join(clean(name), ",".join(parts) or "default")


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
        return f"config file not found: {path!r} (try --config=configs/xor.py)"
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
