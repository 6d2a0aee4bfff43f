"""docs/seminar.ipynb runs top to bottom, shows what the seminar teaches, and is committed clean."""

import json
import os
import re
import signal

import pytest
from conftest import CACHE_DIR, ROOT

NOTEBOOK = os.path.join(ROOT, "docs", "seminar.ipynb")


def test_the_notebook_is_committed_without_outputs():
    with open(NOTEBOOK, encoding="utf-8") as f:
        cells = json.load(f)["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)


@pytest.mark.slow
def test_the_seminar_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    import nbclient
    import nbformat
    from tensorboard import manager

    monkeypatch.setenv("SEMINAR_RUNS", str(tmp_path))  # the kernel's runs go here
    # As the README runs the tests (.venv/bin/python, the venv not activated): no
    # `tensorboard` on PATH, so %tensorboard must find the one beside the kernel's Python.
    path = os.environ.get("PATH", "").split(os.pathsep)
    path = [d for d in path if not os.path.exists(os.path.join(d, "tensorboard"))]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    monkeypatch.delenv("TENSORBOARD_BINARY", raising=False)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", CACHE_DIR)
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}},  # run from docs/, as Jupyter
    )  # fmt: skip
    try:
        client.execute()  # raises CellExecutionError, naming the cell, on any error
    finally:
        for info in manager.get_all():  # %tensorboard's server outlives the kernel
            if str(tmp_path) in info.logdir:
                os.kill(info.pid, signal.SIGTERM)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)

    assert text.count("4/4 right") >= 5  # OR, AND, NAND, AND by the delta rule, XOR from gates
    assert "After 50 epochs the delta rule has 2/4 right" in text  # XOR: never all four
    sigmoid = r"sigmoid \| \[0.119, 0.378, 0.5, 0.622, 0.881\] +\| \[0.105, 0.235, 0.25, 0.235"
    assert re.search(sigmoid, text)  # the zoo: sigmoid and its slope, at most 0.25
    assert "activation=maxout" in text and "(best)" in text  # the two sweeps' tables
    assert "| W[0] | 2.0000 |" in text  # linear regression: true beside learned
    assert len(pictures) == 9  # every show() displayed its picture from the event file
    assert "tensorboard-frame" in html  # %tensorboard embedded TensorBoard
