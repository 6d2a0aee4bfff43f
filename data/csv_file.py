"""Your own data, from a CSV file (`data.name=csv`, `data.path=FILE`).

The file is text, one example per line: numbers separated by commas, the
feature columns first and the label last, e.g. two features and a class:

    # petals, measured in cm           <- a comment: skipped
    length, width, species             <- a header (optional): skipped
    1.4, 0.2, 0
    4.7, 1.4, 1

- The first row is a header when any of its fields is not a number.
- Blank lines and lines starting with `#` are skipped; spaces around fields are fine.
- Every row has the same number of fields, at least 2 (a feature and the label),
  and every field is a finite number (no empty fields, NaN or Inf).
- `data.task=classification`: the label is an integer (`2.0` counts as 2). The
  training file's distinct labels, sorted, become class ids 0..K-1, K >= 2:
  labels -1 and 1 become classes 0 and 1, named '-1' and '1'.
- `data.task=regression`: the label is any number, the target to predict.

The eval rows are `data.eval_path`, a second file of the same format (its labels
must be classes of the training file); or, when that is "", `data.num_eval` rows
of the training file (0: a fifth of them), drawn at random (from `data.seed`) and
held out of training.

`data.standardize` scales each feature column to mean 0 and standard deviation 1
(a constant column is only centred), with the mean and std of the training rows,
for train and eval alike: gradient descent is slow on features of very different scales.

A mistake in a file is a UserError of one line, `FILE:LINE:COLUMN: what is wrong`,
with LINE counted as an editor does and COLUMN the field's number, both from 1.
"""

from __future__ import annotations

import csv
import math

import ml_collections
import numpy as np

import data  # for data.Dataset (data/__init__.py imports this module)
from plumbing.failures import UserError

TASKS = ("classification", "regression")
FORMAT = "Expected: one example per line, numbers separated by commas, the label last."


def _read_text(path: str) -> str:
    """The text of the file at `path`, which must be UTF-8."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a CSV file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror})") from None
    try:
        return raw.decode("utf-8-sig")  # -sig: drops the byte-order mark some editors write
    except UnicodeDecodeError as e:
        line = e.object.count(b"\n", 0, e.start) + 1
        byte = e.object[e.start]
        raise UserError(
            f"{path}:{line}: byte 0x{byte:02x} is not UTF-8; save it as UTF-8 text"
        ) from None


def _is_number(field: str) -> bool:
    """Whether `float` reads `field` (as it does 'nan' and 'inf': those fail later)."""
    try:
        float(field)
    except ValueError:
        return False
    return True


def _numbers(path: str, line: int, fields: list[str]) -> list[float]:
    """The fields of one row as finite numbers."""
    values = []
    for column, field in enumerate(fields, start=1):
        where = f"{path}:{line}:{column}"
        if not _is_number(field):
            raise UserError(f"{where}: {field!r} is not a number. {FORMAT}")
        value = float(field)
        if not math.isfinite(value):
            what = "NaN" if math.isnan(value) else "infinite"
            raise UserError(f"{where}: {field!r} is {what}; every field must be a finite number")
        values.append(value)
    return values


def _rows(path: str) -> tuple[np.ndarray, list[int]]:
    """The data rows of `path` as a (rows, fields) float64 array, and each row's line number."""
    rows, lines, header = [], [], None  # header: (its line number, its number of fields)
    for number, text in enumerate(_read_text(path).split("\n"), start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        try:
            fields = [field.strip() for field in next(csv.reader([text], skipinitialspace=True))]
        except csv.Error as e:
            raise UserError(f"{path}:{number}: {e}") from None
        if not rows and header is None and not all(map(_is_number, fields)):
            header = (number, len(fields))
            continue
        if rows and len(fields) != len(rows[0]):
            raise UserError(
                f"{path}:{number}: expected {len(rows[0])} fields (as on line {lines[0]}), "
                f"found {len(fields)}"
            )
        if not rows and len(fields) < 2:
            raise UserError(
                f"{path}:{number}: found 1 field, need at least 2: the features, then the label"
            )
        if not rows and header is not None and header[1] != len(fields):
            raise UserError(
                f"{path}:{header[0]}: the header has {header[1]} fields, but the first data "
                f"row (line {number}) has {len(fields)}"
            )
        rows.append(_numbers(path, number, fields))
        lines.append(number)
    if not rows:
        raise UserError(f"{path}: no data rows (only blank lines, comments or a header). {FORMAT}")
    return np.array(rows, np.float64), lines


def _check_integers(path: str, labels: np.ndarray, lines: list[int], column: int) -> None:
    """Raises UserError unless every class label is an integer."""
    for label, line in zip(labels, lines, strict=True):
        if label != round(label):
            raise UserError(
                f"{path}:{line}:{column}: label {float(label)!r} is not an integer; "
                "data.task=classification needs integer class labels (or use data.task=regression)"
            )


def _hold_out(config: ml_collections.ConfigDict, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """(train rows, eval rows): the rows shuffled by `seed`, `num_eval` of them
    held out (0: a fifth of them)."""
    n, k = len(rows), config.num_eval or max(len(rows) // 5, 1)
    if not 1 <= k < n:
        raise UserError(
            f"{config.path}: data.num_eval={k}, but the file has {n} data rows: hold out at "
            "least 1 and fewer than all of them (0: a fifth), or pass --config.data.eval_path=FILE"
        )
    order = np.random.default_rng(config.seed + 1).permutation(n)
    return rows[order[: n - k]], rows[order[n - k :]]


def _standardize(x_train: np.ndarray, x_eval: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets scaled by the training columns' mean and std (a constant column: centred)."""
    mean = x_train.mean(axis=0)
    constant = x_train.max(axis=0) == x_train.min(axis=0)
    std = np.where(constant, 1.0, x_train.std(axis=0))
    return (x_train - mean) / std, (x_eval - mean) / std


def _eval_rows(
    config: ml_collections.ConfigDict, width: int, classes: np.ndarray | None
) -> np.ndarray:
    """The rows of `config.eval_path`, checked against the training file's width and classes."""
    rows, lines = _rows(config.eval_path)
    if rows.shape[1] != width:
        raise UserError(
            f"{config.eval_path}:{lines[0]}: {rows.shape[1]} fields, but "
            f"{config.path} has {width} (the same features, then the label)"
        )
    if classes is not None:  # a classification
        _check_integers(config.eval_path, rows[:, -1], lines, width)
        for label, line in zip(rows[:, -1], lines, strict=True):
            if label not in classes:
                raise UserError(
                    f"{config.eval_path}:{line}:{width}: label {int(label)} is not a class "
                    f"of {config.path} (its labels: {', '.join(str(int(c)) for c in classes)})"
                )
    return rows


def load(config: ml_collections.ConfigDict) -> data.Dataset:
    """The Dataset in the CSV file `config.path` (see the module docstring for the format).

    Reads config.path, eval_path, task, num_eval, seed and standardize.
    """
    if not config.path:
        raise UserError("data.name=csv needs --config.data.path=FILE")
    if config.task not in TASKS:
        raise UserError(f"data.task must be 'classification' or 'regression', got {config.task!r}")
    train, lines = _rows(config.path)
    classes = None
    if config.task == "classification":
        _check_integers(config.path, train[:, -1], lines, train.shape[1])
        classes = np.unique(train[:, -1])  # the whole file's, held-out rows included
    if config.eval_path:
        held = _eval_rows(config, train.shape[1], classes)
    else:
        train, held = _hold_out(config, train)
    x_train, x_eval = train[:, :-1], held[:, :-1]
    if config.standardize:
        x_train, x_eval = _standardize(x_train, x_eval)
    x_train, x_eval = x_train.astype(np.float32), x_eval.astype(np.float32)
    if classes is None:
        y_train, y_eval = (rows[:, -1:].astype(np.float32) for rows in (train, held))
        return data.Dataset(x_train, y_train, x_eval, y_eval, num_classes=0)
    y_train, y_eval = (
        np.searchsorted(classes, rows[:, -1]).astype(np.int32) for rows in (train, held)
    )
    if len(np.unique(y_train)) < 2:
        raise UserError(
            f"{config.path}: every training row has label {int(classes[y_train[0]])}; "
            "classification needs at least 2 classes"
        )
    names = tuple(str(int(c)) for c in classes)
    return data.Dataset(x_train, y_train, x_eval, y_eval, len(classes), class_names=names)
