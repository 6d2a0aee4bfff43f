"""docs/seminar.ipynb runs top to bottom, shows what the seminar teaches, and
its saved outputs are still what it prints.

The notebook is saved with its outputs, so that it reads where people read
notebooks online: those of a run on the CPU, as the test runs it (a GPU
computes other floats). The test runs it again and compares every output
with the saved one, after setting aside what differs between two runs or two
machines:
- the runs' folder: the test's own, written `runs/seminar` as when saved;
- durations and speeds (`compiled in 2.57 s`, `3,609 steps/s`): `<t>`;
- TensorBoard's frame: its random element id and its port;
- one unit in the last digit of a decimal number (another CPU may round a
  float differently, and training carries that into the printed losses);
  integers and every other character must match;
- pictures: the same size, and the same pixels but for at most 2% of them
  (a boundary moved by a pixel).

    .venv/bin/python tests/test_notebook.py

runs it the same way and saves it with its new outputs.
"""

import contextlib
import glob
import json
import math
import os
import pathlib
import re
import signal
import sys
from base64 import b64decode
from io import BytesIO

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # (as a script)
from conftest import CACHE_DIR, ROOT, without_package  # noqa: E402

NOTEBOOK = os.path.join(ROOT, "docs", "seminar.ipynb")
RUNS = "runs/seminar"  # where the notebook puts its runs; the saved outputs name it

# What legitimately changes from one run to the next, and what it is written as.
VOLATILE = [
    (re.compile(r"\d[\d,]*(\.\d+)? (s|ms|min|steps/s|images/s)\b"), "<t>"),
    (re.compile(r"tensorboard-frame-[0-9a-f]+"), "tensorboard-frame-<id>"),
    (re.compile(r"const port = \d+;"), "const port = <port>;"),
]
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")


def execute(folder: str):
    """The notebook, run top to bottom in a new kernel, its runs in `folder`/runs.

    The kernel gets a temporary folder of its own: `%tensorboard` (tensorboard.manager)
    keeps a file per TensorBoard server in TMPDIR/.tensorboard-info, reuses any server
    whose file has the same arguments and reads every file there while it waits for its
    own. Shared, it also read other processes' servers (another test's, a SIGKILLed one's)
    coming and going; here it sees only its own. As the README runs the tests
    (.venv/bin/python, the venv not activated), no `tensorboard` is on PATH, so
    %tensorboard must find the one beside the kernel's Python; and TensorFlow is hidden,
    as a user's TensorBoard starts without it (TensorFlow is a test-only install).
    """
    import nbclient
    import nbformat

    runs, tmp = os.path.join(folder, "runs"), os.path.join(folder, "tmp")
    os.makedirs(tmp, exist_ok=True)
    env = without_package("tensorflow", pathlib.Path(folder))
    path = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(d for d in path if not os.path.exists(f"{d}/tensorboard"))
    env.pop("TENSORBOARD_BINARY", None)
    env.update(
        SEMINAR_RUNS=runs,
        TMPDIR=tmp,  # %tensorboard's info files: this kernel's own
        JAX_PLATFORMS="cpu",  # the saved outputs are the CPU's
        JAX_COMPILATION_CACHE_DIR=CACHE_DIR,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    )
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", record_timing=False, coalesce_streams=True,
        resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}},  # run from docs/, as Jupyter
    )  # fmt: skip
    try:
        client.execute(env=env)  # raises CellExecutionError, naming the cell, on any error
    finally:  # %tensorboard's server outlives the kernel
        for info in glob.glob(os.path.join(tmp, ".tensorboard-info", "pid-*.info")):
            with open(info) as f, contextlib.suppress(ProcessLookupError):  # (if it ended)
                os.kill(json.load(f)["pid"], signal.SIGTERM)
    for cell in notebook.cells:  # the runs' folder, as a user's notebook names it
        for output in cell.get("outputs", []):
            if "text" in output:
                output.text = output.text.replace(runs, RUNS)
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/"):
                    output.data[mime] = value.replace(runs, RUNS)
    return notebook


def differences(saved, fresh) -> list[str]:
    """Where `fresh`'s outputs are not `saved`'s, as the module docstring says."""
    found = []
    saved_cells = [c for c in saved.cells if c.cell_type == "code"]
    fresh_cells = [c for c in fresh.cells if c.cell_type == "code"]
    for i, (old, new) in enumerate(zip(saved_cells, fresh_cells, strict=True)):
        where = f"code cell {i + 1} ({old.source.splitlines()[0]!r})"
        kinds = [(o.output_type, o.get("name"), sorted(o.get("data", {}))) for o in old.outputs]
        if kinds != [(o.output_type, o.get("name"), sorted(o.get("data", {})))
                     for o in new.outputs]:  # fmt: skip
            found.append(f"{where}: other outputs than saved")
            continue
        for o, n in zip(old.outputs, new.outputs, strict=True):
            pairs = [("text", o.text, n.text)] if "text" in o else []
            pairs += [(mime, o.data[mime], n.data[mime]) for mime in o.get("data", {})]
            for mime, a, b in pairs:
                same = _same_picture(a, b) if mime == "image/png" else _same_text(a, b)
                if not same:
                    shown = "" if mime == "image/png" else f":\n{_first_difference(a, b)}"
                    found.append(f"{where}: {mime} differs{shown}")
    return found


def _same_text(a: str, b: str) -> bool:
    for pattern, replacement in VOLATILE:
        a, b = pattern.sub(replacement, a), pattern.sub(replacement, b)
    if NUMBER.split(a) != NUMBER.split(b):
        return False
    return all(_close(x, y) for x, y in zip(NUMBER.findall(a), NUMBER.findall(b), strict=True))


def _close(a: str, b: str) -> bool:
    if "." not in a + b or "e" in a + b:
        return a == b  # integers (and exponents) exactly
    x, y = float(a.replace(",", "")), float(b.replace(",", ""))
    last_digit = 10.0 ** -len(a.split(".")[1]) if "." in a else 1.0
    return math.isclose(x, y, rel_tol=0, abs_tol=last_digit * 1.001)


def _same_picture(a: str, b: str) -> bool:
    from PIL import Image

    x, y = (np.asarray(Image.open(BytesIO(b64decode(p))).convert("RGB"), np.int16) for p in (a, b))
    if x.shape != y.shape:
        return False
    moved = np.abs(x - y).max(axis=-1) > 24
    return moved.mean() <= 0.02


def _first_difference(a: str, b: str) -> str:
    for old, new in zip(a.splitlines() + [""], b.splitlines() + [""], strict=False):
        if not _same_text(old, new):
            return f"  saved: {old}\n  now:   {new}"
    return "  (a line more or less)"


@pytest.mark.slow
def test_the_seminar_notebook_prints_what_it_was_saved_with(tmp_path):
    import nbformat

    notebook = execute(str(tmp_path))
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    shown = "".join(o.get("data", {}).get("text/plain", "") for o in outputs)

    assert text.count("4/4 right") >= 5  # OR, AND, NAND, AND by the delta rule, XOR from gates
    assert "After 50 epochs the delta rule has 2/4 right" in text  # XOR: never all four
    sigmoid = r"sigmoid \| \[0.119, 0.378, 0.5, 0.622, 0.881\] +\| \[0.105, 0.235, 0.25, 0.235"
    assert re.search(sigmoid, text)  # the zoo: sigmoid and its slope, at most 0.25
    assert "activation=maxout" in text and "(best)" in text  # the two sweeps' tables
    assert "| W[0] | 2.0000 |" in text  # linear regression: true beside learned
    # load_run: the XOR net, back from its checkpoint, on XOR's points and new ones
    assert re.search(r"\[1.0, 1.0\] -> class 0 .*\n\[0.1, 0.2\] -> class 0 .*\n"
                     r"\[0.9, 0.2\] -> class 1 .*\n\[0.2, 0.8\] -> class 1", text)  # fmt: skip
    assert "learning_rate=0.1, seed=0: [0, 1, 1, 0, 0, 1, 1, 0]" in text  # a sweep member
    assert len(pictures) == 9  # every show() displayed its picture from the event file
    assert "tensorboard-frame" in html, shown  # %tensorboard embedded TensorBoard (or says why not)

    found = differences(nbformat.read(NOTEBOOK, as_version=4), notebook)
    assert not found, (
        "docs/seminar.ipynb no longer prints what it was saved with; if the change is "
        "meant, save it again with `.venv/bin/python tests/test_notebook.py`:\n" + "\n".join(found)
    )


def main() -> None:
    """Runs the notebook as the test does and saves it with its outputs."""
    import tempfile

    import nbformat

    with tempfile.TemporaryDirectory() as folder:
        notebook = execute(folder)
    nbformat.write(notebook, NOTEBOOK)
    print(f"saved {NOTEBOOK} ({os.path.getsize(NOTEBOOK):,} bytes) with its outputs")


if __name__ == "__main__":
    main()
