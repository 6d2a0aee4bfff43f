"""A real TensorBoard server reads this project's runs, at a non-ASCII path."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import read_events
from tensorboard.util import tensor_util

import train


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_info_text(xor_config, tmp_path):
    xor_config.num_steps = 10
    train.train_and_evaluate(xor_config, str(tmp_path))
    text = tensor_util.make_ndarray(read_events(tmp_path).Tensors("run")[0].tensor_proto)
    text = text.item().decode()
    for row in ("| command |", "| git commit |", "| JAX | 0.", "| devices | "):
        assert row in text, text


@pytest.mark.slow
def test_tensorboard_server_shows_every_dashboard(xor_config, tmp_path):
    logdir = tmp_path / "runs" / "실험"  # the seminar warns of Korean paths
    xor_config.num_steps = 100
    for activation in ("relu", "tanh"):
        xor_config.model.activation = activation
        train.train_and_evaluate(xor_config, str(logdir / activation))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", f"--logdir={logdir}"]
        + ["--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def get(path, body=None):
        request = urllib.request.Request(base + path, data=body)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    try:
        deadline = time.time() + 120
        while True:
            try:
                runs = get("/data/runs")
                if len(runs) == 2:
                    break
            except OSError:
                pass
            assert time.time() < deadline, "TensorBoard did not answer in 120 s"
            time.sleep(0.5)
        assert sorted(runs) == ["relu", "tanh"]
        scalars = get("/data/plugin/scalars/tags")
        assert {"train/loss", "train/accuracy", "eval/loss"} <= set(scalars["relu"])
        histograms = get("/data/plugin/histograms/tags")
        assert "params/layers/0/kernel" in histograms["tanh"]
        graphs = get("/data/plugin/graphs/info")
        assert graphs["relu"]["run_graph"] is True
        text = get("/data/plugin/text/tags")
        assert {"config", "run"} <= set(text["relu"])
        experiment = get("/data/plugin/hparams/experiment", b'{"experimentName": ""}')
        hparams = {h["name"] for h in experiment["hparamInfos"]}
        assert {"model.activation", "optimizer.learning_rate"} <= hparams
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert {"eval/accuracy", "train/loss"} <= metrics
    finally:
        server.kill()
        server.wait(timeout=30)
