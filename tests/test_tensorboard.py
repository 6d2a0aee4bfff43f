"""A real TensorBoard server reads this project's runs, at a non-ASCII path."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from conftest import COMPILATION_CACHE, read_events, read_scalars, without_package
from tensorboard.util import tensor_util

import train
from dashboards import console

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def test_each_summary_carries_the_wall_time_of_its_step(xor_config, tmp_path, monkeypatch):
    printed = {}  # step -> time the loop printed its line, right after logging it

    def say(message):
        if message.startswith("step "):
            printed[int(message.split()[1])] = time.time()

    monkeypatch.setattr(console, "say", say)
    xor_config.num_steps, xor_config.log_every = 300_000, 60_000  # about 0.5 s apart
    xor_config.eval_every = xor_config.picture_every = xor_config.checkpoint_every = 300_000
    train.train_and_evaluate(xor_config, str(tmp_path))
    events = {e.step: e.wall_time for e in read_events(tmp_path).Tensors("train/loss")}
    assert sorted(events) == sorted(printed) == [60_000, 120_000, 180_000, 240_000, 300_000]
    for step, wall_time in events.items():
        assert printed[step] - 1.0 < wall_time <= printed[step], step


@pytest.mark.slow
def test_summaries_appear_while_the_run_goes(tmp_path):
    """Flushed at every log step: readable long before the run ends."""
    every = 200_000  # about 1.5 s of XOR steps
    process = subprocess.Popen(
        [sys.executable, "train.py", "--config=configs/xor.py", f"--workdir={tmp_path}"]
        + ["--config.num_steps=100000000", f"--config.log_every={every}"]
        + [f"--config.{key}={every * 10}" for key in ("eval_every", "picture_every")]
        + [f"--config.checkpoint_every={every * 10}", COMPILATION_CACHE],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 90
        seen = {}
        while not seen and time.time() < deadline and process.poll() is None:
            time.sleep(0.5)
            for run_dir in tmp_path.glob("xor/*"):
                if "train/loss" in read_events(run_dir).Tags()["tensors"]:
                    seen = read_scalars(run_dir, "train/loss")
        assert seen, f"no train/loss event while running; stderr: {process.stderr.read()}"
        assert process.poll() is None, "the run ended before its events were read"
        assert min(seen) == every
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.mark.slow
def test_tensorboard_server_shows_every_dashboard(xor_config, tmp_path):
    """As a user's TensorBoard runs: without TensorFlow (only the tests install it)."""
    logdir = tmp_path / "runs" / "실험"  # the seminar warns of Korean paths
    xor_config.num_steps = 100
    for activation in ("relu", "tanh"):
        xor_config.model.activation = activation
        train.train_and_evaluate(xor_config, str(logdir / activation))
    xor_config.num_seeds = 2  # and a sweep of seeds, for its bands
    train.train_and_evaluate(xor_config, str(logdir / "seeds"))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", f"--logdir={logdir}"]
        + ["--host=127.0.0.1", f"--port={port}"],
        env=without_package("tensorflow", tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
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
                if len(runs) == 5:
                    break
            except OSError:
                pass
            assert time.time() < deadline, "TensorBoard did not answer in 120 s"
            time.sleep(0.5)
        assert sorted(runs) == ["relu", "seeds/aggregate", "seeds/seed=0", "seeds/seed=1", "tanh"]
        scalars = get("/data/plugin/scalars/tags")
        assert {"train/loss", "train/accuracy", "eval/loss"} <= set(scalars["relu"])
        histograms = get("/data/plugin/histograms/tags")
        assert "weights/layers/0/kernel" in histograms["tanh"]
        graphs = get("/data/plugin/graphs/info")
        assert graphs["relu"]["run_graph"] is True
        text = get("/data/plugin/text/tags")
        assert {"config", "run"} <= set(text["relu"])
        images = get("/data/plugin/images/tags")
        assert {"views/decision_boundary/train", "views/activation/relu"} <= set(images["relu"])
        assert sorted(get("/data/plugin/projector/runs"))[::3] == ["relu", "tanh"]
        (embedding,) = get("/data/plugin/projector/info?run=tanh")["embeddings"]
        assert embedding["tensorName"] == "features" and embedding["tensorShape"] == [4, 16]
        experiment = get("/data/plugin/hparams/experiment", b'{"experimentName": ""}')
        hparams = {h["name"] for h in experiment["hparamInfos"]}
        assert {"model.activation", "optimizer.learning_rate"} <= hparams
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert {"eval/accuracy", "train/loss"} <= metrics
        # CUSTOM SCALARS: the seeds' mean with a mean -+ std band, per metric
        (category,) = get("/data/plugin/custom_scalars/layout")["category"]
        band = category["chart"][0]
        assert band["title"] == "train/loss: mean -+ std over seeds"
        series = band["margin"]["series"][0]
        assert series == {"value": "train/loss/mean", "lower": "train/loss/lower",
                          "upper": "train/loss/upper"}  # fmt: skip
        regex = urllib.parse.quote("^train/loss/(lower|mean|std)$")
        found = get(f"/data/plugin/custom_scalars/scalars?run=seeds/aggregate&tag={regex}")
        events = found["tag_to_events"]
        (_, step, low), (_, _, m), (_, _, s) = (events[f"train/loss/{k}"][-1]
                                                 for k in ("lower", "mean", "std"))  # fmt: skip
        assert step == 100 and low == pytest.approx(m - s)
    finally:
        server.kill()
        server.wait(timeout=30)
    assert "TensorFlow installation not found" in server.stderr.read()  # as a user's
